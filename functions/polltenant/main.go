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
	"github.com/keybuzz/keybuzz-amazon/shared/boot/bootvault"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/wire"
)

func main() {
	ctx := context.Background()
	env := boot.Load("polltenant")
	cfg := env.Config

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	var secrets *credcache.Cache
	if !cfg.UseMock { // AMAZON_USE_MOCK=true polls the seed's mock source
		secrets = credcache.New(bootvault.Open(ctx, env))
	}
	// The poller, on the seller gateway, subscribing connections with push on.
	poller := wire.PollTenant(cfg, store, secrets, env.Metrics(), env.Log)

	lambda.Start(sqsbatch.Handler(poller))
}
