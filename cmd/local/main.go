// Command local runs the connector on one machine: the three API routes on
// http://127.0.0.1:3000 (sam local start-api's port), the local page at "/",
// the poll schedule as a timer and SQS consumers feeding polltenant,
// (with push) ordernotify, and inboundmail from the mail queue (the SMTP
// receiver of `make dev` fills it). It reads the environment `make dev`
// prepares (.local/dev.env).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/devui"
	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/boot/bootvault"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/mailbucket"
	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/replies"
	"github.com/keybuzz/keybuzz-amazon/shared/replyqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsvisibility"
	"github.com/keybuzz/keybuzz-amazon/shared/wire"
	"github.com/keybuzz/keybuzz-amazon/shared/wire/wiremail"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "listen address")
	pollOnce := flag.Bool("poll-once", false, "run one fan-out, drain the poll queue and exit (no API)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := boot.Load("local")
	env.Must("local", run(ctx, env, *addr, *pollOnce))
}

// run builds what the functions' mains build (shared/wire), in one process.
func run(ctx context.Context, env *boot.Env, addr string, pollOnce bool) error {
	cfg := env.Config
	if err := cfg.RequireQueue(); err != nil {
		return err
	}
	pool := env.Pool(ctx, 10)
	defer pool.Close()
	store := postgres.New(pool)
	secrets := credcache.New(bootvault.Open(ctx, env))
	sqsClient, err := pollsender.NewClient(ctx)
	env.Must("sqs", err)
	m := metrics.New(os.Stdout)

	// Each function as its builder (shared/wire) builds it for Lambda.
	poller := wire.PollTenant(cfg, store, secrets, m, env.Log)
	fanout := wire.PollFanout(store, pollsender.NewSender(sqsClient, cfg.PollQueueURL), m, env.Log)
	var jobs replies.JobQueue // the reply sweep's outbound queue, when replies are on
	if cfg.ReplyQueueURL != "" {
		jobs = replyqueue.NewJobs(sqsClient, cfg.ReplyQueueURL)
	}
	tick := wire.PollTick(fanout, store, m, jobs, env.Log)
	schedule := localpoll.Config{Fanout: tick, Tenant: sqsbatch.Handler(poller), SQS: sqsClient,
		QueueURL: cfg.PollQueueURL, Interval: cfg.PollInterval, Log: env.Log}
	// Push (NOTIFICATIONS_QUEUE_ARN, set by `make dev`): a consumer of the
	// notifications queue feeds ordernotify's handler.
	var notifications *localpoll.Consumer
	if cfg.PushEnabled() && !cfg.UseMock {
		queueURL, err := localpoll.QueueURL(ctx, sqsClient, cfg.NotificationsQueueARN)
		if err != nil {
			return err
		}
		notifications = &localpoll.Consumer{SQS: sqsClient, QueueURL: queueURL,
			Handler: sqsbatch.Handler(wire.OrderNotify(cfg, store, secrets, m, env.Log), sqsbatch.WithDelayer(sqsvisibility.New(sqsClient))),
			Log:     env.Log, Name: "ordernotify"}
	}
	if pollOnce {
		sum, err := localpoll.PollOnce(ctx, schedule)
		if err != nil {
			return err
		}
		fmt.Printf("fan-out claimed %d, sent %d; polled %d records in %d batches, %d failed\n",
			sum.Fanout.Claimed, sum.Fanout.Sent, sum.Records, sum.Batches, sum.Failed)
		return nil
	}

	// Locally the consent comes back to the page, and a seller arriving
	// from the sandbox's Appstore signs in there.
	api := cfg
	if api.FrontendReturnURL == "" {
		api.FrontendReturnURL = "http://" + addr + "/"
		api.FrontendReturnHosts = append(api.FrontendReturnHosts, addr)
	}
	if api.FrontendLoginURL == "" {
		api.FrontendLoginURL = api.FrontendReturnURL
	}
	verifier := env.Verifier(ctx)
	start := wire.OAuthStart(api, store, secrets, verifier, env.Log)
	callback := wire.OAuthCallback(api, store, secrets, env.Log)
	login := wire.OAuthLogin(api, store, secrets, env.Log)
	status := wire.Status(api, store, verifier, env.Log)
	disconnect := wire.Disconnect(api, store, secrets, verifier, env.Log)
	page := &devui.Page{Start: start, Status: status, Disconnect: disconnect, Tickets: store, Messages: store, Log: env.Log, Token: func(tenant string) (string, error) {
		return auth.Issue(cfg.JWTHS256Secret, cfg.JWTIssuer, cfg.JWTAudience, cfg.TenantClaim, tenant, time.Hour, time.Now())
	}, SandboxURL: cfg.SellerCentralURL, Apps: store, AppSource: cfg.AppSource,
		SMTPAddr: os.Getenv("INBOUND_SMTP_ADDR")}
	inboundAddress := wire.InboundAddress(api, store, verifier, env.Log)
	mux := httpapi.Mux(start, callback, login, status, inboundAddress, disconnect)
	replyEvents := replyRoutes(ctx, env, store, sqsClient, mux, verifier, page)
	mux.Handle("/", page.Handler())

	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 16 << 10}
	errc := make(chan error, 3)
	go func() { errc <- srv.ListenAndServe() }()
	// The schedule (a timer calling the fan-out handler with a real
	// EventBridge event) and the SQS consumer feeding polltenant.
	go func() {
		if err := localpoll.Run(ctx, schedule); err != nil {
			errc <- fmt.Errorf("local poll: %w", err)
		}
	}()
	if notifications != nil {
		go notifications.Run(ctx)
	}
	// The mail queue's consumer feeding inboundmail, when the stack has one.
	if mailQueue := os.Getenv("MAIL_QUEUE_URL"); mailQueue != "" && cfg.RequireInboundMail() == nil {
		s3, err := mailbucket.NewClient(ctx, cfg.InboundS3PathStyle)
		if err != nil {
			return err
		}
		var extra []inboundmail.FlowOption
		if replyEvents != nil {
			extra = append(extra, inboundmail.WithRefusedReplies(replyEvents))
		}
		mail := wiremail.InboundMail(cfg, store, secrets, mailbucket.New(s3), env.Log, extra...)
		go localpoll.Consumer{Handler: sqsbatch.Handler(mail), SQS: sqsClient, QueueURL: mailQueue, Log: env.Log, Name: "inboundmail"}.Run(ctx)
		env.Log.Info("inbound mail", "smtp", os.Getenv("INBOUND_SMTP_ADDR"), "domain", cfg.InboundMailDomain)
	}
	env.Log.Info("listening", "url", "http://"+addr, "poll_interval", cfg.PollInterval.String(),
		"push", notifications != nil, "poll_fallback_interval", cfg.PollFallbackInterval.String())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
