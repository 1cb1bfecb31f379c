// Package relaymail reads a received mail (MIME) and understands the mails
// Amazon relays to a seller: a buyer's message through the marketplace relay,
// and Amazon's own notifications (cancellation and return requests, A-to-z
// claims, chargebacks). It depends on github.com/emersion/go-message for MIME
// structure and transfer encodings, and on golang.org/x/text and
// golang.org/x/net/html for charsets and HTML, nothing else.
//
// go-message rather than enmime: go-message streams parts with only
// golang.org/x/text beneath it, and leaves charset conversion to the caller
// (this package does it, so attachment bytes stay exactly as sent and their
// SHA-256 is the sender's); enmime buffers the whole tree and brings an HTML
// query library, a table renderer and an HTML-to-text converter with it,
// which a Lambda that only needs text does not.
package relaymail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	message "github.com/emersion/go-message"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// ErrMalformed is a mail whose structure cannot be read (no header block, a
// broken multipart, an unparseable From). The raw mail is still the sender's:
// callers keep it and record the failure.
var ErrMalformed = errors.New("malformed mail")

// ErrTooLarge is a mail or a part above the Limits.
var ErrTooLarge = errors.New("mail too large")

// Limits bound what Parse reads. Zero fields take the defaults.
type Limits struct {
	MaxBytes       int64 // the whole raw mail; default 40 MiB (SES's S3 action limit)
	MaxParts       int   // MIME parts; default 200
	MaxHeaderBytes int64 // one header block; default 256 KiB
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = 40 << 20
	}
	if l.MaxParts <= 0 {
		l.MaxParts = 200
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 256 << 10
	}
	return l
}

// Address is a parsed mailbox: the display name (decoded) and the address.
type Address struct {
	Name    string
	Address string
}

// Attachment is one non-body part: a file or an inline image, its bytes
// exactly as the sender encoded them (transfer encoding removed, no charset
// conversion).
type Attachment struct {
	Part        string // the MIME part path, "1.2"
	Filename    string
	ContentType string
	ContentID   string // without angle brackets; inline images
	Inline      bool
	Data        []byte
}

// SHA256 is the hex SHA-256 of the attachment's bytes.
func (a Attachment) SHA256() string {
	s := sha256.Sum256(a.Data)
	return hex.EncodeToString(s[:])
}

// Mail is a received mail reduced to what a helpdesk uses.
type Mail struct {
	MessageID  string // without angle brackets; "" when the mail has none
	InReplyTo  []string
	References []string
	Subject    string
	Date       time.Time // zero when missing or unreadable
	From       Address
	ReplyTo    []Address
	To         []Address
	Headers    map[string][]string // every header, canonical keys, values as sent
	// Text is the body as text: the text/plain alternative, or the HTML one
	// converted when there is no text/plain.
	Text string
	// FromHTML says Text was converted from HTML.
	FromHTML    bool
	Attachments []Attachment
	// Problems lists what was read around (an unknown charset read as
	// windows-1252, an unknown transfer encoding kept as sent).
	Problems []string
}

// Parse reads a raw mail. It fails with ErrMalformed when the mail cannot be
// read at all and ErrTooLarge beyond the limits; a part it cannot decode is
// kept as sent and noted in Problems rather than failing the mail.
func Parse(raw []byte, lim Limits) (*Mail, error) {
	lim = lim.withDefaults()
	if int64(len(raw)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), lim.MaxBytes)
	}
	ent, err := message.ReadWithOptions(bytes.NewReader(raw), &message.ReadOptions{MaxHeaderBytes: lim.MaxHeaderBytes})
	if ent == nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	m := &Mail{Headers: map[string][]string{}}
	fields := ent.Header.Fields()
	for fields.Next() {
		k := fields.Key()
		m.Headers[k] = append(m.Headers[k], fields.Value())
	}
	if len(m.Headers) == 0 {
		return nil, fmt.Errorf("%w: no header fields", ErrMalformed)
	}
	m.Subject = decodeHeader(ent.Header.Get("Subject"))
	m.MessageID = MessageID(ent.Header.Get("Message-Id"))
	m.InReplyTo = msgIDs(ent.Header.Get("In-Reply-To"))
	m.References = msgIDs(ent.Header.Get("References"))
	if d := ent.Header.Get("Date"); d != "" {
		if t, err := mail.ParseDate(d); err == nil {
			m.Date = t
		}
	}
	from, err := parseAddressList(ent.Header.Get("From"))
	if err != nil || len(from) == 0 {
		return nil, fmt.Errorf("%w: From %q", ErrMalformed, ent.Header.Get("From"))
	}
	m.From = from[0]
	m.ReplyTo, _ = parseAddressList(ent.Header.Get("Reply-To"))
	m.To, _ = parseAddressList(ent.Header.Get("To"))

	var plain, html []string
	parts := 0
	walkErr := ent.Walk(func(path []int, e *message.Entity, perr error) error {
		parts++
		if parts > lim.MaxParts {
			return fmt.Errorf("%w: more than %d parts", ErrTooLarge, lim.MaxParts)
		}
		if perr != nil && message.IsUnknownEncoding(perr) {
			m.Problems = append(m.Problems, fmt.Sprintf("part %s: %v (kept as sent)", partPath(path), perr))
		}
		mediaType, params, _ := e.Header.ContentType()
		if mediaType == "" {
			mediaType = "text/plain"
		}
		if strings.HasPrefix(mediaType, "multipart/") {
			return nil
		}
		disp, dparams, _ := e.Header.ContentDisposition()
		filename := decodeHeader(dparams["filename"])
		if filename == "" {
			filename = decodeHeader(params["name"])
		}
		body, err := io.ReadAll(e.Body)
		if err != nil {
			// A truncated base64 or QP part: keep what was read.
			m.Problems = append(m.Problems, fmt.Sprintf("part %s: %v", partPath(path), err))
		}
		isBody := disp != "attachment" && filename == "" && (mediaType == "text/plain" || mediaType == "text/html")
		if !isBody {
			if mediaType == "message/rfc822" && filename == "" {
				filename = "message.eml"
			}
			m.Attachments = append(m.Attachments, Attachment{
				Part:        partPath(path),
				Filename:    filename,
				ContentType: mediaType,
				ContentID:   MessageID(e.Header.Get("Content-Id")),
				Inline:      disp == "inline" || (disp == "" && e.Header.Get("Content-Id") != ""),
				Data:        body,
			})
			return nil
		}
		text, problem := toUTF8(body, params["charset"])
		if problem != "" {
			m.Problems = append(m.Problems, fmt.Sprintf("part %s: %s", partPath(path), problem))
		}
		if mediaType == "text/html" {
			html = append(html, text)
		} else {
			plain = append(plain, text)
		}
		return nil
	})
	if walkErr != nil {
		if errors.Is(walkErr, ErrTooLarge) {
			return nil, walkErr
		}
		if len(plain) == 0 && len(html) == 0 {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, walkErr)
		}
		m.Problems = append(m.Problems, "structure: "+walkErr.Error())
	}
	switch {
	case len(plain) > 0:
		m.Text = normalise(strings.Join(plain, "\n"))
	case len(html) > 0:
		m.Text = normalise(HTMLToText(strings.Join(html, "\n")))
		m.FromHTML = true
	}
	return m, nil
}

