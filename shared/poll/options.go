package poll

import (
	"log/slog"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
)

// Option configures a Poller, a Fanout or an AmazonSource; a constructor
// ignores the options that are not its own.
type Option func(*options)

type options struct {
	now        func() time.Time
	log        *slog.Logger
	metrics    *metrics.Writer
	poller     Config
	subscriber Subscriber
	fanout     FanoutConfig
	amazon     AmazonConfig
	endpoint   string
}

func apply(opts []Option) options {
	o := options{now: time.Now, log: slog.Default()}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMetrics emits metrics to m (default: none).
func WithMetrics(m *metrics.Writer) Option { return func(o *options) { o.metrics = m } }

// WithConfig tunes a Poller (default: Config's defaults).
func WithConfig(c Config) Option { return func(o *options) { o.poller = c } }

// WithSubscriber makes a Poller subscribe, after a successful poll, a
// connection that has no push subscription yet (Connect's own attempt
// failed, or the connection predates push). Its failures never fail a poll.
func WithSubscriber(s Subscriber) Option { return func(o *options) { o.subscriber = s } }

// WithFanoutConfig tunes a Fanout (default: FanoutConfig's defaults).
func WithFanoutConfig(c FanoutConfig) Option { return func(o *options) { o.fanout = c } }

// WithAmazonConfig tunes an AmazonSource (default: AmazonConfig's
// defaults).
func WithAmazonConfig(c AmazonConfig) Option { return func(o *options) { o.amazon = c } }

// WithEndpoint sends an AmazonSource's SP-API calls to override
// (AMAZON_SPAPI_ENDPOINT; default: the connection's region's endpoint).
func WithEndpoint(override string) Option { return func(o *options) { o.endpoint = override } }
