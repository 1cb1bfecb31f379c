package sandbox

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/mail"
	smtp "github.com/emersion/go-smtp"

	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
)

// The sandbox plays the receiving side of Amazon's relay: a seller's reply
// is an e-mail to the buyer's alias (…@marketplace.amazon.<tld>), accepted
// only From an address the seller approved for the alias's marketplace
// (Seller Central > Settings > Messaging Permissions) and only when its text
// follows the Buyer-Seller Messaging guidelines (no link but Amazon's, no
// e-mail address, no phone number). An accepted reply lands in the buyer's
// inbox (GET /_sandbox/sellers/{id}/buyer-inbox); a refused one comes back
// to the sender as Amazon's notice mail, through Config.RelaySMTP (the
// receiver that plays SES's receipt rule). An unknown alias is refused in
// the SMTP dialogue (550), which SES reports as a bounce.

// BuyerMail is a reply a buyer received.
type BuyerMail struct {
	SellerID   string    `json:"sellerId"`
	OrderID    string    `json:"orderId"`
	Alias      string    `json:"alias"`
	From       string    `json:"from"`
	Subject    string    `json:"subject"`
	Text       string    `json:"text"`
	InReplyTo  string    `json:"inReplyTo"`
	MessageID  string    `json:"messageId"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// RefusedReply is a reply Amazon did not deliver, and why.
type RefusedReply struct {
	SellerID string `json:"sellerId"`
	OrderID  string `json:"orderId"`
	Alias    string `json:"alias"`
	From     string `json:"from"`
	Reason   string `json:"reason"` // sender_not_approved, content_refused, buyer_opted_out
	// MessageID is the refused mail's Message-ID without its angle
	// brackets, as BuyerMail's (SES's, for a reply sent through SES).
	MessageID string `json:"messageId"`
	// NoticeID is the Message-ID (without angle brackets) of Amazon's
	// notice mailed back to the sender ("" when none was mailed).
	NoticeID   string    `json:"noticeId,omitempty"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// buyerRelay is the state of replies; guarded by its own lock.
type buyerRelay struct {
	mu       sync.Mutex
	approved map[string]map[string][]string // seller -> marketplace -> addresses (lower case)
	inbox    map[string][]BuyerMail         // seller -> received replies
	refused  map[string][]RefusedReply
	optedOut map[string]bool // aliases (lower case) of buyers who opted out
}

func (b *buyerRelay) init() {
	if b.approved == nil {
		b.approved = map[string]map[string][]string{}
		b.inbox = map[string][]BuyerMail{}
		b.refused = map[string][]RefusedReply{}
		b.optedOut = map[string]bool{}
	}
}

// buyerRelays holds each Server's reply state (kept apart from Server's
// fields so this room is one file).
var buyerRelays sync.Map // *Server -> *buyerRelay

func (s *Server) replies() *buyerRelay {
	v, _ := buyerRelays.LoadOrStore(s, &buyerRelay{})
	b := v.(*buyerRelay)
	b.mu.Lock()
	b.init()
	b.mu.Unlock()
	return b
}

// SetApprovedSenders replaces the addresses a seller approved for one
// marketplace under Messaging Permissions.
func (s *Server) SetApprovedSenders(sellerID, marketplaceID string, addresses []string) {
	b := s.replies()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.approved[sellerID] == nil {
		b.approved[sellerID] = map[string][]string{}
	}
	var l []string
	for _, a := range addresses {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
			l = append(l, a)
		}
	}
	b.approved[sellerID][marketplaceID] = l
}

// SetBuyerOptedOut records that the buyer of an alias opted out of
// unsolicited messages (or no longer does): Amazon refuses replies to it
// and mails its notice.
func (s *Server) SetBuyerOptedOut(alias string, out bool) {
	b := s.replies()
	b.mu.Lock()
	defer b.mu.Unlock()
	a := strings.ToLower(strings.TrimSpace(alias))
	if out {
		b.optedOut[a] = true
	} else {
		delete(b.optedOut, a)
	}
}

