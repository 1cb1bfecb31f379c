// Command ordernotify is the Lambda function behind the SQS notifications
// queue Amazon delivers ORDER_CHANGE notifications to
// (ReportBatchItemFailures, DLQ): each notification is routed by its
// SubscriptionId to its connection, its order read with getOrder (the
// seller's token, the connection's getOrder budget) and its buyer's
// cancellation request stored as polling stores it (shared/push.Intake;
// docs/push.md). A disconnected seller's leftover subscription is ended.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/boot/bootvault"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsvisibility"
	"github.com/keybuzz/keybuzz-amazon/shared/wire"
)

func main() {
	ctx := context.Background()
	env := boot.Load("ordernotify")

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	secrets := credcache.New(bootvault.Open(ctx, env))
	intake := wire.OrderNotify(env.Config, store, secrets, env.Metrics(), env.Log)

	// A notification ahead of getOrder comes back after the intake's
	// back-off: the message's visibility, set through SQS.
	sqsClient, err := pollsender.NewClient(ctx)
	env.Must("sqs", err)

	lambda.Start(sqsbatch.Handler(intake, sqsbatch.WithDelayer(sqsvisibility.New(sqsClient))))
}
