package relaymail_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/shared/relaymail"
)

func TestSender(t *testing.T) {
	for _, tc := range []struct {
		addr string
		kind relaymail.Kind
		mp   string
		ok   bool
	}{
		{"abc@marketplace.amazon.fr", relaymail.KindBuyerMessage, "A13V1IB3VIYZZH", true},
		{"ABC+x1@Marketplace.Amazon.co.uk", relaymail.KindBuyerMessage, "A1F83G8C2ARO7P", true},
		{"a@marketplace.amazon.com.be", relaymail.KindBuyerMessage, "AMEN7PMS3EDWL", true},
		{"donotreply@amazon.de", relaymail.KindNotice, "A1PA6795UKMFR9", true},
		{"atoz-guarantee-no-reply@amazon.co.jp", relaymail.KindAtoZ, "A1VC38T7YXB528", true},
		{"cb-seller-notification@amazon.com", relaymail.KindChargeback, "ATVPDKIKX0DER", true},
		{"someone@amazon.fr", "", "", false},                    // not a notification mailbox
		{"a@marketplace.amazon.fr.evil.example", "", "", false}, // suffix trick
		{"a@marketplace.amazon.zz", "", "", false},              // no such store
		{"a@evilmarketplace.amazon.fr", "", "", false},          // prefix trick
		{"donotreply@amazon.fr.example", "", "", false},         // suffix trick
		{"not-an-address", "", "", false},
	} {
		kind, mp, _, ok := relaymail.Sender(tc.addr)
		if ok != tc.ok || kind != tc.kind || mp.ID != tc.mp {
			t.Errorf("Sender(%q) = %s %s %v, want %s %s %v", tc.addr, kind, mp.ID, ok, tc.kind, tc.mp, tc.ok)
		}
	}
}

func parse(t *testing.T, raw string) *relaymail.Mail {
	t.Helper()
	m, err := relaymail.Parse([]byte(strings.ReplaceAll(raw, "\n", "\r\n")), relaymail.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWordsWithoutMarkersKeepTheWholeText(t *testing.T) {
	m := parse(t, "From: \"A - Amazon Marketplace\" <a@marketplace.amazon.com>\nSubject: hi\n\nfirst line\n[commMgrTok:XYZ]\n")
	r, err := relaymail.Understand(m)
	if err != nil {
		t.Fatal(err)
	}
	if r.Words != "first line" || r.Marked {
		t.Errorf("words = %q marked %v", r.Words, r.Marked)
	}
	if r.ThreadKey() != "buyer:a@marketplace.amazon.com" {
		t.Errorf("thread key %q", r.ThreadKey())
	}
}

func TestOrderIDFromBodyWhenSubjectHasNone(t *testing.T) {
	m := parse(t, "From: \"B - Amazon Marketplace\" <b+1@marketplace.amazon.de>\nSubject: Frage\n\nBestellnummer: 303-1234567-7654321\n------------- Begin message -------------\nHallo\n------------- End message -------------\n")
	r, _ := relaymail.Understand(m)
	if r.OrderID != "303-1234567-7654321" || r.ThreadKey() != r.OrderID || r.BuyerKey != "b@marketplace.amazon.de" || r.Words != "Hallo" {
		t.Errorf("%+v", r)
	}
}

func TestTooLargeAndTooManyParts(t *testing.T) {
	raw := []byte("From: a@marketplace.amazon.com\r\n\r\n" + strings.Repeat("x", 2000))
	if _, err := relaymail.Parse(raw, relaymail.Limits{MaxBytes: 1000}); !errors.Is(err, relaymail.ErrTooLarge) {
		t.Errorf("size: %v", err)
	}
	var b strings.Builder
	b.WriteString("From: a@marketplace.amazon.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
	for i := 0; i < 20; i++ {
		b.WriteString("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n")
	}
	b.WriteString("--b--\r\n")
	if _, err := relaymail.Parse([]byte(b.String()), relaymail.Limits{MaxParts: 10}); !errors.Is(err, relaymail.ErrTooLarge) {
		t.Errorf("parts: %v", err)
	}
}

func TestHTMLToText(t *testing.T) {
	got := relaymail.HTMLToText(`<html><head><title>x</title><style>p{}</style></head><body><p>Hello &amp; <b>bye</b></p><script>alert(1)</script><ul><li>one</li><li>two</li></ul>a<br>b</body></html>`)
	want := "Hello & bye\n\n- one\n- two\na\nb"
	if strings.TrimSpace(got) != want {
		t.Errorf("HTMLToText = %q, want %q", got, want)
	}
}
