// Command sesevents is the Lambda function behind the SES-events queue
// (ReportBatchItemFailures, DLQ): SES's configuration-set events (Send,
// Delivery, Bounce, Complaint, Reject…) through SNS move each reply to
// its fate in MarketplaceOutboundMessage and TicketEvent, once each and in
// any order (docs/replies.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/wire"
)

func main() {
	ctx := context.Background()
	env := boot.Load("sesevents")

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	events := wire.SESEvents(store, env.Log)

	lambda.Start(sqsbatch.Handler(events))
}
