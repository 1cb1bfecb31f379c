// Command polltenant is the Lambda function behind the SQS poll queue
// (ReportBatchItemFailures): it syncs one connection per record
// (shared/poll.Poller; docs/polling.md). With push on
// (NOTIFICATIONS_QUEUE_ARN) it subscribes connections that have no
// ORDER_CHANGE subscription yet, and polls subscribed ones at the fallback
// interval (docs/push.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

func main() {
	ctx := context.Background()
	env := boot.Load("polltenant")
	cfg := env.Config

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	opts := []poll.Option{poll.WithMetrics(env.Metrics()),
		poll.WithConfig(poll.Config{Interval: cfg.PollInterval, FallbackInterval: cfg.PollFallbackInterval, Lookback: cfg.PollLookback})}
	if cfg.UseMock { // AMAZON_USE_MOCK=true
		lambda.Start(sqsbatch.Handler(poll.NewPoller(store, poll.MockSource{}, opts...)))
		return
	}
	secrets := credcache.New(env.Vault(ctx))
	api := spapi.New()
	gw := sellerapi.New(secrets, lwa.New(cfg.LWATokenURL), api, store, sellerapi.WithEndpoint(cfg.SPAPIEndpoint))
	amazon := poll.NewAmazonSource(gw, api)
	if cfg.PushEnabled() {
		dest := push.NewDestinations(store, secrets, api, gw, cfg.NotificationsQueueARN)
		opts = append(opts, poll.WithSubscriber(push.NewSubscriber(store, dest, gw)))
	}

	lambda.Start(sqsbatch.Handler(poll.NewPoller(store, amazon, opts...)))
}
