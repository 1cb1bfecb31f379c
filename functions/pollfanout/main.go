// Command pollfanout is the Lambda function the EventBridge schedule
// invokes: it claims the due connections and enqueues one poll message each
// (shared/poll.Fanout; docs/polling.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/app"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
)

func main() {
	ctx := context.Background()
	d, err := app.Load(ctx, "pollfanout", 2)
	if err != nil {
		app.Fatal("pollfanout", err)
	}
	sqsClient, err := poll.NewSQSClient(ctx)
	if err != nil {
		app.Fatal("pollfanout", err)
	}
	fanout, err := poll.NewFanoutFrom(poll.Deps{Config: d.Config, Store: d.Store, Secrets: d.Secrets, LWA: d.LWA, Log: d.Log}, sqsClient)
	if err != nil {
		app.Fatal("pollfanout", err)
	}
	lambda.Start(fanout.Handle)
}
