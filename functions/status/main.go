// Command status is the Lambda function behind API Gateway's routes for
// httpapi.StatusPath and httpapi.InboundAddressPath (HTTP API, payload 2.0).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/wire"
)

func main() {
	ctx := context.Background()
	env := boot.Load("status")

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	// Status reads the database only: no Vault client, no Amazon client.
	// It serves the inbound-address route too (the same reads).
	verifier := env.Verifier(ctx)
	routes := httpapi.Mux(wire.Status(env.Config, store, verifier, env.Log), wire.InboundAddress(env.Config, store, verifier, env.Log))

	lambda.Start(httpadapter.NewV2(routes).ProxyWithContext)
}
