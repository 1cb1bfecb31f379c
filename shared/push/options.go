package push

import (
	"log/slog"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
)

// Option configures a Subscriber (WithRetryAfter, WithLogger) or an Intake (WithClock, WithLogger,
// WithMetrics, WithUnsubscriber); a constructor ignores the options that are not its own.
// Each option is declared beside the constructor it configures.
type Option func(*options)

type options struct {
	retryAfter time.Duration // Subscriber
	log        *slog.Logger  // Subscriber, Intake
	now        func() time.Time
	metrics    *metrics.Writer
	unsub      Unsubscriber // Intake
	backoff    Backoff      // Intake
}

// WithLogger sets the logger of a Subscriber or an Intake (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

func apply(opts []Option) options {
	o := options{retryAfter: 10 * time.Minute, log: slog.Default(), now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return o
}
