package poll

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// Deps are what the poller and the fan-out are built from: the process's
// shared clients (app.Deps carries them), built once per container.
type Deps struct {
	Config  config.Config
	Store   *postgres.Store
	Secrets SecretStore // *vaultstore.Store
	LWA     *lwa.Client
	Log     *slog.Logger
	// Optional.
	Metrics *metrics.Writer  // nil: EMF lines on stdout
	HTTP    *http.Client     // SP-API's client; nil: 20 s timeout
	Now     func() time.Time // nil: time.Now
}

func (d Deps) metricsWriter() *metrics.Writer {
	if d.Metrics != nil {
		return d.Metrics
	}
	return metrics.New(os.Stdout, d.Now)
}

// NewPollerFrom builds the polltenant handler's Poller: the mock source
// when AMAZON_USE_MOCK=true, else SP-API.
func NewPollerFrom(d Deps) *Poller {
	var src Source = MockSource{Now: d.Now}
	if !d.Config.UseMock {
		src = NewAmazonSource(d.Secrets, d.LWA, spapi.New(d.HTTP), d.Store,
			AmazonConfig{Endpoint: d.Config.SPAPIEndpoint}, d.Now, d.Log)
	}
	return NewPoller(d.Store, src, Config{Interval: d.Config.PollInterval, Lookback: d.Config.PollLookback}, d.Now, d.Log, d.metricsWriter())
}

// NewFanoutFrom builds the pollfanout handler's Fanout sending to
// POLL_QUEUE_URL through api.
func NewFanoutFrom(d Deps, api pollqueue.BatchAPI) (*Fanout, error) {
	if err := d.Config.RequireQueue(); err != nil {
		return nil, err
	}
	return NewFanout(d.Store, pollqueue.NewSender(api, d.Config.PollQueueURL, 0), FanoutConfig{}, d.Now, d.Log, d.metricsWriter()), nil
}

// NewSQSClient returns an SQS client from the standard AWS configuration
// (AWS_REGION, credentials, AWS_ENDPOINT_URL_SQS for the emulator).
func NewSQSClient(ctx context.Context) (*sqs.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return sqs.NewFromConfig(cfg), nil
}
