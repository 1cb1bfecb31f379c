// Command disconnect is the Lambda function behind API Gateway's route for
// httpapi.DisconnectPath (HTTP API, payload 2.0): the tenant's Amazon
// connection becomes DISABLED and its Vault secret is destroyed.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

func main() {
	ctx := context.Background()
	env := boot.Load("disconnect")

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns), nil)
	secrets := credcache.New(env.Vault(ctx), credcache.DefaultTTL, nil)
	// Push subscriptions are ended here once the push flow provides a
	// connect.Unsubscriber (connect.WithUnsubscriber).
	flow := connect.New(store, secrets, nil, "", connect.WithLogger(env.Log))
	api := &httpapi.API{Connect: flow, Auth: env.Verifier(ctx), Log: env.Log}

	lambda.Start(httpadapter.NewV2(api.Disconnect()).ProxyWithContext)
}
