// Package inboundmail turns the mails SES receives for tenants' inbound
// addresses into tickets: SES stores the raw mail in S3 and publishes a
// "Received" notification through SNS to the mail queue; the inboundmail
// function hands each SQS record to Flow.Process, which finds the tenant by
// the recipient address, reads and understands the mail (shared/relaymail),
// decides its outcome and stores it through the one ingestion path. Every
// received mail gets one outcome row per recipient; only transient
// failures (database, S3) go back to SQS. See docs/inbound-mail.md.
package inboundmail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/relaymail"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
)

// Store is what the flow needs of the database.
type Store interface {
	// InboundAddressByEmail finds an address (case-insensitively) with its
	// tenant's connection; marketplace.ErrNotFound when there is none.
	InboundAddressByEmail(ctx context.Context, email string) (marketplace.InboundAddress, error)
	// RecordMail writes a mail's outcome row unless the (SESMessageID,
	// Recipient) row exists: a redelivery keeps the first outcome.
	RecordMail(ctx context.Context, rec marketplace.ReceivedMail) error
	// IngestMail stores an accepted mail in one transaction: the message
	// through the one ingestion path, its attachments, its outcome row
	// (TICKETED, or DUPLICATE when the mail was already stored under another
	// SES message) and the address's last reception.
	IngestMail(ctx context.Context, rec marketplace.ReceivedMail, msg marketplace.InboundMessage, atts []marketplace.MailAttachment) (marketplace.MailResult, error)
}

// Objects reads mails from and writes attachments to the mail bucket.
type Objects interface {
	// Get reads an object of at most max bytes: marketplace.ErrMailTooLarge
	// above it, marketplace.ErrMailMissing when there is no such object.
	Get(ctx context.Context, bucket, key string, max int64) ([]byte, error)
	Put(ctx context.Context, bucket, key, contentType string, body []byte) error
}

// OrderContext adds an order's context (status, items, marketplace) to its
// ticket. Attach never waits for a rate budget: without a token it leaves
// the order for later. Its failures never fail a mail.
type OrderContext interface {
	Attach(ctx context.Context, tenantID, connectionID, ticketID, orderID string) error
	// RetryDue fetches contexts left for later whose time has come.
	RetryDue(ctx context.Context, limit int) (int, error)
}

// config is a Flow's settings.
type config struct {
	Domain   string // INBOUND_MAIL_DOMAIN: only recipients on it are ours
	MaxBytes int64  // INBOUND_MAIL_MAX_BYTES: larger mails are TOO_LARGE
	Bucket   string // INBOUND_MAIL_BUCKET: the only bucket mails are read from ("" any)
	// AttachmentPrefix is where attachments go in the mail bucket, under
	// the tenant and the SES message id.
	AttachmentPrefix string
}

// Flow is the mail intake.
type Flow struct {
	cfg     config
	store   Store
	objects Objects
	orders  OrderContext
	notices RefusedReplies
	log     *slog.Logger
	now     func() time.Time
}

// FlowOption configures a Flow: WithOrderContext, WithMaxBytes,
// WithBucket, WithAttachmentPrefix, WithLogger, WithClock.
type FlowOption interface{ applyFlow(*options) }

// ContextsOption configures OrderContexts: WithLogger, WithClock.
type ContextsOption interface{ applyContexts(*options) }

// An option is of the types of the constructors it configures, so that
// giving it to another does not compile.
type (
	flowOption func(*options)
	// CommonOption configures a Flow or OrderContexts.
	CommonOption func(*options)
)

func (f flowOption) applyFlow(o *options)       { f(o) }
func (f CommonOption) applyFlow(o *options)     { f(o) }
func (f CommonOption) applyContexts(o *options) { f(o) }

type options struct {
	orders           OrderContext
	notices          RefusedReplies
	log              *slog.Logger
	now              func() time.Time
	maxBytes         int64
	attachmentPrefix string
	bucket           string
}

func defaults() options {
	return options{log: slog.Default(), now: time.Now, maxBytes: 25 << 20, attachmentPrefix: "attachments/"}
}

// RefusedReplies hears Amazon's notices about messages the tenant sent
// (relaymail.KindOutgoingNotice): the replies flow fails the reply the
// notice concerns. found is false when no reply of the tenant matches.
type RefusedReplies interface {
	RefusedReply(ctx context.Context, noticeID, tenantID, reason, orderID, alias, text string) (found bool, err error)
}

