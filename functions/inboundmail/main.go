// Command inboundmail is the Lambda function behind the mail queue
// (ReportBatchItemFailures): SES stores each mail received for a tenant's
// inbound address in S3 and notifies through SNS; each record becomes a
// ticket message or a recorded refusal, and a ticket about an order gets the
// order's context within its getOrder budget (shared/inboundmail;
// docs/inbound-mail.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/boot/bootvault"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/mailbucket"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/wire"
	"github.com/keybuzz/keybuzz-amazon/shared/wire/wiremail"
)

func main() {
	ctx := context.Background()
	env := boot.Load("inboundmail")
	cfg := env.Config
	env.Must("configuration", cfg.RequireInboundMail())

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	s3, err := mailbucket.NewClient(ctx, cfg.InboundS3PathStyle)
	env.Must("s3 client", err)
	var secrets *credcache.Cache
	if !cfg.UseMock { // order context: getOrder with the seller's token
		secrets = credcache.New(bootvault.Open(ctx, env))
	}
	// Amazon's notices about replies the tenant sent fail those replies.
	refused := inboundmail.WithRefusedReplies(wire.SESEvents(store, env.Log))
	flow := wiremail.InboundMail(cfg, store, secrets, mailbucket.New(s3), env.Log, refused)

	lambda.Start(sqsbatch.Handler(flow))
}