// ApprovedSenders are the addresses a seller approved, by marketplace.
func (s *Server) ApprovedSenders(sellerID string) map[string][]string {
	b := s.replies()
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][]string{}
	for mp, l := range b.approved[sellerID] {
		out[mp] = append([]string(nil), l...)
	}
	return out
}

// BuyerInbox is what a seller's buyers received, oldest first.
func (s *Server) BuyerInbox(sellerID string) []BuyerMail {
	b := s.replies()
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]BuyerMail{}, b.inbox[sellerID]...)
}

// RefusedReplies are the replies Amazon refused for a seller.
func (s *Server) RefusedReplies(sellerID string) []RefusedReply {
	b := s.replies()
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]RefusedReply{}, b.refused[sellerID]...)
}

// ReplyRelay is the sandbox's SMTP server for mail to buyers' aliases.
type ReplyRelay struct {
	s   *Server
	srv *smtp.Server
	ln  net.Listener
	wg  sync.WaitGroup
}

// StartReplyRelay listens on addr ("127.0.0.1:0") for replies to buyers'
// aliases, as Amazon's mail servers for marketplace.amazon.<tld> do.
func (s *Server) StartReplyRelay(addr string) (*ReplyRelay, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sandbox reply relay: listen %s: %w", addr, err)
	}
	rr := &ReplyRelay{s: s, ln: ln}
	srv := smtp.NewServer(rr)
	srv.Domain = "inbound-smtp.marketplace.amazon.local"
	srv.MaxMessageBytes = 20 << 20
	srv.MaxRecipients = 10
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = sandboxSMTPLog{s.log}
	rr.srv = srv
	rr.wg.Add(1)
	go func() {
		defer rr.wg.Done()
		_ = srv.Serve(ln)
	}()
	return rr, nil
}

// Addr is the relay's host:port.
func (rr *ReplyRelay) Addr() string { return rr.ln.Addr().String() }

// Close stops the relay.
func (rr *ReplyRelay) Close() error {
	err := rr.srv.Close()
	rr.wg.Wait()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// NewSession implements smtp.Backend.
func (rr *ReplyRelay) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &replySession{rr: rr}, nil
}

type replySession struct {
	rr   *ReplyRelay
	from string
	to   []aliasOrder
}

// aliasOrder is an alias with the seller and orders it belongs to.
type aliasOrder struct {
	alias, sellerID, marketplaceID string
	orderIDs                       []string // newest last
}

func (ss *replySession) Reset()        { ss.from, ss.to = "", nil }
func (ss *replySession) Logout() error { return nil }
func (ss *replySession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

// Rcpt accepts the aliases of the sandbox's buyers and refuses others (550).
func (ss *replySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	a, ok := ss.rr.s.lookupAlias(to)
	if !ok {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "The email account that you tried to reach does not exist"}
	}
	ss.to = append(ss.to, a)
	return nil
}

func (ss *replySession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	for _, a := range ss.to {
		if err := ss.rr.s.receiveReply(ss.from, a, raw); err != nil {
			ss.rr.s.log.Error("sandbox: reply not handled", "err", err)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again"}
		}
	}
	return nil
}

// OrderAlias is the buyer's relay alias of an order and its marketplace.
func (s *Server) OrderAlias(sellerID, orderID string) (alias, marketplaceID string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, found := s.sellerBy[sellerID]
	if !found {
		return "", "", false
	}
	o := s.storeLocked(s.sellers[idx]).byID[orderID]
	if o == nil {
		return "", "", false
	}
	return o.buyerEmail, o.marketplaceID, true
}

// lookupAlias finds the seller and orders of a buyer's alias (the whole
// address, case-insensitively).
func (s *Server) lookupAlias(addr string) (aliasOrder, bool) {
	addr = strings.ToLower(strings.Trim(strings.TrimSpace(addr), "<>"))
	s.mu.Lock()
	defer s.mu.Unlock()
	var out aliasOrder
	for _, sl := range s.sellers {
		st := s.stores[sl.ID]
		if st == nil {
			continue
		}
		for _, o := range st.orders {
			if strings.EqualFold(o.buyerEmail, addr) {
				out.alias, out.sellerID, out.marketplaceID = o.buyerEmail, sl.ID, o.marketplaceID
				out.orderIDs = append(out.orderIDs, o.id)
			}
		}
		if out.alias != "" {
			return out, true
		}
	}
	return out, false
}

