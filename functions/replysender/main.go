// Command replysender is the Lambda function behind the outbound queue
// (ReportBatchItemFailures, DLQ): each job's reply is written as raw MIME
// and handed to SESv2 SendEmail at most once (claim with a lease; SES's
// Send event looked for before any resend; the SES rate as a persisted
// budget); a failed attempt comes back after the queue's visibility
// timeout (docs/replies.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/sessender"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/wire/wirereply"
)

func main() {
	ctx := context.Background()
	env := boot.Load("replysender")

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	ses, err := sessender.NewClient(ctx)
	env.Must("sesv2", err)
	sender := wirereply.ReplySender(env.Config, store, ses, env.Log)

	lambda.Start(sqsbatch.Handler(sender))
}
