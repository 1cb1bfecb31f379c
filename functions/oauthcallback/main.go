// Command oauthcallback is the Lambda function behind API Gateway's route for
// httpapi.CallbackPath (HTTP API, payload 2.0).
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
	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

func main() {
	ctx := context.Background()
	env := boot.Load("oauthcallback")
	cfg := env.Config

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	secrets := credcache.New(env.Vault(ctx))
	sp := spapi.New()
	// Every SP-API call on the seller's behalf goes through the gateway.
	gw := sellerapi.New(secrets, lwa.New(cfg.LWATokenURL), sp, store, sellerapi.WithEndpoint(cfg.SPAPIEndpoint))
	// The state names the app its consent used; AMAZON_SPAPI_APP_SOURCE is
	// the fallback for states started before apps were recorded.
	opt := connect.CallbackConfig{AppSource: cfg.AppSource, Participations: gw, Accounts: gw,
		InboundAddresses: mailaddress.NewAddresses(store, cfg.InboundMailDomain)}
	if cfg.PushEnabled() { // subscribe the new connection to ORDER_CHANGE (docs/push.md)
		dest := push.NewDestinations(store, secrets, sp, gw, cfg.NotificationsQueueARN)
		subscriber := push.NewSubscriber(store, dest, gw)
		opt.OnConnected, opt.Unsubscriber = subscriber.OnConnected, subscriber
	}
	flow := connect.NewCallback(store, secrets, lwa.New(cfg.LWATokenURL), opt)
	route := httpapi.CallbackRoute(flow, env.Log, cfg.FrontendReturnURL)

	lambda.Start(httpadapter.NewV2(route).ProxyWithContext)
}
