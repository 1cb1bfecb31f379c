// Command oauthstart is the Lambda function behind API Gateway's route for
// httpapi.StartPath (HTTP API, payload 2.0).
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
	env := boot.Load("oauthstart")
	cfg := env.Config

	// Start builds the consent URL: the app's credentials, no Amazon call.
	// New consents use AMAZON_SPAPI_APP_SOURCE's app; return_url may name
	// FRONTEND_RETURN_HOSTS (and FRONTEND_RETURN_URL's host).
	flow := connect.NewStart(postgres.New(env.Pool(ctx, boot.LambdaMaxConns)), credcache.New(env.Vault(ctx)), connect.StartConfig{
		AppSource: cfg.AppSource, SellerCentralURL: cfg.SellerCentralURL, ReturnHosts: cfg.FrontendReturnHosts})
	route := httpapi.StartRoute(flow, env.Verifier(ctx), env.Log)

	lambda.Start(httpadapter.NewV2(route).ProxyWithContext)
}
