// Package wire builds each function's flow from the adapters its main has
// opened: one builder per function, used by functions/<fn>/main.go and by
// the local server (cmd/local), so what runs locally is what ships. A
// builder takes the configuration and the opened adapters (the store, the
// credential cache, the logger, the metrics writer, the JWT verifier) and
// opens nothing itself. The mail intake's builder is in wiremail: it links
// the MIME parser, which no other function may.
package wire

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/replies"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// Seller is the seller gateway on the store's budgets and secrets' credentials,
// with the SP-API client it calls through (AMAZON_SPAPI_ENDPOINT,
// AMAZON_LWA_TOKEN_URL).
func Seller(cfg config.Config, store *postgres.Store, secrets *credcache.Cache, log *slog.Logger) (*sellerapi.Gateway, *spapi.Client) {
	api := spapi.New()
	return sellerapi.New(secrets, lwa.New(cfg.LWATokenURL), api, store, sellerapi.WithEndpoint(cfg.SPAPIEndpoint), sellerapi.WithLogger(log)), api
}

// Subscriber subscribes connections to ORDER_CHANGE and ends their
// subscriptions; nil when push is off (NOTIFICATIONS_QUEUE_ARN unset).
func Subscriber(cfg config.Config, store *postgres.Store, secrets *credcache.Cache, gw *sellerapi.Gateway, api *spapi.Client, log *slog.Logger) *push.Subscriber {
	if !cfg.PushEnabled() {
		return nil
	}
	dest := push.NewDestinations(store, secrets, api, gw, cfg.NotificationsQueueARN)
	return push.NewSubscriber(store, dest, gw, push.WithLogger(log))
}

// PollTenant is polltenant's poller: searchOrders through the seller
// gateway (the seed's mock source with AMAZON_USE_MOCK, secrets then
// unused), subscribing connections to push when it is on.
func PollTenant(cfg config.Config, store *postgres.Store, secrets *credcache.Cache, m *metrics.Writer, log *slog.Logger) *poll.Poller {
	opts := []poll.PollerOption{poll.WithMetrics(m), poll.WithLogger(log),
		poll.WithConfig(poll.Config{Interval: cfg.PollInterval, FallbackInterval: cfg.PollFallbackInterval, Lookback: cfg.PollLookback})}
	if cfg.UseMock {
		return poll.NewPoller(store, poll.MockSource{}, opts...)
	}
	gw, api := Seller(cfg, store, secrets, log)
	if sub := Subscriber(cfg, store, secrets, gw, api, log); sub != nil {
		opts = append(opts, poll.WithSubscriber(sub))
	}
	return poll.NewPoller(store, poll.NewAmazonSource(gw, api), opts...)
}

// PollFanout is pollfanout's fan-out, sending with sender (pollsender).
func PollFanout(store *postgres.Store, sender poll.Sender, m *metrics.Writer, log *slog.Logger) *poll.Fanout {
	return poll.NewFanout(store, sender, poll.WithMetrics(m), poll.WithLogger(log))
}

// OrderNotify is ordernotify's intake: getOrder through the seller gateway;
// a notification for a disconnected seller retries the unsubscribe the
// disconnect could not finish (grantless: no seller token needed).
func OrderNotify(cfg config.Config, store *postgres.Store, secrets *credcache.Cache, m *metrics.Writer, log *slog.Logger) *push.Intake {
	gw, api := Seller(cfg, store, secrets, log)
	opts := []push.IntakeOption{push.WithMetrics(m), push.WithLogger(log)}
	if sub := Subscriber(cfg, store, secrets, gw, api, log); sub != nil {
		opts = append(opts, push.WithUnsubscriber(sub))
	}
	return push.NewIntake(store, gw, opts...)
}

// OAuthStart is oauthstart's route: the app's credentials, no Amazon call.
// New consents use AMAZON_SPAPI_APP_SOURCE's app; return_url may name
// FRONTEND_RETURN_HOSTS (and FRONTEND_RETURN_URL's host).
func OAuthStart(cfg config.Config, store *postgres.Store, secrets *credcache.Cache, verifier *auth.Verifier, log *slog.Logger) httpapi.Route {
	flow := connect.NewStart(store, secrets, connect.StartConfig{AppSource: cfg.AppSource, SellerCentralURL: cfg.SellerCentralURL,
		ReturnHosts: cfg.FrontendReturnHosts})
	return httpapi.StartRoute(flow, verifier, log)
}

// OAuthCallback is oauthcallback's route: the code exchanged at LWA, the
// seller's marketplaces and name through the seller gateway, the secret
// written, the inbound addresses provisioned and, with push on, the new
// connection subscribed to ORDER_CHANGE (a replaced seller's subscription
// ended). AMAZON_SPAPI_APP_SOURCE is the app of states started before apps
// were recorded.
func OAuthCallback(cfg config.Config, store *postgres.Store, secrets *credcache.Cache, log *slog.Logger) httpapi.Route {
	gw, api := Seller(cfg, store, secrets, log)
	opt := connect.CallbackConfig{AppSource: cfg.AppSource, Participations: gw, Accounts: gw,
		InboundAddresses: mailaddress.NewAddresses(store, cfg.InboundMailDomain), Log: log}
	if sub := Subscriber(cfg, store, secrets, gw, api, log); sub != nil {
		opt.OnConnected, opt.Unsubscriber = sub.OnConnected, sub
	}
	return httpapi.CallbackRoute(connect.NewCallback(store, secrets, lwa.New(cfg.LWATokenURL), opt), log, cfg.FrontendReturnURL)
}

