// Command oauthcallback is the Lambda function behind API Gateway's route for
// httpapi.CallbackPath (HTTP API, payload 2.0).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keybuzz/keybuzz-amazon/shared/app"
)

func main() {
	api := app.MustAPI("oauthcallback")
	lambda.Start(httpadapter.NewV2(api.Callback()).ProxyWithContext)
}
