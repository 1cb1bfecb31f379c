package poll

import (
	"log/slog"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
)

// PollerOption configures a Poller: WithConfig, WithSubscriber,
// WithMetrics, WithClock, WithLogger.
type PollerOption interface{ applyPoller(*options) }

// FanoutOption configures a Fanout: WithFanoutConfig, WithMetrics,
// WithClock, WithLogger.
type FanoutOption interface{ applyFanout(*options) }

// SourceOption configures an AmazonSource: WithAmazonConfig, WithClock.
type SourceOption interface{ applySource(*options) }

// An option is of the types of the constructors it configures, so that
// giving it to another does not compile.
type (
	pollerOption func(*options)
	fanoutOption func(*options)
	sourceOption func(*options)
	// RunOption configures a Poller or a Fanout.
	RunOption func(*options)
	// ClockOption configures a Poller, a Fanout or an AmazonSource.
	ClockOption func(*options)
)

func (f pollerOption) applyPoller(o *options) { f(o) }
func (f fanoutOption) applyFanout(o *options) { f(o) }
func (f sourceOption) applySource(o *options) { f(o) }
func (f RunOption) applyPoller(o *options)    { f(o) }
func (f RunOption) applyFanout(o *options)    { f(o) }
func (f ClockOption) applyPoller(o *options)  { f(o) }
func (f ClockOption) applyFanout(o *options)  { f(o) }
func (f ClockOption) applySource(o *options)  { f(o) }

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
func WithClock(now func() time.Time) ClockOption {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithLogger sets a Poller's or a Fanout's logger (default slog.Default()).
func WithLogger(l *slog.Logger) RunOption {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithMetrics makes a Poller or a Fanout emit metrics to m (default: none).
func WithMetrics(m *metrics.Writer) RunOption { return func(o *options) { o.metrics = m } }

func defaults() options { return options{now: time.Now, log: slog.Default()} }

// apply sets opts, each through its constructor's method (a method
// expression such as PollerOption.applyPoller), on the defaults.
func apply[O any](opts []O, set func(O, *options)) options {
	o := defaults()
	for _, f := range opts {
		set(f, &o)
	}
	return o
}
