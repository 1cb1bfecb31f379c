package sandbox_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
)

// noticeBox stands for the SES receiver the sandbox mails its notices to.
type noticeBox struct {
	mu   sync.Mutex
	got  []string
	rcpt []string
}

func (n *noticeBox) NewSession(*smtp.Conn) (smtp.Session, error) { return &noticeSession{n: n}, nil }

type noticeSession struct{ n *noticeBox }

func (s *noticeSession) Reset()                               {}
func (s *noticeSession) Logout() error                        { return nil }
func (s *noticeSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *noticeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.n.mu.Lock()
	s.n.rcpt = append(s.n.rcpt, to)
	s.n.mu.Unlock()
	return nil
}
func (s *noticeSession) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	s.n.mu.Lock()
	s.n.got = append(s.n.got, string(b))
	s.n.mu.Unlock()
	return nil
}

func (n *noticeBox) mails() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.got...)
}

func TestReplyRelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	box := &noticeBox{}
	nsrv := smtp.NewServer(box)
	nsrv.Domain = "ses.local"
	go func() { _ = nsrv.Serve(ln) }()
	t.Cleanup(func() { _ = nsrv.Close() })

	sb := sandbox.New(sandbox.Config{ClientID: "c", ClientSecret: "s", ApplicationID: "a", RelaySMTP: ln.Addr().String()})
	web := httptest.NewServer(sb)
	t.Cleanup(web.Close)
	relay, err := sb.StartReplyRelay("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })

	seller := sb.Sellers()[0]
	orderID, err := sb.AddOrder(seller.ID, "A13V1IB3VIYZZH", false)
	if err != nil {
		t.Fatal(err)
	}
	alias, mp, ok := sb.OrderAlias(seller.ID, orderID)
	if !ok || mp != "A13V1IB3VIYZZH" || !strings.HasSuffix(alias, "@marketplace.amazon.fr") {
		t.Fatalf("alias %q %q %v", alias, mp, ok)
	}
	const approved = "amazon.t1.fr.tok@inbound.keybuzz.test"
	put := func(body string) int {
		req, _ := http.NewRequest("PUT", web.URL+"/_sandbox/sellers/"+seller.ID+"/approved-senders", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := put(`{"marketplaceId":"A13V1IB3VIYZZH","addresses":["` + approved + `"]}`); st != 200 {
		t.Fatalf("PUT approved-senders: %d", st)
	}
	if st := put(`{"marketplaceId":"nope","addresses":["a@b"]}`); st != 400 {
		t.Fatalf("unknown marketplace: %d", st)
	}

	mail := func(from, to, text string) string {
		return "From: " + from + "\r\nTo: " + to + "\r\nSubject: Re: Question (Commande : " + orderID + ")\r\n" +
			"In-Reply-To: <buyer-1@email.amazonses.com>\r\nMessage-ID: <x@local>\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n"
	}
	send := func(from, to, text string) error {
		return smtpses.Send(relay.Addr(), from, []string{to}, []byte(mail(from, to, text)))
	}

	// Accepted: the buyer's inbox shows it, threaded.
	if err := send(approved, alias, "Votre colis part demain (commande "+orderID+")."); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(web.URL + "/_sandbox/sellers/" + seller.ID + "/buyer-inbox")
	if err != nil {
		t.Fatal(err)
	}
	var inbox []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&inbox)
	resp.Body.Close()
	if len(inbox) != 1 || inbox[0]["orderId"] != orderID || inbox[0]["alias"] != alias || inbox[0]["from"] != approved ||
		inbox[0]["inReplyTo"] != "<buyer-1@email.amazonses.com>" || inbox[0]["text"] != "Votre colis part demain (commande "+orderID+")." ||
		inbox[0]["subject"] == "" || inbox[0]["receivedAt"] == "" {
		t.Fatalf("inbox %v", inbox)
	}

	// An unknown alias is refused in the SMTP dialogue.
	if err := send(approved, "nobody@marketplace.amazon.fr", "x"); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("unknown alias: %v", err)
	}

	// Refused: an unapproved sender, then a link; each brings Amazon's notice back.
	tests := []struct {
		from, text, reason, phrase string
	}{
		{"noreply@keybuzz.io", "Bonjour", "sender_not_approved", "not coming from the account's registered email address"},
		{"amazon.t1.de.tok@inbound.keybuzz.test", "Bonjour", "sender_not_approved", "authorized email address"},
		{approved, "Voir https://myshop.example/promo", "content_refused", "did not meet the Buyer-Seller Messaging communication guidelines"},
		{approved, "Appelez le 06 12 34 56 78", "content_refused", "did not meet the Buyer-Seller Messaging communication guidelines"},
		{approved, "Écrivez à jane@example.com", "content_refused", "did not meet the Buyer-Seller Messaging communication guidelines"},
	}
	for i, tc := range tests {
		if err := send(tc.from, alias, tc.text); err != nil {
			t.Fatalf("%s: %v", tc.text, err)
		}
		refused := sb.RefusedReplies(seller.ID)
		if len(refused) != i+1 || refused[i].Reason != tc.reason || refused[i].OrderID != orderID || refused[i].Alias != alias {
			t.Fatalf("%s: refused %+v", tc.text, refused)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(box.mails()) < i+1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		mails := box.mails()
		if len(mails) != i+1 {
			t.Fatalf("%s: %d notices", tc.text, len(mails))
		}
		n := strings.ReplaceAll(strings.ReplaceAll(mails[i], "=\r\n", ""), "=E2=80=99", "’")
		if !strings.Contains(n, "From: donotreply@amazon.fr") || !strings.Contains(n, orderID) || !strings.Contains(n, tc.phrase) || !strings.Contains(n, alias) ||
			refused[i].NoticeID == "" || !strings.Contains(n, "<"+refused[i].NoticeID+">") {
			t.Fatalf("%s: notice\n%s", tc.text, n)
		}
	}
	// The buyer opts out: an approved sender's reply is refused too, until
	// the buyer opts in again.
	sb.SetBuyerOptedOut(strings.ToUpper(alias), true)
	if err := send(approved, alias, "Bonjour"); err != nil {
		t.Fatal(err)
	}
	refused := sb.RefusedReplies(seller.ID)
	if last := refused[len(refused)-1]; len(refused) != len(tests)+1 || last.Reason != "buyer_opted_out" || last.MessageID != "x@local" {
		t.Fatalf("opted out: refused %+v", refused)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(box.mails()) < len(tests)+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if mails := box.mails(); len(mails) != len(tests)+1 || !strings.Contains(strings.ReplaceAll(mails[len(tests)], "=\r\n", ""), "opt out of receiving unsolicited messages") {
		t.Fatalf("opted out: notices %v", mails)
	}
	sb.SetBuyerOptedOut(alias, false)
	if err := send(approved, alias, "Bonjour encore"); err != nil {
		t.Fatal(err)
	}
	if len(sb.BuyerInbox(seller.ID)) != 2 || len(sb.RefusedReplies(seller.ID)) != len(tests)+1 {
		t.Fatal("a reply refused, or a refused reply reached the buyer")
	}
	box.mu.Lock()
	if box.rcpt[0] != "noreply@keybuzz.io" {
		t.Fatalf("notice sent to %v", box.rcpt)
	}
	box.mu.Unlock()

	page, err := http.Get(web.URL + "/_sandbox/buyers")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !bytes.Contains(b, []byte(approved)) || !bytes.Contains(b, []byte("Votre colis part demain")) {
		t.Fatal("the buyers' page does not show the approved sender and the inbox")
	}
}
