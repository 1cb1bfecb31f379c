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
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/mailbucket"
	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
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

// run wires what the five functions' mains wire, in one process.
func run(ctx context.Context, env *boot.Env, addr string, pollOnce bool) error {
	cfg := env.Config
	if err := cfg.RequireQueue(); err != nil {
		return err
	}
	pool := env.Pool(ctx, 10)
	defer pool.Close()
	store := postgres.New(pool)
	secrets := credcache.New(env.Vault(ctx))
	lwaClient := lwa.New(cfg.LWATokenURL)
	sqsClient, err := pollsender.NewClient(ctx)
	env.Must("sqs", err)
	m := metrics.New(os.Stdout)

	sp := spapi.New()
	gw := sellerapi.New(secrets, lwaClient, sp, store, sellerapi.WithEndpoint(cfg.SPAPIEndpoint), sellerapi.WithLogger(env.Log))
	var source poll.Source = poll.NewAmazonSource(gw, sp)
	if cfg.UseMock {
		source = poll.MockSource{}
	}
	pollOpts := []poll.Option{poll.WithLogger(env.Log), poll.WithMetrics(m),
		poll.WithConfig(poll.Config{Interval: cfg.PollInterval, FallbackInterval: cfg.PollFallbackInterval, Lookback: cfg.PollLookback})}
	// Push (NOTIFICATIONS_QUEUE_ARN, set by `make dev`): connections are
	// subscribed on connect and by the poller, and a consumer of the
	// notifications queue feeds ordernotify's handler.
	var subscriber *push.Subscriber
	var notifications *localpoll.Consumer
	if cfg.PushEnabled() && !cfg.UseMock {
		dest := push.NewDestinations(store, secrets, sp, gw, cfg.NotificationsQueueARN)
		subscriber = push.NewSubscriber(store, dest, gw, push.WithLogger(env.Log))
		pollOpts = append(pollOpts, poll.WithSubscriber(subscriber))
		intake := push.NewIntake(store, gw, push.WithLogger(env.Log), push.WithMetrics(m), push.WithUnsubscriber(subscriber))
		queueURL, err := localpoll.QueueURL(ctx, sqsClient, cfg.NotificationsQueueARN)
		if err != nil {
			return err
		}
		notifications = &localpoll.Consumer{SQS: sqsClient, QueueURL: queueURL, Handler: sqsbatch.Handler(intake), Log: env.Log, Name: "ordernotify"}
	}
	poller := poll.NewPoller(store, source, pollOpts...)
	fanout := poll.NewFanout(store, pollsender.NewSender(sqsClient, cfg.PollQueueURL), poll.WithLogger(env.Log), poll.WithMetrics(m))
	schedule := localpoll.Config{Fanout: fanout.Handle, Tenant: sqsbatch.Handler(poller), SQS: sqsClient,
		QueueURL: cfg.PollQueueURL, Interval: cfg.PollInterval, Log: env.Log}
	if pollOnce {
		sum, err := localpoll.PollOnce(ctx, schedule)
		if err != nil {
			return err
		}
		fmt.Printf("fan-out claimed %d, sent %d; polled %d records in %d batches, %d failed\n",
			sum.Fanout.Claimed, sum.Fanout.Sent, sum.Records, sum.Batches, sum.Failed)
		return nil
	}

	returnURL, returnHosts, loginURL := cfg.FrontendReturnURL, cfg.FrontendReturnHosts, cfg.FrontendLoginURL
	if returnURL == "" {
		returnURL = "http://" + addr + "/" // locally the consent comes back to the page
		returnHosts = append(returnHosts, addr)
	}
	if loginURL == "" {
		loginURL = returnURL // a seller arriving from the sandbox's Appstore signs in on the page
	}
	inbound := mailaddress.NewAddresses(store, cfg.InboundMailDomain)
	callbackCfg := connect.CallbackConfig{AppSource: cfg.AppSource, Participations: gw, Accounts: gw, InboundAddresses: inbound, Log: env.Log}
	disconnectCfg := connect.DisconnectConfig{Log: env.Log}
	if subscriber != nil {
		callbackCfg.OnConnected, callbackCfg.Unsubscriber, disconnectCfg.Unsubscriber = subscriber.OnConnected, subscriber, subscriber
	}
	verifier := env.Verifier(ctx)
	start := httpapi.StartRoute(connect.NewStart(store, secrets, connect.StartConfig{AppSource: cfg.AppSource,
		SellerCentralURL: cfg.SellerCentralURL, ReturnHosts: returnHosts}), verifier, env.Log)
	callback := httpapi.CallbackRoute(connect.NewCallback(store, secrets, lwaClient, callbackCfg), env.Log, returnURL)
	login := httpapi.LoginRoute(connect.NewLogin(store, secrets, connect.LoginConfig{AppSource: cfg.AppSource,
		SellerCentralURL: cfg.SellerCentralURL}), env.Log, loginURL)
	status := httpapi.StatusRoute(connect.NewStatus(store, connect.StatusConfig{PushStatus: store, InboundAddresses: inbound, Log: env.Log}), verifier, env.Log)
	disconnect := httpapi.DisconnectRoute(connect.NewDisconnect(store, secrets, disconnectCfg), verifier, env.Log)
	page := &devui.Page{Start: start, Status: status, Disconnect: disconnect, Tickets: store, Messages: store, Log: env.Log, Token: func(tenant string) (string, error) {
		return auth.Issue(cfg.JWTHS256Secret, cfg.JWTIssuer, cfg.JWTAudience, cfg.TenantClaim, tenant, time.Hour, time.Now())
	}, SandboxURL: cfg.SellerCentralURL, Apps: store, AppSource: cfg.AppSource,
		SMTPAddr: os.Getenv("INBOUND_SMTP_ADDR")}
	mux := httpapi.Mux(start, callback, login, status, disconnect)
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
		opts := []inboundmail.Option{inboundmail.WithBucket(cfg.InboundMailBucket), inboundmail.WithLogger(env.Log), inboundmail.WithMaxBytes(cfg.InboundMailMaxBytes)}
		if !cfg.UseMock {
			opts = append(opts, inboundmail.WithOrderContext(inboundmail.NewOrderContexts(store, gw, inboundmail.WithLogger(env.Log))))
		}
		mail := inboundmail.New(store, mailbucket.New(s3), cfg.InboundMailDomain, opts...)
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
