package main

import (
	"context"
	"net/http"
	"os"

	"github.com/keybuzz/keybuzz-amazon/dev/devui"
	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/replies"
	"github.com/keybuzz/keybuzz-amazon/shared/replyqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/sessender"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/wire"
	"github.com/keybuzz/keybuzz-amazon/shared/wire/wirereply"
)

// replyRoutes mounts send-reply and outbound and starts the consumers that
// stand for replysender and sesevents, when the stack has the reply queues
// (REPLY_QUEUE_URL, SES_EVENTS_QUEUE_URL, AWS_ENDPOINT_URL_SESV2: `make dev`
// sets them). It returns the events flow (nil: none), which the mail
// intake hands Amazon's notices about replies.
func replyRoutes(ctx context.Context, env *boot.Env, store *postgres.Store, sqsClient localSQS, mux *http.ServeMux, verifier *auth.Verifier, page *devui.Page) *replies.Events {
	cfg := env.Config
	eventsQueue := os.Getenv("SES_EVENTS_QUEUE_URL")
	if cfg.RequireReplies() != nil || eventsQueue == "" || os.Getenv("AWS_ENDPOINT_URL_SESV2") == "" {
		env.Log.Info("replies off: REPLY_QUEUE_URL, SES_EVENTS_QUEUE_URL or AWS_ENDPOINT_URL_SESV2 unset")
		return nil
	}
	ses, err := sessender.NewClient(ctx)
	env.Must("sesv2", err)
	sender := wirereply.ReplySender(cfg, store, ses, env.Log)
	events := wire.SESEvents(store, env.Log)
	send := wire.SendReply(cfg, store, replyqueue.NewJobs(sqsClient, cfg.ReplyQueueURL), verifier, env.Log)
	outbound := wire.Outbound(store, verifier, env.Log)
	for _, r := range []httpapi.Route{send, outbound} {
		mux.Handle(r.Path, r.Handler)
	}
	page.SendReply, page.Outbound = send, outbound // the local page's reply box
	go localpoll.Consumer{Handler: sqsbatch.Handler(sender, sqsbatch.WithParallel(10)), SQS: sqsClient, QueueURL: cfg.ReplyQueueURL, Log: env.Log, Name: "replysender"}.Run(ctx)
	go localpoll.Consumer{Handler: sqsbatch.Handler(events, sqsbatch.WithParallel(10)), SQS: sqsClient, QueueURL: eventsQueue, Log: env.Log, Name: "sesevents"}.Run(ctx)
	env.Log.Info("replies", "sesv2", os.Getenv("AWS_ENDPOINT_URL_SESV2"), "queue", cfg.ReplyQueueURL)
	return events
}

// localSQS is the SQS client the local consumers and the job sender share.
type localSQS interface {
	localpoll.SQSAPI
	replyqueue.API
}