var (
	sbOrderRe      = regexp.MustCompile(`\b\d{3}-\d{7}-\d{7}\b`)
	sbEmailRe      = regexp.MustCompile(`(?i)[a-z0-9._%+\-]+@[a-z0-9\-]+(\.[a-z0-9\-]+)+`)
	sbURLRe        = regexp.MustCompile(`(?i)\b(?:https?://|www\.)([^\s/<>"?#]+)`)
	sbAmazonHostRe = regexp.MustCompile(`(^|\.)amazon\.[a-z.]+$|^amzn\.(to|eu)$`)
	sbPhoneRe      = regexp.MustCompile(`(?:\+\d{1,3}[ .\-]?)?(?:\(?\d{2,4}\)?[ .\-]){2,}\d{2,4}`)
)

// guidelineBreach is the reason a text breaks the messaging guidelines, "" when none.
func guidelineBreach(text string) string {
	if sbEmailRe.MatchString(text) {
		return "an e-mail address"
	}
	for _, m := range sbURLRe.FindAllStringSubmatch(text, -1) {
		host := strings.ToLower(m[1])
		if !sbAmazonHostRe.MatchString(host) {
			return "a link to " + host
		}
	}
	plain := sbOrderRe.ReplaceAllString(text, " ")
	for _, m := range sbPhoneRe.FindAllString(plain, -1) {
		if n := strings.Count(strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return 'd'
			}
			return -1
		}, m), "d"); n >= 8 && n <= 15 {
			return "a phone number"
		}
	}
	return ""
}

// receiveReply decides the fate of one reply to one alias.
func (s *Server) receiveReply(envelopeFrom string, a aliasOrder, raw []byte) error {
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return s.refuseReply(envelopeFrom, a, "", "", "content_refused", "an unreadable message")
	}
	h := mr.Header
	from := envelopeFrom
	if l, err := h.AddressList("From"); err == nil && len(l) > 0 {
		from = l[0].Address
	}
	subject, _ := h.Subject()
	inReplyTo, _ := h.MsgIDList("In-Reply-To")
	msgID, _ := h.MessageID()
	text := ""
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if ih, ok := p.Header.(*mail.InlineHeader); ok {
			if ct, _, _ := ih.ContentType(); ct == "text/plain" && text == "" {
				b, _ := io.ReadAll(io.LimitReader(p.Body, 1<<20))
				text = strings.ReplaceAll(string(b), "\r\n", "\n")
			}
		}
	}
	orderID := sbOrderRe.FindString(subject)
	if orderID == "" && len(a.orderIDs) > 0 {
		orderID = a.orderIDs[len(a.orderIDs)-1]
	}
	b := s.replies()
	b.mu.Lock()
	approved := false
	for _, addr := range b.approved[a.sellerID][a.marketplaceID] {
		if strings.EqualFold(addr, from) {
			approved = true
		}
	}
	optedOut := b.optedOut[strings.ToLower(a.alias)]
	b.mu.Unlock()
	if !approved {
		return s.refuseReply(from, a, orderID, msgID, "sender_not_approved", "")
	}
	if why := guidelineBreach(text); why != "" {
		return s.refuseReply(from, a, orderID, msgID, "content_refused", why)
	}
	if optedOut {
		return s.refuseReply(from, a, orderID, msgID, "buyer_opted_out", "")
	}
	m := BuyerMail{SellerID: a.sellerID, OrderID: orderID, Alias: a.alias, From: from, Subject: subject, Text: strings.TrimSpace(text),
		MessageID: msgID, ReceivedAt: s.clock.Now().UTC()}
	if len(inReplyTo) > 0 {
		m.InReplyTo = "<" + inReplyTo[0] + ">"
	}
	b.mu.Lock()
	b.inbox[a.sellerID] = append(b.inbox[a.sellerID], m)
	b.mu.Unlock()
	s.log.Info("sandbox: reply delivered to the buyer", "seller", a.sellerID, "order", orderID)
	return nil
}

