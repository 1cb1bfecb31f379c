// Package replymail writes a reply to a buyer as raw MIME (what SESv2's
// SendEmail takes): github.com/emersion/go-message, apart from the reply
// domain so that the routes do not link a MIME library.
package replymail

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

// Mail is what a reply's raw MIME says. SES replaces Message-ID and Date:
// nothing here relies on either.
type Mail struct {
	From         string   // the tenant's inbound address of the alias's marketplace country
	To           string   // the buyer's relay alias, whole (a +suffix included)
	BuyerSubject string   // the buyer mail's Subject; the reply's is "Re: " + it
	InReplyTo    string   // the buyer mail's Message-ID, with or without <>
	References   []string // the buyer mail's References, before its Message-ID ("" entries ignored)
	Text         string   // the checked reply text
	Date         time.Time
}

// Compose writes the reply as raw MIME (CRLF lines): From, To, Subject,
// Date, In-Reply-To and References (the buyer mail's Message-ID last), and
// a multipart/alternative body of text/plain UTF-8 and a minimal HTML part
// whose only markup is <br> (Amazon renders <br> and not <p>, and collapses
// <br><br>, so an empty line is written as a no-break space).
func Compose(m Mail) ([]byte, error) {
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return nil, fmt.Errorf("compose reply: from %q: %w", m.From, err)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return nil, fmt.Errorf("compose reply: to %q: %w", m.To, err)
	}
	if strings.TrimSpace(m.Text) == "" {
		return nil, errors.New("compose reply: empty text")
	}
	var h mail.Header
	// Bare addresses (go-message writes "<addr>" for a nameless one).
	h.Set("From", from.Address)
	h.Set("To", to.Address)
	h.SetSubject(reply.Subject(m.BuyerSubject))
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	h.SetDate(date)
	if id := msgID(m.InReplyTo); id != "" {
		h.SetMsgIDList("In-Reply-To", []string{id})
		var refs []string
		for _, r := range m.References {
			if r = msgID(r); r != "" && r != id {
				refs = append(refs, r)
			}
		}
		h.SetMsgIDList("References", append(refs, id))
	}
	h.Set("MIME-Version", "1.0")

	var buf bytes.Buffer
	w, err := mail.CreateInlineWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("compose reply: %w", err)
	}
	text := normalizeNewlines(m.Text)
	if err := writePart(w, "text/plain", text); err != nil {
		return nil, err
	}
	if err := writePart(w, "text/html", HTML(text)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compose reply: close: %w", err)
	}
	return buf.Bytes(), nil
}

func writePart(w *mail.InlineWriter, contentType, body string) error {
	var ph mail.InlineHeader
	ph.SetContentType(contentType, map[string]string{"charset": "utf-8"})
	ph.Set("Content-Transfer-Encoding", "quoted-printable")
	pw, err := w.CreatePart(ph)
	if err != nil {
		return fmt.Errorf("compose reply: %s part: %w", contentType, err)
	}
	if _, err := io.WriteString(pw, body); err != nil {
		return fmt.Errorf("compose reply: %s part: %w", contentType, err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("compose reply: %s part: %w", contentType, err)
	}
	return nil
}

// HTML is the reply's HTML part: the text escaped, each line ended by <br>,
// an empty line written as &nbsp; so that Amazon keeps it.
func HTML(text string) string {
	lines := strings.Split(normalizeNewlines(text), "\n")
	var b strings.Builder
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			b.WriteString("&nbsp;")
		} else {
			b.WriteString(html.EscapeString(l))
		}
		if i < len(lines)-1 {
			b.WriteString("<br>\r\n")
		}
	}
	return b.String()
}

func normalizeNewlines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// msgID strips the angle brackets and spaces of a Message-ID.
func msgID(s string) string {
	return strings.TrimSpace(strings.Trim(strings.TrimSpace(s), "<>"))
}
