package push

import (
	"log/slog"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
)

// SubscriberOption configures a Subscriber: WithRetryAfter, WithLogger.
type SubscriberOption interface{ applySubscriber(*options) }

// IntakeOption configures an Intake: WithClock, WithLogger, WithMetrics,
// WithUnsubscriber, WithBackoff.
type IntakeOption interface{ applyIntake(*options) }

// An option is of the types of the constructors it configures, so that
// giving it to another does not compile.
type (
	subscriberOption func(*options)
	intakeOption     func(*options)
	// LoggerOption configures a Subscriber or an Intake.
	LoggerOption func(*options)
)

func (f subscriberOption) applySubscriber(o *options) { f(o) }
func (f intakeOption) applyIntake(o *options)         { f(o) }
func (f LoggerOption) applySubscriber(o *options)     { f(o) }
func (f LoggerOption) applyIntake(o *options)         { f(o) }

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
func WithLogger(l *slog.Logger) LoggerOption {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

func defaults() options {
	return options{retryAfter: 10 * time.Minute, log: slog.Default(), now: time.Now}
}

// apply sets opts, each through its constructor's method (a method
// expression such as IntakeOption.applyIntake), on the defaults.
func apply[O any](opts []O, set func(O, *options)) options {
	o := defaults()
	for _, f := range opts {
		set(f, &o)
	}
	return o
}
