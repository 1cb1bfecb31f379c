// Command oauthlogin is the Lambda function behind API Gateway's route for
// httpapi.LoginPath (HTTP API, payload 2.0): the log-in URI of
// Appstore-initiated authorization.
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
	env := boot.Load("oauthlogin")
	cfg := env.Config

	// The log-in checks amazon_callback_uri against the app's region: the
	// app's credentials, no Amazon call.
	flow := connect.NewLogin(postgres.New(env.Pool(ctx, boot.LambdaMaxConns)), credcache.New(env.Vault(ctx)), connect.LoginConfig{
		AppSource: cfg.AppSource, SellerCentralURL: cfg.SellerCentralURL})
	route := httpapi.LoginRoute(flow, env.Log, cfg.FrontendLoginURL)

	lambda.Start(httpadapter.NewV2(route).ProxyWithContext)
}
