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
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/mailbucket"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

func main() {
	ctx := context.Background()
	env := boot.Load("inboundmail")
	cfg := env.Config
	env.Must("configuration", cfg.RequireInboundMail())

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	s3, err := mailbucket.NewClient(ctx, cfg.InboundS3PathStyle)
	env.Must("s3 client", err)
	opts := []inboundmail.Option{inboundmail.WithBucket(cfg.InboundMailBucket), inboundmail.WithMaxBytes(cfg.InboundMailMaxBytes)}
	if !cfg.UseMock {
		// Order context: getOrder with the seller's token, within its budget.
		orders := sellerapi.New(credcache.New(env.Vault(ctx)), lwa.New(cfg.LWATokenURL), spapi.New(), store, sellerapi.WithEndpoint(cfg.SPAPIEndpoint))
		opts = append(opts, inboundmail.WithOrderContext(inboundmail.NewOrderContexts(store, orders)))
	}
	flow := inboundmail.New(store, mailbucket.New(s3), cfg.InboundMailDomain, opts...)

	lambda.Start(sqsbatch.Handler(flow))
}
