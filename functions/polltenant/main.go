// Command polltenant is the Lambda function behind the SQS poll queue
// (ReportBatchItemFailures): it syncs one connection per record
// (shared/poll.Poller; docs/polling.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/app"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
)

func main() {
	d, err := app.Load(context.Background(), "polltenant", 2)
	if err != nil {
		app.Fatal("polltenant", err)
	}
	poller := poll.NewPollerFrom(poll.Deps{Config: d.Config, Store: d.Store, Secrets: d.Secrets, LWA: d.LWA, Log: d.Log})
	lambda.Start(poller.HandleSQS)
}
