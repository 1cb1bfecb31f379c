package poll

import (
	"log/slog"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
)

// Option configures a Poller (WithConfig, WithSubscriber, WithMetrics), a
// Fanout (WithFanoutConfig, WithMetrics) or an AmazonSource
// (WithAmazonConfig); WithClock configures all three, WithLogger a Poller
// and a Fanout. A
// constructor ignores the options that are not its own; each option is
// declared beside the constructor it configures.
type Option func(*options)

type options struct {
	poller     Config // Poller
	subscriber Subscriber
	fanout     FanoutConfig    // Fanout
	amazon     AmazonConfig    // AmazonSource
	metrics    *metrics.Writer // Poller, Fanout
	now        func() time.Time
	log        *slog.Logger
}

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithMetrics makes a Poller or a Fanout emit metrics to m (default: none).
func WithMetrics(m *metrics.Writer) Option { return func(o *options) { o.metrics = m } }

func apply(opts []Option) options {
	o := options{now: time.Now, log: slog.Default()}
	for _, f := range opts {
		f(&o)
	}
	return o
}
