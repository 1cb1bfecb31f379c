package push

import (
	"log/slog"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
)

// Option configures Destinations, a Subscriber or an Intake; a constructor
// ignores the options that are not its own.
type Option func(*options)

type options struct {
	now        func() time.Time
	log        *slog.Logger
	metrics    *metrics.Writer
	retryAfter time.Duration
	endpoint   string
}

func apply(opts []Option) options {
	o := options{now: time.Now, log: slog.Default(), retryAfter: 10 * time.Minute}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithClock sets an Intake's clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMetrics makes an Intake emit metrics to m (default: none).
func WithMetrics(m *metrics.Writer) Option { return func(o *options) { o.metrics = m } }

// WithRetryAfter spaces a Subscriber's attempts for one connection
// (default 10 minutes; a duration <= 0 keeps it).
func WithRetryAfter(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.retryAfter = d
		}
	}
}

// WithEndpoint sends the Notifications API calls of Destinations (and so of
// the Subscriber built on them) to override (AMAZON_SPAPI_ENDPOINT;
// default: the region's endpoint).
func WithEndpoint(override string) Option { return func(o *options) { o.endpoint = override } }
