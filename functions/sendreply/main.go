// Command sendreply is the Lambda function behind API Gateway's route for
// httpapi.SendReplyPath (HTTP API, payload 2.0): an agent's reply is
// checked, stored with its KeyBuzz rows in one transaction and queued on
// the outbound queue (docs/replies.md).
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/replyqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/wire"
)

func main() {
	ctx := context.Background()
	env := boot.Load("sendreply")
	env.Must("configuration", env.Config.RequireReplies())

	store := postgres.New(env.Pool(ctx, boot.LambdaMaxConns))
	sqsClient, err := pollsender.NewClient(ctx)
	env.Must("sqs", err)
	route := wire.SendReply(env.Config, store, replyqueue.NewJobs(sqsClient, env.Config.ReplyQueueURL), env.Verifier(ctx), env.Log)

	lambda.Start(httpadapter.NewV2(route).ProxyWithContext)
}
