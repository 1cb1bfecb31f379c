// Command pollfanout is the Lambda function the EventBridge schedule
// invokes: it claims the due connections and enqueues one poll message each
// (shared/poll.Fanout; docs/polling.md), and reports Amazon's 24-hour
// response clock (shared/replies.Clock; docs/replies.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/wire"
)

func main() {
	ctx := context.Background()
	env := boot.Load("pollfanout")
	cfg := env.Config
	env.Must("configuration", cfg.RequireQueue())

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	sqsClient, err := pollsender.NewClient(ctx)
	env.Must("sqs", err)
	fanout := wire.PollFanout(store, pollsender.NewSender(sqsClient, cfg.PollQueueURL), env.Metrics(), env.Log)
	// Each tick also reports Amazon's 24-hour response clock (a metric).
	clock := wire.ResponseClock(store, env.Metrics())

	lambda.Start(func(ctx context.Context, ev events.EventBridgeEvent) (poll.FanoutResult, error) {
		res, err := fanout.Handle(ctx, ev)
		if _, cerr := clock.Report(ctx); cerr != nil {
			env.Log.WarnContext(ctx, "response clock not reported", "err", cerr)
		}
		return res, err
	})
}
