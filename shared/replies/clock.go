package replies

import (
	"context"
	"fmt"

	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

// ClockStore is what Clock needs of the database (postgres.Store).
type ClockStore interface {
	UnansweredByAge(ctx context.Context) (reply.Unanswered, error)
}

// Clock reports Amazon's 24-hour response clock as metrics: open Amazon
// tickets by the age of their oldest unanswered buyer message. pollfanout
// runs it on its schedule.
type Clock struct {
	store ClockStore
	m     *metrics.Writer
}

// NewClock builds the report.
func NewClock(store ClockStore, m *metrics.Writer) *Clock { return &Clock{store: store, m: m} }

// Report emits one EMF line with the four counts.
func (c *Clock) Report(ctx context.Context) (reply.Unanswered, error) {
	u, err := c.store.UnansweredByAge(ctx)
	if err != nil {
		return u, fmt.Errorf("response clock: %w", err)
	}
	c.m.Emit("responseclock", map[string]float64{
		metrics.UnansweredUnder12h: float64(u.Under12h), metrics.Unanswered12To20h: float64(u.From12To20h),
		metrics.Unanswered20To24h: float64(u.From20To24h), metrics.UnansweredLate: float64(u.Late),
	}, nil)
	return u, nil
}
