package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// SyncStatus is what polling knows of a connection, for the status route
// and the local page.
type SyncStatus struct {
	NextPollAt      time.Time
	Cursor          *time.Time // end of the last complete window
	PaginationToken bool       // a window is part-way through
	LastSyncAt      *time.Time
	LastSuccessAt   *time.Time
	LastError       string
	PollCount       int64
	EventCount      int64
	ErrorCount      int64
	Throttled429    int64      // searchOrders 429s so far
	ThrottledUntil  *time.Time // back-off after the last 429
	Tokens          *float64   // searchOrders tokens left as of the last call
}

// SyncStatus reads the connection's polling state; marketplace.ErrNotFound
// when the connection does not exist.
func (s *Store) SyncStatus(ctx context.Context, connectionID string) (SyncStatus, error) {
	var st SyncStatus
	var lastErr *string
	var pollCount, eventCount, errorCount, count429 *int64
	err := s.pool.QueryRow(ctx, `
SELECT c."nextPollAt", ss."cursorAt", ss."paginationToken" IS NOT NULL, ss."lastPolledAt", ss."lastSuccessAt",
       COALESCE(ss."lastError", mc."lastError"), ss."pollCount", ss."eventCount", ss."errorCount",
       b."count429", b."throttledUntil", b."tokens"
FROM keybuzz_amazon."Connection" c
JOIN public."MarketplaceConnection" mc ON mc."id" = c."connectionId"
LEFT JOIN keybuzz_amazon."SyncState" ss ON ss."connectionId" = c."connectionId"
LEFT JOIN keybuzz_amazon."RateBudget" b ON b."connectionId" = c."connectionId" AND b."operation" = 'searchOrders'
WHERE c."connectionId" = $1`, connectionID).Scan(&st.NextPollAt, &st.Cursor, &st.PaginationToken, &st.LastSyncAt, &st.LastSuccessAt,
		&lastErr, &pollCount, &eventCount, &errorCount, &count429, &st.ThrottledUntil, &st.Tokens)
	if errors.Is(err, pgx.ErrNoRows) {
		return SyncStatus{}, fmt.Errorf("connection %s: %w", connectionID, marketplace.ErrNotFound)
	}
	if err != nil {
		return SyncStatus{}, unavailable("read sync status", err)
	}
	deref := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	if lastErr != nil {
		st.LastError = *lastErr
	}
	st.PollCount, st.EventCount, st.ErrorCount, st.Throttled429 = deref(pollCount), deref(eventCount), deref(errorCount), deref(count429)
	return st, nil
}
