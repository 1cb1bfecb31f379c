package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

// StrandedReplies are replies still to send whose job no queue message
// will bring back: QUEUED and due for longer than grace, or SENDING with a
// claim stale for longer than grace (the sender died, and its job went to
// the dead-letter queue or was never enqueued). A live job brings a reply
// back within the outbound queue's visibility timeout of its due time, so
// grace is chosen above that; oldest first, at most limit.
func (s *Store) StrandedReplies(ctx context.Context, grace time.Duration, limit int) ([]reply.Job, error) {
	before := s.now().Add(-grace)
	rows, err := s.pool.Query(ctx, `
		SELECT "id", "tenantId" FROM keybuzz_amazon."Reply"
		WHERE "state" IN ('QUEUED', 'SENDING')
		  AND (("state" = 'QUEUED' AND "nextAttemptAt" < $1) OR ("state" = 'SENDING' AND "leaseUntil" < $1))
		ORDER BY "nextAttemptAt" LIMIT $2`, before, limit)
	if err != nil {
		return nil, unavailable("stranded replies", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (reply.Job, error) {
		var j reply.Job
		return j, r.Scan(&j.ReplyID, &j.TenantID)
	})
	return jobs, unavailable("stranded replies", err)
}