// refuseReply records the refusal and mails Amazon's notice to the sender,
// in the words Amazon's notices use (see shared/relaymail's notice phrases).
func (s *Server) refuseReply(sender string, a aliasOrder, orderID, msgID, reason, detail string) error {
	now := s.clock.Now().UTC()
	idb := make([]byte, 10)
	_, _ = rand.Read(idb)
	noticeID := fmt.Sprintf("0102019d%s-notice@eu-west-1.amazonses.com", hex.EncodeToString(idb))
	mailed := s.cfg.RelaySMTP != "" && sender != ""
	rec := RefusedReply{SellerID: a.sellerID, OrderID: orderID, Alias: a.alias, From: sender, Reason: reason, MessageID: msgID, ReceivedAt: now}
	if mailed {
		rec.NoticeID = noticeID
	}
	b := s.replies()
	b.mu.Lock()
	b.refused[a.sellerID] = append(b.refused[a.sellerID], rec)
	b.mu.Unlock()
	s.log.Info("sandbox: reply refused", "seller", a.sellerID, "order", orderID, "reason", reason)
	if !mailed {
		return nil
	}
	tld := marketplaceInfo[a.marketplaceID].tld
	var body string
	switch reason {
	case "sender_not_approved":
		body = fmt.Sprintf("We were unable to deliver the message you sent for order %s to %s because it is not coming from the account's registered email address or from an authorized email address.\n\n"+
			"To send messages from this address, add it under Settings > Messaging Permissions in Seller Central.", orderID, a.alias)
	case "buyer_opted_out":
		body = fmt.Sprintf("We were unable to deliver the message you sent for order %s to %s because the buyer has chosen to opt out of receiving unsolicited messages from sellers.", orderID, a.alias)
	default:
		body = fmt.Sprintf("This message was not sent as it did not meet the Buyer-Seller Messaging communication guidelines (it contains %s).\n\n"+
			"Order: %s\nTo: %s", detail, orderID, a.alias)
	}
	body += fmt.Sprintf("\n\nhttps://sellercentral.amazon.%s/messaging/inbox\n\nCopyright %d Amazon, Inc. or its affiliates. All rights reserved.\n", tld, now.Year())
	var h mail.Header
	h.Set("From", "donotreply@amazon."+tld)
	h.Set("To", sender)
	h.SetSubject(fmt.Sprintf("Message delivery failure: your message for order %s", orderID))
	h.SetDate(now)
	h.SetMessageID(noticeID)
	var buf bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return err
	}
	_, _ = io.WriteString(w, body)
	if err := w.Close(); err != nil {
		return err
	}
	if err := smtpses.Send(s.cfg.RelaySMTP, "donotreply@amazon."+tld, []string{sender}, buf.Bytes()); err != nil {
		// The sender's domain is not ours to reach: Amazon drops the notice too.
		s.log.Warn("sandbox: notice not delivered", "to", sender, "err", err)
	}
	return nil
}

func (s *Server) buyerRelayRoutes(m *http.ServeMux) {
	m.HandleFunc("PUT /_sandbox/sellers/{id}/approved-senders", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		var in struct {
			MarketplaceID string   `json:"marketplaceId"`
			Addresses     []string `json:"addresses"`
		}
		if !decode(w, r, &in) {
			return
		}
		if _, ok := marketplaceInfo[in.MarketplaceID]; !ok {
			adminError(w, http.StatusBadRequest, "marketplaceId: unknown marketplace")
			return
		}
		for _, a := range in.Addresses {
			if !strings.Contains(a, "@") {
				adminError(w, http.StatusBadRequest, "addresses: want e-mail addresses")
				return
			}
		}
		s.SetApprovedSenders(id, in.MarketplaceID, in.Addresses)
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"sellerId": id, "approvedSenders": s.ApprovedSenders(id)})
	}))
	m.HandleFunc("GET /_sandbox/sellers/{id}/approved-senders", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"sellerId": id, "approvedSenders": s.ApprovedSenders(id)})
	}))
	m.HandleFunc("GET /_sandbox/sellers/{id}/buyer-inbox", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		writeJSON(w, http.StatusOK, jsonType, s.BuyerInbox(id))
	}))
	m.HandleFunc("GET /_sandbox/sellers/{id}/refused-replies", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		writeJSON(w, http.StatusOK, jsonType, s.RefusedReplies(id))
	}))
	m.HandleFunc("GET /_sandbox/buyers", s.handleBuyersPage)
}