// WithRefusedReplies hands Amazon's notices about sent messages to r.
func WithRefusedReplies(r RefusedReplies) FlowOption {
	return flowOption(func(o *options) { o.notices = r })
}

// WithOrderContext attaches order context to tickets of mails naming an order.
func WithOrderContext(oc OrderContext) FlowOption {
	return flowOption(func(o *options) { o.orders = oc })
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) CommonOption {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) CommonOption {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithMaxBytes makes larger mails TOO_LARGE (INBOUND_MAIL_MAX_BYTES;
// default 25 MiB; n <= 0 keeps it).
func WithMaxBytes(n int64) FlowOption {
	return flowOption(func(o *options) {
		if n > 0 {
			o.maxBytes = n
		}
	})
}

// WithBucket reads mails only from the named bucket (INBOUND_MAIL_BUCKET,
// the receipt rule's): a notification naming another one is recorded
// MALFORMED and nothing is read. Default: any bucket (IAM is then the only
// guard).
func WithBucket(name string) FlowOption { return flowOption(func(o *options) { o.bucket = name }) }

// WithAttachmentPrefix sets where attachments go in the mail bucket
// (default "attachments/").
func WithAttachmentPrefix(p string) FlowOption {
	return flowOption(func(o *options) { o.attachmentPrefix = p })
}

// New builds the flow: mails to recipients on domain (INBOUND_MAIL_DOMAIN),
// read from objects, stored in store (options: WithOrderContext,
// WithMaxBytes, WithBucket, WithAttachmentPrefix, WithLogger,
// WithClock).
func New(store Store, objects Objects, domain string, opts ...FlowOption) *Flow {
	o := apply(opts, FlowOption.applyFlow)
	cfg := config{Domain: strings.ToLower(strings.TrimSpace(domain)), MaxBytes: o.maxBytes,
		AttachmentPrefix: o.attachmentPrefix, Bucket: o.bucket}
	return &Flow{cfg: cfg, store: store, objects: objects, orders: o.orders, notices: o.notices, log: o.log, now: o.now}
}

// ConsumeBatch returns what consumes the mail queue messages of one batch
// (the inboundmail function: sqsbatch.Handler feeds it each record) and
// what runs after them. An address is looked up once per batch
// (addressBook), however many of the batch's mails it receives; after the
// batch, order contexts an empty budget deferred are fetched if due.
func (f *Flow) ConsumeBatch(context.Context) (func(ctx context.Context, messageID, body string, receives int) error, func(ctx context.Context)) {
	book := newAddressBook(f.store)
	consume := func(ctx context.Context, messageID, body string, receives int) error {
		err := f.process(ctx, messageID, body, book)
		if err != nil {
			f.log.ErrorContext(ctx, "mail left for retry", "sqs_message_id", messageID, "err", err, "receive_count", receives)
		}
		return err
	}
	done := func(ctx context.Context) {
		// Contexts an empty budget deferred, now that time has passed.
		if f.orders != nil {
			if _, err := f.orders.RetryDue(ctx, 5); err != nil {
				f.log.WarnContext(ctx, "order contexts not retried", "err", err)
			}
		}
	}
	return consume, done
}

// Consume handles one mail queue message as a batch of its own. It returns
// an error only when a retry may succeed (database or S3 unavailable, the
// object not yet readable); every other case is recorded and acknowledged.
func (f *Flow) Consume(ctx context.Context, messageID, body string, receives int) error {
	consume, done := f.ConsumeBatch(ctx)
	err := consume(ctx, messageID, body, receives)
	done(ctx)
	return err
}

func (f *Flow) process(ctx context.Context, sqsMessageID, body string, book *addressBook) error {
	n, err := sesmail.Decode(body)
	if errors.Is(err, sesmail.ErrNotReceived) {
		f.log.InfoContext(ctx, "queue message ignored: not a received mail", "reason", err.Error())
		return nil
	}
	if err == nil && f.cfg.Bucket != "" && n.Receipt.Action.BucketName != f.cfg.Bucket {
		// Only SES's receipt rule publishes here, and it stores in the mail
		// bucket: a notification naming another bucket is not read.
		err = fmt.Errorf("%w: S3 action names bucket %q, not the mail bucket", sesmail.ErrMalformed, n.Receipt.Action.BucketName)
	}
	if err != nil {
		f.log.WarnContext(ctx, "queue message is not an SES notification", "err", err)
		return f.store.RecordMail(ctx, marketplace.ReceivedMail{
			SESMessageID: "sqs:" + sqsMessageID, Outcome: marketplace.MailMalformed,
			Decision: "notification: " + err.Error(), ReceivedAt: f.now(),
		})
	}
	recipients := n.Receipt.Recipients
	if len(recipients) == 0 {
		recipients = n.Mail.Destination
	}
	m := &mailOnce{flow: f, n: n}
	seen := map[string]bool{}
	for _, rcpt := range recipients {
		rcpt = strings.ToLower(strings.TrimSpace(rcpt))
		if seen[rcpt] {
			continue
		}
		seen[rcpt] = true
		if err := f.deliver(ctx, n, rcpt, m, book); err != nil {
			return err
		}
	}
	return nil
}

// mailOnce reads and parses the stored mail at most once for all its
// recipients.
type mailOnce struct {
	flow   *Flow
	n      sesmail.Notification
	done   bool
	size   int64
	mail   *relaymail.Mail
	errOut marketplace.MailOutcome // TOO_LARGE or MALFORMED
	errMsg string
	err    error // transient
}

func (m *mailOnce) load(ctx context.Context) {
	if m.done {
		return
	}
	a := m.n.Receipt.Action
	raw, err := m.flow.objects.Get(ctx, a.BucketName, a.ObjectKey, m.flow.cfg.MaxBytes)
	switch {
	case errors.Is(err, marketplace.ErrMailTooLarge):
		m.errOut, m.errMsg = marketplace.MailTooLarge, fmt.Sprintf("object above %d bytes", m.flow.cfg.MaxBytes)
	case err != nil:
		m.err = fmt.Errorf("read s3://%s/%s: %w", a.BucketName, a.ObjectKey, err)
		return // not done: a retry reads again
	default:
		m.size = int64(len(raw))
		m.mail, err = relaymail.Parse(raw, relaymail.Limits{MaxBytes: m.flow.cfg.MaxBytes})
		switch {
		case errors.Is(err, relaymail.ErrTooLarge):
			m.errOut, m.errMsg = marketplace.MailTooLarge, err.Error()
		case err != nil:
			m.errOut, m.errMsg = marketplace.MailMalformed, "parse: "+err.Error()
		}
	}
	m.done = true
}

func (f *Flow) deliver(ctx context.Context, n sesmail.Notification, rcpt string, m *mailOnce, book *addressBook) error {
	rec := marketplace.ReceivedMail{
		SESMessageID: n.Mail.MessageID, Recipient: rcpt,
		Bucket: n.Receipt.Action.BucketName, ObjectKey: n.Receipt.Action.ObjectKey,
		MessageID: relaymail.MessageID(n.Mail.CommonHeaders.MessageID), Subject: truncate(n.Mail.CommonHeaders.Subject, 500),
		Verdicts: verdicts(n.Receipt), ReceivedAt: n.Receipt.Timestamp,
	}
	if len(n.Mail.CommonHeaders.From) > 0 {
		rec.From = truncate(n.Mail.CommonHeaders.From[0], 500)
	}
	if rec.ReceivedAt.IsZero() {
		rec.ReceivedAt = f.now()
	}
	record := func(o marketplace.MailOutcome, why string) error {
		rec.Outcome, rec.Decision = o, why
		f.log.InfoContext(ctx, "mail "+strings.ToLower(string(o)), "ses_message_id", rec.SESMessageID,
			"tenant_id", rec.TenantID, "outcome", o, "decision", why)
		return f.store.RecordMail(ctx, rec)
	}

	if f.cfg.Domain != "" && !strings.HasSuffix(rcpt, "@"+f.cfg.Domain) {
		return record(marketplace.MailUnknownRecipient, "recipient not on "+f.cfg.Domain)
	}
	addr, err := book.lookup(ctx, rcpt)
	if errors.Is(err, marketplace.ErrNotFound) {
		return record(marketplace.MailUnknownRecipient, "no such inbound address")
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", rcpt, err)
	}
	rec.TenantID, rec.ConnectionID, rec.AddressID = addr.TenantID, addr.ConnectionID, addr.ID
	ctx = logging.WithTenantID(ctx, addr.TenantID)
	if !addr.Accepting {
		return record(marketplace.MailUnknownRecipient, "the tenant's Amazon connection is not CONNECTED")
	}
	if q, why := quarantined(rec.Verdicts); q {
		return record(marketplace.MailQuarantined, why)
	}
	m.load(ctx)
	if m.err != nil {
		return m.err
	}
	rec.Size = m.size
	if m.errOut != "" {
		return record(m.errOut, m.errMsg)
	}
	mail := m.mail
	rec.From = truncate(mail.From.Address, 500)
	if mail.MessageID != "" {
		rec.MessageID = mail.MessageID
	}
	rec.Subject = truncate(mail.Subject, 500)
	r, err := relaymail.Understand(mail)
	if errors.Is(err, relaymail.ErrNotAmazon) {
		return record(marketplace.MailRejectedSender, "from "+mail.From.Address+": not Amazon's relay or notifications")
	}
	if err != nil {
		return record(marketplace.MailMalformed, "understand: "+err.Error())
	}
	if s, why := spoofed(rec.Verdicts); s {
		return record(marketplace.MailSpoofed, why)
	}
	rec.OrderID, rec.Kind = r.OrderID, string(r.Kind)

	atts, err := f.keepAttachments(ctx, addr.TenantID, rec, mail.Attachments)
	if err != nil {
		return err
	}
	msg := inboundMessage(rec, mail, r, atts)
	res, err := f.store.IngestMail(ctx, rec, msg, atts)
	if err != nil {
		return fmt.Errorf("ingest mail %s: %w", rec.SESMessageID, err)
	}
	f.log.InfoContext(ctx, "mail "+strings.ToLower(string(res.Outcome)), "ses_message_id", rec.SESMessageID,
		"outcome", res.Outcome, "kind", r.Kind, "order_id", r.OrderID, "ticket_id", res.TicketID,
		"ticket_created", res.TicketCreated, "attachments", len(atts))
	if f.notices != nil && r.Kind == relaymail.KindOutgoingNotice && r.Notice != nil {
		// Idempotent: a redelivered notice (the same receipt id) is applied once.
		n := r.Notice
		found, err := f.notices.RefusedReply(ctx, rec.SESMessageID, addr.TenantID, string(n.Reason), n.OrderID, n.Alias, r.Words)
		if err != nil {
			return fmt.Errorf("notice about a sent message: %w", err)
		}
		f.log.InfoContext(ctx, "Amazon's notice about a sent message", "reason", r.Notice.Reason, "order_id", r.Notice.OrderID, "reply_found", found)
	}
	if f.orders != nil && res.MessageCreated && r.OrderID != "" && res.TicketID != "" {
		if err := f.orders.Attach(ctx, addr.TenantID, addr.ConnectionID, res.TicketID, r.OrderID); err != nil {
			f.log.WarnContext(ctx, "order context left for later", "order_id", r.OrderID, "err", err)
		}
	}
	return nil
}

// addressBook looks each recipient's address up once for the mails of one
// SQS batch (concurrent records asking for the same address wait for the
// one lookup): an address routes to one tenant, and whether its
// connection is CONNECTED is read once per batch. A failed lookup is not
// kept, so another record of the batch tries again.
type addressBook struct {
	store   Store
	mu      sync.Mutex
	entries map[string]*addressEntry
}

type addressEntry struct {
	mu   sync.Mutex
	done bool
	addr marketplace.InboundAddress
	err  error // nil or marketplace.ErrNotFound
}

func newAddressBook(store Store) *addressBook {
	return &addressBook{store: store, entries: map[string]*addressEntry{}}
}

// lookup is Store.InboundAddressByEmail for a lower-cased recipient, once
// per batch.
func (b *addressBook) lookup(ctx context.Context, email string) (marketplace.InboundAddress, error) {
	b.mu.Lock()
	e := b.entries[email]
	if e == nil {
		e = &addressEntry{}
		b.entries[email] = e
	}
	b.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		return e.addr, e.err
	}
	a, err := b.store.InboundAddressByEmail(ctx, email)
	if err == nil || errors.Is(err, marketplace.ErrNotFound) {
		e.done, e.addr, e.err = true, a, err
	}
	return a, err
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// keepAttachments writes each attachment to its own object, under the
// tenant and the SES message id (a redelivery overwrites the same keys).
func (f *Flow) keepAttachments(ctx context.Context, tenantID string, rec marketplace.ReceivedMail, in []relaymail.Attachment) ([]marketplace.MailAttachment, error) {
	out := make([]marketplace.MailAttachment, 0, len(in))
	for _, a := range in {
		name := unsafeName.ReplaceAllString(path.Base(a.Filename), "_")
		if name == "" || name == "." || name == "_" {
			name = "part"
		}
		if len(name) > 100 {
			name = name[len(name)-100:]
		}
		key := fmt.Sprintf("%s%s/%s/%s-%s", f.cfg.AttachmentPrefix, tenantID, rec.SESMessageID, a.Part, name)
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		if err := f.objects.Put(ctx, rec.Bucket, key, ct, a.Data); err != nil {
			return nil, fmt.Errorf("keep attachment %s: %w", key, err)
		}
		out = append(out, marketplace.MailAttachment{
			ObjectKey: key, Filename: a.Filename, ContentType: ct, ContentID: a.ContentID, Inline: a.Inline,
			Size: int64(len(a.Data)), SHA256: a.SHA256(),
		})
	}
	return out, nil
}

// rawMail is what ExternalMessage.raw keeps of a mail: where it is, its
// threading headers (so replies can thread), and what was understood.
type rawMail struct {
	Channel      string                       `json:"channel"`
	SESMessageID string                       `json:"sesMessageId"`
	Bucket       string                       `json:"bucket"`
	ObjectKey    string                       `json:"objectKey"`
	Recipient    string                       `json:"recipient"`
	MessageID    string                       `json:"messageId,omitempty"`
	InReplyTo    []string                     `json:"inReplyTo,omitempty"`
	References   []string                     `json:"references,omitempty"`
	From         string                       `json:"from"`
	FromName     string                       `json:"fromName,omitempty"`
	ReplyTo      []string                     `json:"replyTo,omitempty"`
	Subject      string                       `json:"subject"`
	Date         *time.Time                   `json:"date,omitempty"`
	Kind         relaymail.Kind               `json:"kind"`
	Topic        string                       `json:"topic,omitempty"`
	ASIN         string                       `json:"asin,omitempty"`
	Marked       bool                         `json:"marked"`
	FromHTML     bool                         `json:"fromHtml,omitempty"`
	Verdicts     marketplace.MailVerdicts     `json:"verdicts"`
	Attachments  []marketplace.MailAttachment `json:"attachments,omitempty"`
	Problems     []string                     `json:"problems,omitempty"`
}

// inboundMessage is the mail as the one ingestion path takes it. Its
// externalId is the mail's Message-ID (SES's message id when it has none):
// the same mail received twice is one message.
func inboundMessage(rec marketplace.ReceivedMail, m *relaymail.Mail, r relaymail.Relay, atts []marketplace.MailAttachment) marketplace.InboundMessage {
	ext := m.MessageID
	if ext == "" {
		ext = "ses:" + rec.SESMessageID
	}
	raw := rawMail{
		Channel: "email_relay", SESMessageID: rec.SESMessageID, Bucket: rec.Bucket, ObjectKey: rec.ObjectKey,
		Recipient: rec.Recipient, MessageID: m.MessageID, InReplyTo: m.InReplyTo, References: m.References,
		From: m.From.Address, FromName: m.From.Name, Subject: m.Subject, Kind: r.Kind, Topic: r.Topic, ASIN: r.ASIN,
		Marked: r.Marked, FromHTML: m.FromHTML, Verdicts: rec.Verdicts, Attachments: atts, Problems: m.Problems,
	}
	for _, a := range m.ReplyTo {
		raw.ReplyTo = append(raw.ReplyTo, a.Address)
	}
	if !m.Date.IsZero() {
		d := m.Date.UTC()
		raw.Date = &d
	}
	b, _ := json.Marshal(raw)
	body := r.Words
	if body == "" && len(atts) > 0 {
		body = fmt.Sprintf("(%d attachment(s), no text)", len(atts))
	}
	return marketplace.InboundMessage{
		Type:          marketplace.Type,
		ExternalID:    ext,
		ThreadKey:     r.ThreadKey(),
		OrderID:       r.OrderID,
		MarketplaceID: r.MarketplaceID,
		BuyerName:     r.BuyerName,
		BuyerEmail:    r.BuyerAlias,
		Language:      r.Language,
		Subject:       truncate(m.Subject, 500),
		Body:          body,
		ReceivedAt:    rec.ReceivedAt,
		Raw:           b,
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// apply sets opts, each through its constructor's method (a method
// expression such as FlowOption.applyFlow), on the defaults.
func apply[O any](opts []O, set func(O, *options)) options {
	o := defaults()
	for _, f := range opts {
		set(f, &o)
	}
	return o
}
