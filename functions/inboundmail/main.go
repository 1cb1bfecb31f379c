// Command inboundmail is the Lambda function behind the mail queue
// (ReportBatchItemFailures): SES stores each mail received for a tenant's
// inbound address in S3 and notifies through SNS; each record becomes a
// ticket message or a recorded refusal (shared/inboundmail;
// docs/inbound-mail.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/app"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/mailbucket"
)

func main() {
	ctx := context.Background()
	d := app.MustLoad("inboundmail")
	if err := d.Config.RequireInboundMail(); err != nil {
		app.Fatal("inboundmail", err)
	}
	s3, err := mailbucket.NewClient(ctx, d.Config.InboundS3PathStyle)
	if err != nil {
		app.Fatal("inboundmail", err)
	}
	flow := inboundmail.New(
		inboundmail.Config{Domain: d.Config.InboundMailDomain, MaxBytes: d.Config.InboundMailMaxBytes},
		d.Store, mailbucket.New(s3),
		inboundmail.WithLogger(d.Log),
	)
	lambda.Start(flow.HandleSQS)
}