// handleBuyersPage is Seller Central's Messaging Permissions (the approved
// senders per marketplace) and, per seller, what the buyers received.
func (s *Server) handleBuyersPage(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	b.WriteString(`<!doctype html><meta charset="utf-8"><title>Amazon sandbox: buyers' inbox</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}fieldset{margin:1em 0}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em;text-align:left;vertical-align:top}pre{white-space:pre-wrap;margin:0}</style>
<h1>Replies to buyers (sandbox of Amazon's relay)</h1>
<p>Seller Central &gt; Settings &gt; Messaging Permissions: replies are accepted only from these addresses, per marketplace.</p>`)
	for _, sl := range s.Sellers() {
		id := html.EscapeString(sl.ID)
		approved := s.ApprovedSenders(sl.ID)
		fmt.Fprintf(&b, `<fieldset><legend>%s (%s)</legend>`, html.EscapeString(sl.Name), id)
		for _, mp := range sl.MarketplaceIDs {
			fmt.Fprintf(&b, `<form onsubmit="event.preventDefault();approve('%s','%s',this)"><label>%s approved senders (comma separated) <input name="addresses" value="%s" size="70"></label><button>Save</button></form>`,
				id, html.EscapeString(mp), html.EscapeString(marketplaceInfo[mp].name), html.EscapeString(strings.Join(approved[mp], ", ")))
		}
		b.WriteString(`<output></output><h3>Buyers' inbox</h3><table class="inbox"><tr><th>received</th><th>order</th><th>alias</th><th>from</th><th>subject</th><th>in reply to</th><th>text</th></tr>`)
		for _, m := range s.BuyerInbox(sl.ID) {
			fmt.Fprintf(&b, `<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td><pre>%s</pre></td></tr>`,
				m.ReceivedAt.Format(time.RFC3339), html.EscapeString(m.OrderID), html.EscapeString(m.Alias), html.EscapeString(m.From),
				html.EscapeString(m.Subject), html.EscapeString(m.InReplyTo), html.EscapeString(m.Text))
		}
		b.WriteString(`</table><h3>Refused replies</h3><ul>`)
		for _, f := range s.RefusedReplies(sl.ID) {
			fmt.Fprintf(&b, `<li>%s %s from %s to %s: %s</li>`, f.ReceivedAt.Format(time.RFC3339), html.EscapeString(f.OrderID),
				html.EscapeString(f.From), html.EscapeString(f.Alias), html.EscapeString(f.Reason))
		}
		b.WriteString(`</ul></fieldset>`)
	}
	b.WriteString(`<script>
async function approve(id,mp,f){const addresses=f.addresses.value.split(',').map(s=>s.trim()).filter(Boolean);
const r=await fetch('/_sandbox/sellers/'+id+'/approved-senders',{method:'PUT',headers:{'Content-Type':'application/json'},body:JSON.stringify({marketplaceId:mp,addresses})});
f.parentNode.querySelector('output').textContent=r.status+' '+await r.text()}
</script>`)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

type sandboxSMTPLog struct{ l *slog.Logger }

func (s sandboxSMTPLog) Printf(format string, v ...interface{}) {
	s.l.Warn("sandbox reply relay: " + fmt.Sprintf(format, v...))
}
func (s sandboxSMTPLog) Println(v ...interface{}) {
	s.l.Warn("sandbox reply relay: " + fmt.Sprint(v...))
}
