// Command status is the Lambda function behind API Gateway's route for
// httpapi.StatusPath (HTTP API, payload 2.0).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

func main() {
	ctx := context.Background()
	env := boot.Load("status")

	// Status reads the database only: no Vault client, no Amazon client.
	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	flow := connect.NewStatus(store, connect.StatusConfig{PushStatus: store,
		InboundAddresses: mailaddress.NewAddresses(store, env.Config.InboundMailDomain)})
	route := httpapi.StatusRoute(flow, env.Verifier(ctx), env.Log)

	lambda.Start(httpadapter.NewV2(route).ProxyWithContext)
}
