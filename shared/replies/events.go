package replies

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
)

// EventStore is what Events needs of the database (postgres.Store).
type EventStore interface {
	ApplySESEvent(ctx context.Context, ev reply.Event) (bool, error)
	ReplyForNotice(ctx context.Context, tenantID, alias, orderID string) (string, error)
	ApplyNotice(ctx context.Context, ev reply.Event, needsApproval bool) (failed, applied bool, err error)
}

// Events moves replies to their fate from SES's sending events (through
// SNS and the SES-events queue) and Amazon's notices (through the mail
// intake).
type Events struct {
	store EventStore
	log   *slog.Logger
}

// NewEvents builds the flow.
func NewEvents(store EventStore, log *slog.Logger) *Events {
	if log == nil {
		log = slog.Default()
	}
	return &Events{store: store, log: log}
}

// Consume is the SES-events queue's consumer (shared/sqsbatch).
func (e *Events) Consume(ctx context.Context, messageID, body string, receives int) error {
	return e.Handle(ctx, body)
}

// Handle applies one SQS body: SES's event, bare or in SNS's envelope. A
// body that is no event is dropped (logged); only the database makes it
// fail back to the queue.
func (e *Events) Handle(ctx context.Context, body string) error {
	ev, err := sesmail.DecodeEvent(body)
	if errors.Is(err, sesmail.ErrNotEvent) {
		e.log.InfoContext(ctx, "SES events queue: not an event", "reason", err.Error())
		return nil
	}
	if err != nil {
		e.log.WarnContext(ctx, "SES events queue: unreadable body dropped", "err", err)
		return nil
	}
	re := reply.Event{SESMessageID: ev.Mail.MessageID, Type: ev.EventType, ReplyID: ev.Mail.Tag(reply.TagReply),
		TenantID: ev.Mail.Tag(reply.TagTenant), At: ev.At().UTC(), Payload: []byte(body)}
	switch {
	case ev.Bounce != nil:
		diag := ""
		if len(ev.Bounce.BouncedRecipients) > 0 {
			diag = ev.Bounce.BouncedRecipients[0].DiagnosticCode
		}
		re.Key = ev.Bounce.FeedbackID
		re.ReasonCode, re.Reason = reply.BounceReason(ev.Bounce.BounceType, ev.Bounce.BounceSubType, diag)
	case ev.Complaint != nil:
		re.Key = ev.Complaint.FeedbackID
		re.ReasonCode, re.Reason = "complaint", "The buyer's mail system reported the reply as unwanted (complaint)"
	case ev.Reject != nil:
		re.ReasonCode, re.Reason = "ses_reject", "SES refused to send the reply: "+ev.Reject.Reason
	case ev.Failure != nil:
		re.ReasonCode, re.Reason = "rendering_failure", "SES could not render the reply: "+ev.Failure.ErrorMessage
	case ev.DeliveryDelay != nil:
		re.Key = ev.DeliveryDelay.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	fresh, err := e.store.ApplySESEvent(ctx, re)
	if err != nil {
		return fmt.Errorf("apply SES %s of %s: %w", ev.EventType, ev.Mail.MessageID, err)
	}
	e.log.InfoContext(ctx, "SES event", "event_type", ev.EventType, "ses_message_id", ev.Mail.MessageID,
		"reply_id", re.ReplyID, "fresh", fresh)
	return nil
}

// Notice is Amazon's notice about a message the tenant sent, as the mail
// intake read it (shared/relaymail's Notice).
type Notice struct {
	ID       string // the notice mail's receipt id: a notice is applied once
	TenantID string
	Reason   string // relaymail.NoticeReason: SENDER_NOT_APPROVED…
	OrderID  string
	Alias    string
	Text     string // the notice's words, for the ticket's note
}

// ApplyNotice finds the reply the notice concerns and ends it FAILED with
// Amazon's reason and an internal note; found is false when no reply of
// the tenant matches (a notice about a message sent from Seller Central).
// Two notices about two replies to one buyer may come at once: when the
// reply found has FAILED meanwhile (the other notice took it), the next
// one is looked for, a few times.
func (e *Events) ApplyNotice(ctx context.Context, n Notice) (bool, error) {
	if n.Alias == "" {
		return false, nil
	}
	code, reason := reply.NoticeReason(n.Reason)
	if t := strings.TrimSpace(n.Text); t != "" {
		reason += "\n\nAmazon wrote: " + truncate(t, 1000)
	}
	found := false
	for try := 0; try < 5; try++ {
		id, err := e.store.ReplyForNotice(ctx, n.TenantID, n.Alias, n.OrderID)
		if err != nil {
			return false, err
		}
		if id == "" {
			return found, nil
		}
		found = true
		failed, applied, err := e.store.ApplyNotice(ctx, reply.Event{Type: reply.EventAmazonNotice, Key: n.ID, ReplyID: id, TenantID: n.TenantID,
			ReasonCode: code, Reason: reason}, n.Reason == "SENDER_NOT_APPROVED")
		if err != nil {
			return false, err
		}
		if applied {
			return true, nil // a copy of this notice (SQS redelivers) failed its reply before
		}
		if failed {
			e.log.InfoContext(ctx, "Amazon refused a reply", "reply_id", id, "reason", n.Reason)
			return true, nil
		}
	}
	return found, nil
}

// RefusedReply is ApplyNotice for the mail intake (inboundmail.RefusedReplies).
func (e *Events) RefusedReply(ctx context.Context, noticeID, tenantID, reason, orderID, alias, text string) (bool, error) {
	return e.ApplyNotice(ctx, Notice{ID: noticeID, TenantID: tenantID, Reason: reason, OrderID: orderID, Alias: alias, Text: text})
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
