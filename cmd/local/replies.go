package main

import (
	"context"
	"net/http"
	"os"

	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/replies"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/replyqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/sessender"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

// replyRoutes mounts send-reply and outbound and starts the consumers that
// stand for replysender and sesevents, when the stack has the reply queues
// (REPLY_QUEUE_URL, SES_EVENTS_QUEUE_URL, AWS_ENDPOINT_URL_SESV2: `make dev`
// sets them). It returns the replies flows (nil: none): the mail intake
// hands Amazon's notices about replies to the second.
func replyRoutes(ctx context.Context, env *boot.Env, store *postgres.Store, sqsClient localSQS, mux *http.ServeMux, authn httpapi.Authenticator) (*replies.Queue, *replies.Events) {
	replyQueue, eventsQueue := os.Getenv("REPLY_QUEUE_URL"), os.Getenv("SES_EVENTS_QUEUE_URL")
	if replyQueue == "" || eventsQueue == "" || os.Getenv("AWS_ENDPOINT_URL_SESV2") == "" {
		env.Log.Info("replies off: REPLY_QUEUE_URL, SES_EVENTS_QUEUE_URL or AWS_ENDPOINT_URL_SESV2 unset")
		return nil, nil
	}
	ses, err := sessender.NewClient(ctx)
	env.Must("sesv2", err)
	queue := replies.NewQueue(store, replyqueue.NewJobs(sqsClient, replyQueue), reply.DefaultRules(), env.Log)
	sender := replies.NewSender(store, sessender.New(ses, os.Getenv("SES_CONFIGURATION_SET")), replies.SenderConfig{Rate: 14, Burst: 14, Log: env.Log})
	events := replies.NewEvents(store, env.Log)
	for _, r := range []httpapi.Route{httpapi.SendReplyRoute(queue, authn, env.Log), httpapi.OutboundRoute(queue, authn, env.Log)} {
		mux.Handle(r.Path, r.Handler)
	}
	go localpoll.Consumer{Handler: sqsbatch.Handler(sender, sqsbatch.WithParallel(10)), SQS: sqsClient, QueueURL: replyQueue, Log: env.Log, Name: "replysender"}.Run(ctx)
	go localpoll.Consumer{Handler: sqsbatch.Handler(events, sqsbatch.WithParallel(10)), SQS: sqsClient, QueueURL: eventsQueue, Log: env.Log, Name: "sesevents"}.Run(ctx)
	env.Log.Info("replies", "sesv2", os.Getenv("AWS_ENDPOINT_URL_SESV2"), "queue", replyQueue)
	return queue, events
}

// localSQS is the SQS client the local consumers and the job sender share.
type localSQS interface {
	localpoll.SQSAPI
	replyqueue.API
}
