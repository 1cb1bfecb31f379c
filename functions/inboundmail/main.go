// Command inboundmail is the Lambda function behind the mail queue
// (ReportBatchItemFailures): SES stores each mail received for a tenant's
// inbound address in S3 and notifies through SNS; each record becomes a
// ticket message or a recorded refusal (shared/inboundmail;
// docs/inbound-mail.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/mailbucket"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

func main() {
	ctx := context.Background()
	env := boot.Load("inboundmail")
	cfg := env.Config
	env.Must("configuration", cfg.RequireInboundMail())

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns), nil)
	s3, err := mailbucket.NewClient(ctx, cfg.InboundS3PathStyle)
	env.Must("s3 client", err)
	flow := inboundmail.New(inboundmail.Config{Domain: cfg.InboundMailDomain, MaxBytes: cfg.InboundMailMaxBytes},
		store, mailbucket.New(s3), inboundmail.WithLogger(env.Log))

	lambda.Start(flow.HandleSQS)
}
