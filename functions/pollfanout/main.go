// Command pollfanout is the Lambda function the EventBridge schedule
// invokes: it claims the due connections and enqueues one poll message each
// (shared/poll.Fanout; docs/polling.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/app"
)

func main() {
	fanout, err := app.MustLoad("pollfanout").Fanout(context.Background())
	if err != nil {
		app.Fatal("pollfanout", err)
	}
	lambda.Start(fanout.Handle)
}
