// Package replies holds the flows of replies to buyers that link no MIME
// library: Queue (the send-reply and outbound routes: check, store,
// enqueue) and Events (SES's sending events and Amazon's notices move a
// reply to its fate). The sender is shared/replysender. Each takes one
// decoded request or message and returns a result; the routes, the SQS
// adapter and the mains around them do the transport.
package replies

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

// QueueStore is what Queue needs of the database (postgres.Store).
type QueueStore interface {
	CreateReply(ctx context.Context, req reply.Request, plan func(reply.Thread) (reply.Draft, error)) (reply.Queued, error)
	Outbound(ctx context.Context, tenantID, ticketID string) ([]reply.Outbound, *time.Time, error)
}

// JobQueue sends a reply's job to the outbound queue.
type JobQueue interface {
	Enqueue(ctx context.Context, job reply.Job) error
}

// Queue is the flow of the send-reply and outbound routes.
type Queue struct {
	store QueueStore
	jobs  JobQueue
	rules reply.Rules
	log   *slog.Logger
}

// NewQueue builds the flow; rules are the content rules and keyword screen
// (reply.DefaultRules unless the deployment sets its own screen).
func NewQueue(store QueueStore, jobs JobQueue, rules reply.Rules, log *slog.Logger) *Queue {
	if log == nil {
		log = slog.Default()
	}
	return &Queue{store: store, jobs: jobs, rules: rules, log: log}
}

// Reply checks the text (a *reply.Violation when it breaks a rule: nothing
// is stored), stores the reply and its KeyBuzz rows in one transaction,
// then enqueues its job. A replayed Idempotency-Key answers the first
// reply and enqueues it again when it is still pending (the first enqueue
// may have failed; the sender sends a reply once whatever the jobs).
func (q *Queue) Reply(ctx context.Context, req reply.Request) (reply.Queued, error) {
	text, err := q.rules.Check(req.Text)
	if err != nil {
		return reply.Queued{}, err
	}
	req.Text = text
	id := newReplyID()
	res, err := q.store.CreateReply(ctx, req, func(t reply.Thread) (reply.Draft, error) { return reply.Plan(t, id, text) })
	if err != nil {
		return reply.Queued{}, err
	}
	if res.Status == reply.StatusPending {
		if err := q.jobs.Enqueue(ctx, reply.Job{ReplyID: res.ReplyID, TenantID: req.TenantID}); err != nil {
			// Stored but not queued: the agent's retry with the same
			// Idempotency-Key enqueues it again.
			q.log.ErrorContext(ctx, "reply stored, job not enqueued", "reply_id", res.ReplyID, "err", err)
			return reply.Queued{}, fmt.Errorf("enqueue reply %s: %w", res.ReplyID, marketplace.ErrUnavailable)
		}
	}
	q.log.InfoContext(ctx, "reply queued", "reply_id", res.ReplyID, "ticket_id", req.TicketID, "replayed", res.Replayed)
	return res, nil
}

// Outbound lists a ticket's replies, newest first, with its response due time.
func (q *Queue) Outbound(ctx context.Context, tenantID, ticketID string) ([]reply.Outbound, *time.Time, error) {
	return q.store.Outbound(ctx, tenantID, ticketID)
}

// newReplyID is a cuid-shaped id (KeyBuzz's ids are Prisma cuids).
func newReplyID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "c" + hex.EncodeToString(b)
}