func partPath(path []int) string {
	if len(path) == 0 {
		return "0"
	}
	s := make([]string, len(path))
	for i, p := range path {
		s[i] = fmt.Sprint(p + 1)
	}
	return strings.Join(s, ".")
}

// charsetEncoding finds a charset by its MIME or HTML label.
func charsetEncoding(label string) (encoding.Encoding, error) {
	label = strings.ToLower(strings.Trim(strings.TrimSpace(label), `"`))
	if enc, err := ianaindex.MIME.Encoding(label); err == nil && enc != nil {
		return enc, nil
	}
	if enc, err := htmlindex.Get(label); err == nil && enc != nil {
		return enc, nil
	}
	return nil, fmt.Errorf("unknown charset %q", label)
}

// toUTF8 converts a text part. Without a charset (or with a wrong "utf-8"
// or "us-ascii" label on 8-bit bytes) text that is not valid UTF-8 is read as
// windows-1252, the superset of ISO-8859-1 that mailers mislabel most.
func toUTF8(b []byte, label string) (string, string) {
	l := strings.ToLower(strings.TrimSpace(label))
	if l == "" || l == "utf-8" || l == "utf8" || l == "us-ascii" {
		if utf8.Valid(b) {
			return string(b), ""
		}
		s, _ := charmap.Windows1252.NewDecoder().Bytes(b)
		return string(s), fmt.Sprintf("charset %q: not valid, read as windows-1252", label)
	}
	enc, err := charsetEncoding(l)
	if err != nil {
		s, _ := charmap.Windows1252.NewDecoder().Bytes(b)
		return string(s), err.Error() + ": read as windows-1252"
	}
	s, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD"), fmt.Sprintf("charset %q: %v", label, err)
	}
	return string(s), ""
}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(label string, r io.Reader) (io.Reader, error) {
	enc, err := charsetEncoding(label)
	if err != nil {
		return nil, err
	}
	return enc.NewDecoder().Reader(r), nil
}}

// decodeHeader decodes RFC 2047 words; raw 8-bit header text that is not
// UTF-8 is read as windows-1252.
func decodeHeader(s string) string {
	if s == "" {
		return ""
	}
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		d = s
	}
	if !utf8.ValidString(d) {
		b, _ := charmap.Windows1252.NewDecoder().String(d)
		d = b
	}
	return strings.TrimSpace(d)
}

func parseAddressList(s string) ([]Address, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	p := mail.AddressParser{WordDecoder: wordDecoder}
	list, err := p.ParseList(s)
	if err != nil {
		// A display name with unquoted specials ("Name - Amazon Marketplace, Inc"):
		// take the last <addr> and what precedes it.
		if i, j := strings.LastIndex(s, "<"), strings.LastIndex(s, ">"); i >= 0 && j > i {
			a, err2 := p.Parse("<" + s[i+1:j] + ">")
			if err2 == nil {
				name := decodeHeader(strings.Trim(strings.TrimSpace(s[:i]), `"`))
				return []Address{{Name: name, Address: strings.ToLower(a.Address)}}, nil
			}
		}
		return nil, err
	}
	out := make([]Address, len(list))
	for i, a := range list {
		out[i] = Address{Name: decodeHeader(a.Name), Address: strings.ToLower(a.Address)}
	}
	return out, nil
}

// MessageID is the id of a Message-ID header (or of one entry of
// References or In-Reply-To): what stands between its angle brackets, or
// the whole when it has none and no space.
func MessageID(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return s[i+1 : i+j]
		}
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return ""
	}
	return s
}

func msgIDs(s string) []string {
	var out []string
	for _, f := range strings.Fields(strings.ReplaceAll(s, ",", " ")) {
		if id := MessageID(f); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// normalise turns CRLF into LF, drops trailing spaces and collapses runs of
// blank lines.
func normalise(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.ReplaceAll(s, "\u00a0", " ")
	lines := strings.Split(s, "\n")
	out := make([]string, 0, len(lines))
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if l == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}
