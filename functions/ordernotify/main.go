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
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

func main() {
	ctx := context.Background()
	env := boot.Load("ordernotify")
	cfg := env.Config

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	secrets := credcache.New(env.Vault(ctx))
	api := spapi.New()
	gw := sellerapi.New(secrets, lwa.New(cfg.LWATokenURL), api, store, sellerapi.WithEndpoint(cfg.SPAPIEndpoint))
	// A notification for a disconnected seller retries the unsubscribe the
	// disconnect could not finish (grantless: no seller token needed).
	dest := push.NewDestinations(store, secrets, api, gw, cfg.NotificationsQueueARN)
	intake := push.NewIntake(store, gw, push.WithMetrics(env.Metrics()), push.WithUnsubscriber(push.NewSubscriber(store, dest, gw)))

	lambda.Start(sqsbatch.Handler(intake))
}
