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
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

func main() {
	ctx := context.Background()
	env := boot.Load("disconnect")

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	secrets := credcache.New(env.Vault(ctx))
	opts := []connect.Option{connect.WithLogger(env.Log)}
	if cfg := env.Config; cfg.PushEnabled() { // end the ORDER_CHANGE subscription (deleteSubscriptionById, grantless)
		lwaClient, sp := lwa.New(cfg.LWATokenURL), spapi.New()
		seller := poll.NewAmazonSource(secrets, lwaClient, sp, store, poll.AmazonConfig{Endpoint: cfg.SPAPIEndpoint}, nil, env.Log)
		dest := push.NewDestinations(store, secrets, sp, lwaClient, cfg.NotificationsQueueARN, cfg.SPAPIEndpoint)
		opts = append(opts, connect.WithUnsubscriber(push.NewSubscriber(store, dest, seller, secrets, sp, cfg.SPAPIEndpoint, 0, env.Log)))
	}
	flow := connect.New(store, secrets, nil, "", opts...)
	api := &httpapi.API{Connect: flow, Auth: env.Verifier(ctx), Log: env.Log}

	lambda.Start(httpadapter.NewV2(api.Disconnect()).ProxyWithContext)
}
