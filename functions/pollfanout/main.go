// Command pollfanout is the Lambda function the EventBridge schedule
// invokes: it claims the due connections and enqueues one poll message each
// (shared/poll.Fanout; docs/polling.md), reports Amazon's 24-hour response
// clock (shared/replies.Clock) and sends again the jobs of stranded replies
// (shared/replies.Sweep; docs/replies.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/replies"
	"github.com/keybuzz/keybuzz-amazon/shared/replyqueue"
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
	// The outbound queue (REPLY_QUEUE_URL), for the reply sweep.
	var jobs replies.JobQueue
	if cfg.ReplyQueueURL != "" {
		jobs = replyqueue.NewJobs(sqsClient, cfg.ReplyQueueURL)
	}
	lambda.Start(wire.PollTick(fanout, store, env.Metrics(), jobs, env.Log))
}
