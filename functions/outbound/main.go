// Command outbound is the Lambda function behind API Gateway's route for
// httpapi.OutboundPath (HTTP API, payload 2.0): a ticket's replies and
// their fate, newest first, with the ticket's response due time.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/wire"
)

func main() {
	ctx := context.Background()
	env := boot.Load("outbound")

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	// The database only: no Vault, no SES, no queue.
	route := wire.Outbound(store, env.Verifier(ctx), env.Log)

	lambda.Start(httpadapter.NewV2(route).ProxyWithContext)
}
