// Command polltenant is the Lambda function behind the SQS poll queue
// (ReportBatchItemFailures): it syncs one connection per record
// (shared/poll.Poller; docs/polling.md).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/app"
)

func main() {
	lambda.Start(app.MustLoad("polltenant").Poller().HandleSQS)
}
