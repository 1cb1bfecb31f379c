package replymail

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
)

func TestCompose(t *testing.T) {
	const text = "Bonjour Jeanne,\n\nVotre colis <b>part</b> demain & arrive jeudi.\nMerci — l'équipe 😀"
	raw, err := Compose(Mail{
		From:         "amazon.t1.fr.abcdefghijklmnop@inbound.keybuzz.io",
		To:           "abc123xyz+ref@marketplace.amazon.fr",
		BuyerSubject: "Livraison : Demande de renseignements de la part du client Amazon Jeanne (Commande : 171-1234567-1234567)",
		InReplyTo:    "<0102018f.buyer@email.amazonses.com>",
		References:   []string{"<first@x>", "0102018f.buyer@email.amazonses.com"},
		Text:         text,
		Date:         time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatal("a line ends without CR")
	}
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header
	checkAddr := func(key, want string) {
		l, err := h.AddressList(key)
		if err != nil || len(l) != 1 || l[0].Address != want {
			t.Fatalf("%s = %v (%v), want %s", key, l, err, want)
		}
	}
	checkAddr("From", "amazon.t1.fr.abcdefghijklmnop@inbound.keybuzz.io")
	checkAddr("To", "abc123xyz+ref@marketplace.amazon.fr")
	if s, _ := h.Subject(); s != "Re: Livraison : Demande de renseignements de la part du client Amazon Jeanne (Commande : 171-1234567-1234567)" {
		t.Fatalf("Subject = %q", s)
	}
	if irt, _ := h.MsgIDList("In-Reply-To"); len(irt) != 1 || irt[0] != "0102018f.buyer@email.amazonses.com" {
		t.Fatalf("In-Reply-To = %v", irt)
	}
	if refs, _ := h.MsgIDList("References"); strings.Join(refs, " ") != "first@x 0102018f.buyer@email.amazonses.com" {
		t.Fatalf("References = %v", refs)
	}
	if d, _ := h.Date(); !d.Equal(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("Date = %v", d)
	}
	if mt, _, _ := h.ContentType(); mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %s", mt)
	}
	var parts []string
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ih, ok := p.Header.(*mail.InlineHeader)
		if !ok {
			t.Fatalf("part %T is not inline", p.Header)
		}
		ct, params, _ := ih.ContentType()
		if params["charset"] != "utf-8" {
			t.Fatalf("%s charset = %q", ct, params["charset"])
		}
		b, _ := io.ReadAll(p.Body)
		parts = append(parts, ct)
		switch ct {
		case "text/plain":
			if strings.ReplaceAll(string(b), "\r\n", "\n") != text {
				t.Fatalf("text/plain = %q", b)
			}
		case "text/html":
			want := "Bonjour Jeanne,<br>\r\n&nbsp;<br>\r\nVotre colis &lt;b&gt;part&lt;/b&gt; demain &amp; arrive jeudi.<br>\r\nMerci — l&#39;équipe 😀"
			if string(b) != want {
				t.Fatalf("text/html = %q\nwant %q", b, want)
			}
			if strings.Contains(strings.ToLower(string(b)), "<p") {
				t.Fatal("HTML part has <p>")
			}
		}
	}
	if strings.Join(parts, ",") != "text/plain,text/html" {
		t.Fatalf("parts = %v", parts)
	}
}

func TestComposeRefuses(t *testing.T) {
	good := Mail{From: "a@inbound.keybuzz.io", To: "b@marketplace.amazon.de", Text: "x"}
	for name, mut := range map[string]func(*Mail){
		"bad from": func(m *Mail) { m.From = "nobody" },
		"bad to":   func(m *Mail) { m.To = "" },
		"no text":  func(m *Mail) { m.Text = "  " },
	} {
		m := good
		mut(&m)
		if _, err := Compose(m); err == nil {
			t.Errorf("%s: composed", name)
		}
	}
	raw, err := Compose(good)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("In-Reply-To")) || bytes.Contains(raw, []byte("References")) {
		t.Fatal("threading headers without a buyer Message-ID")
	}
}
