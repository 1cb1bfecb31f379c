// Command disconnect is the Lambda function behind API Gateway's route for
// httpapi.DisconnectPath (HTTP API, payload 2.0): the tenant's Amazon
// connection's ORDER_CHANGE subscription is deleted (with push on), it
// becomes DISABLED and its Vault secret is destroyed.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

func main() {
	ctx := context.Background()
	env := boot.Load("disconnect")
	cfg := env.Config

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	secrets := credcache.New(env.Vault(ctx))
	var opt connect.DisconnectConfig
	if cfg.PushEnabled() { // end the ORDER_CHANGE subscription (deleteSubscriptionById, grantless)
		sp := spapi.New()
		gw := sellerapi.New(secrets, lwa.New(cfg.LWATokenURL), sp, store, sellerapi.WithEndpoint(cfg.SPAPIEndpoint))
		dest := push.NewDestinations(store, secrets, sp, gw, cfg.NotificationsQueueARN)
		opt.Unsubscriber = push.NewSubscriber(store, dest, gw)
	}
	route := httpapi.DisconnectRoute(connect.NewDisconnect(store, secrets, opt), env.Verifier(ctx), env.Log)

	lambda.Start(httpadapter.NewV2(route).ProxyWithContext)
}
