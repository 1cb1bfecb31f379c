package replies

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

// SweepStore is what Sweep needs of the database (postgres.Store).
type SweepStore interface {
	StrandedReplies(ctx context.Context, grace time.Duration, limit int) ([]reply.Job, error)
}

// StrandedAfter is how long past its due time (or its stale claim) a reply
// waits before Sweep takes its job for lost: above the outbound queue's
// visibility timeout (180 s, template.yaml) and SQS's longest delay
// (15 minutes), so a live job always comes first.
const StrandedAfter = 16 * time.Minute

// sweepLimit bounds the jobs one sweep sends.
const sweepLimit = 500

// Sweep sends again the jobs of replies that no queue message will bring
// back: one whose first enqueue failed after it was stored (the send-reply
// route answered 503, and the agent never retried), or one whose job went
// to the dead-letter queue while the reply was still to send. pollfanout
// runs it on its schedule. A job sent twice is harmless: the sender claims
// a reply before sending it, and sends it once whatever the jobs.
type Sweep struct {
	store SweepStore
	jobs  JobQueue
	grace time.Duration
	log   *slog.Logger
}

// NewSweep builds the sweep; grace 0 means StrandedAfter.
func NewSweep(store SweepStore, jobs JobQueue, grace time.Duration, log *slog.Logger) *Sweep {
	if grace <= 0 {
		grace = StrandedAfter
	}
	if log == nil {
		log = slog.Default()
	}
	return &Sweep{store: store, jobs: jobs, grace: grace, log: log}
}

// Run enqueues one job per stranded reply and returns how many it sent.
// A job it could not send is tried again by the next run.
func (s *Sweep) Run(ctx context.Context) (int, error) {
	stranded, err := s.store.StrandedReplies(ctx, s.grace, sweepLimit)
	if err != nil {
		return 0, fmt.Errorf("reply sweep: %w", err)
	}
	var sent int
	var errs []error
	for _, job := range stranded {
		if err := s.jobs.Enqueue(ctx, job); err != nil {
			errs = append(errs, err)
			continue
		}
		sent++
		s.log.WarnContext(ctx, "stranded reply enqueued again", "tenant_id", job.TenantID, "reply_id", job.ReplyID)
	}
	if len(errs) > 0 {
		return sent, fmt.Errorf("reply sweep: %d of %d jobs not sent: %w", len(errs), len(stranded), errors.Join(errs...))
	}
	return sent, nil
}
