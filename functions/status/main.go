// Command status is the Lambda function behind API Gateway's route for
// httpapi.StatusPath (HTTP API, payload 2.0).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keybuzz/keybuzz-amazon/shared/app"
)

func main() {
	api := app.MustAPI("status")
	lambda.Start(httpadapter.NewV2(api.Status()).ProxyWithContext)
}
