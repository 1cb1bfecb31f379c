// Command polltenant is the Lambda function behind the SQS poll queue
// (ReportBatchItemFailures): it syncs one connection per record
// (shared/poll.Poller; docs/polling.md).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

func main() {
	ctx := context.Background()
	env := boot.Load("polltenant")
	cfg := env.Config

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns), nil)
	var source poll.Source = poll.MockSource{} // AMAZON_USE_MOCK=true
	if !cfg.UseMock {
		secrets := credcache.New(env.Vault(ctx), credcache.DefaultTTL, nil)
		source = poll.NewAmazonSource(secrets, lwa.New(cfg.LWATokenURL, nil), spapi.New(nil), store,
			poll.AmazonConfig{Endpoint: cfg.SPAPIEndpoint}, nil, env.Log)
	}
	poller := poll.NewPoller(store, source, poll.Config{Interval: cfg.PollInterval, Lookback: cfg.PollLookback},
		nil, env.Log, metrics.New(os.Stdout, nil))

	lambda.Start(poller.HandleSQS)
}
