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
	"github.com/keybuzz/keybuzz-amazon/shared/boot/bootvault"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/wire"
)

func main() {
	ctx := context.Background()
	env := boot.Load("disconnect")

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	route := wire.Disconnect(env.Config, store, credcache.New(bootvault.Open(ctx, env)), env.Verifier(ctx), env.Log)

	lambda.Start(httpadapter.NewV2(route).ProxyWithContext)
}