// OAuthLogin is oauthlogin's route: amazon_callback_uri checked against the
// app's region (the app's credentials, no Amazon call).
func OAuthLogin(cfg config.Config, store *postgres.Store, secrets *credcache.Cache, log *slog.Logger) httpapi.Route {
	flow := connect.NewLogin(store, secrets, connect.LoginConfig{AppSource: cfg.AppSource, SellerCentralURL: cfg.SellerCentralURL})
	return httpapi.LoginRoute(flow, log, cfg.FrontendLoginURL)
}

// Status is status's route: the database only (no Vault, no Amazon).
func Status(cfg config.Config, store *postgres.Store, verifier *auth.Verifier, log *slog.Logger) httpapi.Route {
	return httpapi.StatusRoute(statusFlow(cfg, store, log), verifier, log)
}

// InboundAddress is the inbound-address route (served by the status
// function): the status flow's addresses, one country at a time.
func InboundAddress(cfg config.Config, store *postgres.Store, verifier *auth.Verifier, log *slog.Logger) httpapi.Route {
	return httpapi.InboundAddressRoute(statusFlow(cfg, store, log), verifier, log)
}

func statusFlow(cfg config.Config, store *postgres.Store, log *slog.Logger) *connect.Status {
	return connect.NewStatus(store, connect.StatusConfig{PushStatus: store,
		InboundAddresses: mailaddress.NewAddresses(store, cfg.InboundMailDomain), SenderApprovals: store, Log: log})
}

// Disconnect is disconnect's route: with push on, the ORDER_CHANGE
// subscription is deleted first (deleteSubscriptionById, grantless), then
// the connection is DISABLED and its secret destroyed.
func Disconnect(cfg config.Config, store *postgres.Store, secrets *credcache.Cache, verifier *auth.Verifier, log *slog.Logger) httpapi.Route {
	opt := connect.DisconnectConfig{Log: log}
	gw, api := Seller(cfg, store, secrets, log)
	if sub := Subscriber(cfg, store, secrets, gw, api, log); sub != nil {
		opt.Unsubscriber = sub
	}
	return httpapi.DisconnectRoute(connect.NewDisconnect(store, secrets, opt), verifier, log)
}

// Rules are the content rules with the deployment's keyword screen
// (REPLY_BLOCKED_KEYWORDS; KeyBuzz's list by default).
func Rules(cfg config.Config) reply.Rules {
	r := reply.DefaultRules()
	if cfg.ReplyBlockedKeywords != nil {
		r.BlockedKeywords = cfg.ReplyBlockedKeywords
	}
	return r
}

// SendReply is sendreply's route: checked, stored, then sent to jobs (the
// outbound queue).
func SendReply(cfg config.Config, store *postgres.Store, jobs replies.JobQueue, verifier *auth.Verifier, log *slog.Logger) httpapi.Route {
	return httpapi.SendReplyRoute(replies.NewQueue(store, jobs, Rules(cfg), log), verifier, log)
}

// Outbound is outbound's route: the database only.
func Outbound(store *postgres.Store, verifier *auth.Verifier, log *slog.Logger) httpapi.Route {
	return httpapi.OutboundRoute(store, verifier, log)
}

// SESEvents is sesevents' flow (and the mail intake's hearer of Amazon's
// notices about replies).
func SESEvents(store *postgres.Store, log *slog.Logger) *replies.Events {
	return replies.NewEvents(store, log)
}

// PollTick is pollfanout's handler, one per scheduled tick: the fan-out of
// the due connections, then Amazon's 24-hour response clock (a metric),
// then, when the function knows the outbound queue (jobs not nil), the
// sweep that sends again the jobs of stranded replies. The clock and the
// sweep never fail the tick: the next tick tries them again.
func PollTick(fanout *poll.Fanout, store *postgres.Store, m *metrics.Writer, jobs replies.JobQueue, log *slog.Logger) func(context.Context, events.EventBridgeEvent) (poll.FanoutResult, error) {
	clock := replies.NewClock(store, m)
	var sweep *replies.Sweep
	if jobs != nil {
		sweep = replies.NewSweep(store, jobs, 0, log)
	}
	return func(ctx context.Context, ev events.EventBridgeEvent) (poll.FanoutResult, error) {
		res, err := fanout.Handle(ctx, ev)
		if _, cerr := clock.Report(ctx); cerr != nil {
			log.WarnContext(ctx, "response clock not reported", "err", cerr)
		}
		if sweep != nil {
			if _, serr := sweep.Run(ctx); serr != nil {
				log.WarnContext(ctx, "reply sweep incomplete", "err", serr)
			}
		}
		return res, err
	}
}
