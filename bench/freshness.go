package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

// freshChannel is one way a buyer's action reaches a ticket, measured in
// the freshness run: act performs one buyer action in the sandbox and
// returns the order id whose ExternalMessage marks its arrival in pool.
type freshChannel struct {
	name   string
	tenant string
	pool   *pgxpool.Pool // the channel's database (the watcher reads it)
	trace  *sqlTrace     // the statements of the channel's code
	// period is what bounds the channel by design (poll: its interval;
	// 0: none), and limit its goal for p99.
	period, limit time.Duration
	how           string // what runs it, for the report
	// act performs one buyer action and returns the order it is about and
	// the moment the action's request left (the time counted from).
	act func(ctx context.Context) (orderID string, at time.Time, err error)
	// evidence, when set, reports what the channel's state shows after
	// the run.
	evidence func(ctx context.Context) string
	// window is the template's MaximumBatchingWindowInSeconds for the
	// channel's consumer (0: none).
	window time.Duration
	// reportOnly: its p99 has no goal.
	reportOnly bool
}

// freshness is what one channel measured.
type freshness struct {
	sent, seen      int
	p50, p99, worst time.Duration
	least           time.Duration // the fastest event
}

// benchFreshness measures, side by side in one run on the local stack,
// the time from a buyer's action in the sandbox to the committed ticket for
// each channel: poll (polling only: the fan-out and the poller run by
// dev/localpoll at the real MARKETPLACE_POLL_INTERVAL_SECONDS), push
// (ORDER_CHANGE notifications delivered by the sandbox to a queue on the
// emulator, consumed by ordernotify's handler, with fallback polling at
// POLL_FALLBACK_INTERVAL_SECONDS) and mail (the sandbox relays a buyer's
// message by SMTP to dev/smtpses, which plays SES: S3, SNS, the mail queue,
// consumed by inboundmail's handler), each with a sandbox, a seller and a
// database of its own. Then poll again on a driven clock, over enough
// sandbox time to see its steady state (freshPollSteady).
func benchFreshness(ctx context.Context, e *env) (section, error) {
	sec := section{Title: "Freshness (buyer action in the sandbox to committed ticket)"}
	sc := e.sc
	want := sc.FreshChannels
	if len(e.channels) > 0 {
		want = e.channels
	}
	cfg, err := loadConfig()
	if err != nil {
		return sec, err
	}
	pollInterval, fallback := cfg.PollInterval, cfg.PollFallbackInterval
	if sc.FreshPollInterval > 0 {
		pollInterval = sc.FreshPollInterval
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	admin := &sandboxAdmin{client: &http.Client{Timeout: 10 * time.Second}}
	start := time.Now().UTC()

	// runPolling runs the schedule and the poll queue's consumer of one
	// channel's database, as cmd/local does.
	runPolling := func(label string, store *postgres.Store, poller *poll.Poller) error {
		queue, err := e.freshQueue(ctx, label)
		if err != nil {
			return err
		}
		fanout := poll.NewFanout(store, pollsender.NewSender(e.sqs, queue), poll.WithLogger(e.quiet))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = localpoll.Run(runCtx, localpoll.Config{Fanout: fanout.Handle, Tenant: sqsbatch.Handler(poller), SQS: e.sqs,
				QueueURL: queue, Interval: pollInterval, Log: e.quiet})
		}()
		return nil
	}
	// cancelAct is the buyer's action: a cancellation request on an order
	// placed just before.
	cancelAct := func(url, sellerID, marketplaceID string) func(ctx context.Context) (string, time.Time, error) {
		return func(ctx context.Context) (string, time.Time, error) {
			orderID, err := admin.addOrder(ctx, url, sellerID, marketplaceID)
			if err != nil {
				return "", time.Time{}, err
			}
			at := time.Now()
			return orderID, at, admin.cancel(ctx, url, sellerID, orderID)
		}
	}
	// setup gives a channel a sandbox of its own (deliver: notifications
	// to the emulator; opts: more of its configuration), the clients the
	// real functions build on it, a fresh database (the store's pool
	// traced, the watcher's apart) and a connected seller.
	type channelRig struct {
		rig     *sandboxRig
		secrets *credcache.Cache
		lwa     *lwa.Client
		api     *spapi.Client
		trace   *sqlTrace
		store   *postgres.Store
		watch   *pgxpool.Pool
		tenant  string
		connID  string
		seller  sandbox.Seller
		amazon  *poll.AmazonSource
		gw      *sellerapi.Gateway
	}
	setup := func(label string, deliver bool, opts ...func(*sandbox.Config)) (*channelRig, error) {
		rig, err := e.newSandboxRig(ctx, 1, nil, deliver, opts...)
		if err != nil {
			return nil, err
		}
		c := &channelRig{rig: rig, secrets: credcache.New(rig.secrets), lwa: lwa.New(rig.url + "/auth/o2/token"),
			api: spapi.New(), trace: newSQLTrace()}
		if c.store, c.watch, err = e.freshWatchedStore(ctx, label, c.trace); err != nil {
			return nil, err
		}
		if c.tenant, c.connID, c.seller, err = rig.connect(ctx, e, c.store, 0, label, start); err != nil {
			return nil, err
		}
		c.gw = sellerapi.New(c.secrets, c.lwa, c.api, c.store, sellerapi.WithEndpoint(rig.url), sellerapi.WithLogger(e.quiet))
		c.amazon = poll.NewAmazonSource(c.gw, c.api)
		return c, nil
	}
	var (
		channels []freshChannel
		pollRig  *sandboxRig
	)

	// Poll: polling only (no subscriber), at the real interval.
	if slices.Contains(want, "poll") {
		c, err := setup("freshpoll", false)
		if err != nil {
			return sec, err
		}
		rig, store, watch, seller, connID := c.rig, c.store, c.watch, c.seller, c.connID
		pollRig = rig
		poller := poll.NewPoller(store, c.amazon, poll.WithConfig(poll.Config{Interval: pollInterval, Lookback: cfg.PollLookback}), poll.WithLogger(e.quiet))
		if err := runPolling("freshpoll", store, poller); err != nil {
			return sec, err
		}
		channels = append(channels, freshChannel{
			name: "poll", tenant: c.tenant, pool: watch, trace: c.trace, period: pollInterval, limit: pollLimit(pollInterval),
			how: fmt.Sprintf("polling only: dev/localpoll calls poll.Fanout.Handle every %s (MARKETPLACE_POLL_INTERVAL_SECONDS here; a timer for the EventBridge schedule) and feeds sqsbatch.Handler(poll.Poller) from the poll queue on the emulator, as cmd/local wires them", pollInterval),
			act: cancelAct(rig.url, seller.ID, seller.MarketplaceIDs[0]),
			evidence: func(ctx context.Context) string {
				var cursor *time.Time
				err := watch.QueryRow(ctx, `SELECT "cursorAt" FROM keybuzz_amazon."SyncState" WHERE "connectionId" = $1`, connID).Scan(&cursor)
				st := rig.sb.Stats(seller.ID)
				calls := fmt.Sprintf("the sandbox answered %d searchOrders calls (%d with 429)", st.Calls["searchOrders"], st.Throttled)
				switch {
				case err != nil:
					return calls + "; the cursor could not be read: " + err.Error()
				case cursor == nil:
					return calls + "; no cursor stored"
				}
				return fmt.Sprintf("%s; at the end of the run the connection's cursor (MarketplaceSyncState.cursorAt, the lastUpdatedBefore of Amazon's last answer) lay %.0f s behind the clock", calls, time.Since(*cursor).Seconds())
			},
		})
	}

	// Push: subscribed as the Connect callback subscribes, notifications
	// consumed by ordernotify's handler; fallback polling as polltenant
	// runs it with push on.
	if slices.Contains(want, "push") {
		c, err := setup("freshpush", true)
		if err != nil {
			return sec, err
		}
		rig, store, seller, tenant, amazon := c.rig, c.store, c.seller, c.tenant, c.amazon
		notifyURL, notifyARN, err := e.freshQueueARN(ctx, "freshnotify")
		if err != nil {
			return sec, err
		}
		dest := push.NewDestinations(store, c.secrets, c.api, c.gw, notifyARN)
		subscriber := push.NewSubscriber(store, dest, c.gw, push.WithLogger(e.quiet))
		subscriber.OnConnected(ctx, marketplace.Connection{ID: c.connID, TenantID: tenant})
		intake := push.NewIntake(store, c.gw, push.WithLogger(e.quiet))
		notify, err := templateMapping("OrderNotifyFunction")
		if err != nil {
			return sec, err
		}
		consumer := localpoll.Consumer{SQS: e.sqs, QueueURL: notifyURL, Handler: sqsbatch.Handler(intake), BatchSize: int32(notify.batch), Log: e.quiet, Name: "ordernotify"}
		wg.Add(1)
		go func() { defer wg.Done(); consumer.Run(runCtx) }()
		poller := poll.NewPoller(store, amazon,
			poll.WithConfig(poll.Config{Interval: pollInterval, FallbackInterval: fallback, Lookback: cfg.PollLookback}), poll.WithLogger(e.quiet),
			poll.WithSubscriber(subscriber))
		if err := runPolling("freshpushpoll", store, poller); err != nil {
			return sec, err
		}
		channels = append(channels, freshChannel{
			name: "push", tenant: tenant, pool: c.watch, trace: c.trace, limit: 10 * time.Second, window: notify.window,
			how: fmt.Sprintf("the sandbox delivers ORDER_CHANGE notifications to a queue on the emulator, a dev/localpoll.Consumer (batches of at most %d, the template's BatchSize for ordernotify) feeds sqsbatch.Handler(push.Intake) (ordernotify's handler: getOrder, then the ingestion statement); the connection is subscribed by push.Subscriber.OnConnected as the Connect callback runs it, and polled as a fallback every %s (POLL_FALLBACK_INTERVAL_SECONDS)", notify.batch, fallback),
			act: cancelAct(rig.url, seller.ID, seller.MarketplaceIDs[0]),
			evidence: func(ctx context.Context) string {
				st := rig.sb.NotificationStats()
				sp := rig.sb.Stats(seller.ID)
				return fmt.Sprintf("the sandbox published %d notifications and sent %d (%d failed); the seller's SP-API calls: %s (%d with 429)", st.Published, st.Sent, st.Failed, callsText(sp.Calls), sp.Throttled)
			},
		})
	}

	// Mail: the sandbox relays the buyer's message by SMTP to dev/smtpses
	// (SES's receipt rule: S3, then SNS to the mail queue), consumed by
	// inboundmail's handler as functions/inboundmail wires it.
	if slices.Contains(want, "mail") {
		mail, err := e.newMailRig(ctx, "freshmail", 0)
		if err != nil {
			return sec, err
		}
		c, err := setup("freshmail", false, func(c *sandbox.Config) { c.RelaySMTP = mail.smtp.Addr() })
		if err != nil {
			return sec, err
		}
		rig, store, seller, tenant, watch := c.rig, c.store, c.seller, c.tenant, c.watch
		addr, err := mail.provision(ctx, store, tenant, seller.MarketplaceIDs[0])
		if err != nil {
			return sec, err
		}
		if err := admin.call(ctx, http.MethodPut, rig.url, "/_sandbox/sellers/"+seller.ID+"/forwarding", map[string]string{"address": addr.EmailAddress}, nil); err != nil {
			return sec, fmt.Errorf("the seller's forwarding address: %w", err)
		}
		flow := mail.flow(e, store, c.gw, nil)
		m, err := templateMapping("InboundMailFunction")
		if err != nil {
			return sec, err
		}
		consumer := localpoll.Consumer{SQS: e.sqs, QueueURL: mail.queueURL, Handler: sqsbatch.Handler(flow), BatchSize: int32(m.batch), Log: e.quiet, Name: "inboundmail"}
		wg.Add(1)
		go func() { defer wg.Done(); consumer.Run(runCtx) }()
		var n atomic.Int64
		channels = append(channels, freshChannel{
			name: "mail", tenant: tenant, pool: watch, trace: c.trace, limit: 10 * time.Second, window: m.window,
			how: fmt.Sprintf("the sandbox relays the buyer's message (POST /_sandbox/sellers/<id>/buyer-messages, Amazon's relay) by SMTP to the seller's forwarding address, the tenant's inbound address; %s; a dev/localpoll.Consumer (batches of at most %d, the template's BatchSize for inboundmail) feeds sqsbatch.Handler(inboundmail.Flow) as functions/inboundmail wires it (S3 read, parse, ingestion, then the order's context by getOrder)",
				mail.what(), m.batch),
			act: func(ctx context.Context) (string, time.Time, error) {
				orderID, err := admin.addOrder(ctx, rig.url, seller.ID, seller.MarketplaceIDs[0])
				if err != nil {
					return "", time.Time{}, err
				}
				at := time.Now()
				err = admin.call(ctx, http.MethodPost, rig.url, "/_sandbox/sellers/"+seller.ID+"/buyer-messages",
					map[string]any{"orderId": orderID, "text": fmt.Sprintf("Where is my parcel? (message %d)", n.Add(1))}, nil)
				return orderID, at, err
			},
			evidence: func(ctx context.Context) string {
				outcomes, err := mailOutcomes(ctx, watch, tenant)
				if err != nil {
					return "the mails' outcomes could not be read: " + err.Error()
				}
				sp := rig.sb.Stats(seller.ID)
				return fmt.Sprintf("the mails' outcomes (InboundMail): %s; the seller's SP-API calls (the order contexts): %s (%d with 429)", outcomes, callsText(sp.Calls), sp.Throttled)
			},
		})
	}
	if len(channels) == 0 && !slices.Contains(want, "poll_steady") {
		return sec, fmt.Errorf("no freshness channel among %v", want)
	}

	var lines []string
	if len(channels) > 0 {
		// Let the first fan-outs and polls pass (a connection's first poll
		// covers the look-back), then act.
		time.Sleep(min(2*time.Second, pollInterval))
		wait := sc.FreshSpread + pollInterval + sc.FreshGrace
		for _, ch := range channels {
			ch.trace.reset() // what the channels' code sends from now on
		}
		results, err := measureFreshness(ctx, channels, sc.FreshEvents, sc.FreshSpread, wait)
		if err != nil {
			return sec, err
		}
		stop()
		wg.Wait()
		var calls []searchCall
		if pollRig != nil {
			calls = pollRig.searches.list()
		}
		for i, ch := range channels {
			r := results[i]
			e.logf("freshness %s: %d of %d events reached a ticket; p50 %s p99 %s max %s", ch.name, r.seen, r.sent, r.p50, r.p99, r.worst)
			ev := ""
			if ch.evidence != nil {
				ev = ch.evidence(ctx)
			}
			bound := ""
			if ch.name == "poll" {
				bound = pollBound(calls, r, pollInterval, ch.limit)
			}
			sec.Results = append(sec.Results, freshResults("freshness_"+ch.name, ch, r, ev, bound)...)
			lines = append(lines, fmt.Sprintf(`- **%s**: %s. %d events, %d arrived: fastest %.2f s, p50 %.2f s, p99 %.2f s, max %.2f s; %s.%s%s

  Statements of its code while the actions were measured (pgx tracer on its store's pool; the watcher reads through a pool of its own):

%s`, ch.name, ch.how, r.sent, r.seen, r.least.Seconds(), r.p50.Seconds(), r.p99.Seconds(), r.worst.Seconds(), ev, windowText(ch), prefixed(" ", bound), indent(ch.trace.table(), "  ")))
		}
		sec.Notes = append(sec.Notes, fmt.Sprintf(`Each channel has a sandbox of its own (in process, on the real clock), a
seller and a fresh database of its own, with the real handlers and
consumers; %d buyer actions per channel at random moments over %s, all
channels interleaved, each through its sandbox's admin API over HTTP (an
order placed, then the buyer's action on it: a cancellation request for
poll and push, a message relayed by mail for mail); the time counted is
from the moment the action's request left to the moment a watcher saw the
ExternalMessage of its order in the channel's database (it queries every
%s, so a figure is late by at most that; a row is visible only once its
transaction committed). The run waits at most %s after the first action.

%s`, sc.FreshEvents, sc.FreshSpread, freshWatchEvery, wait, strings.Join(lines, "\n")))
	}
	if slices.Contains(want, "poll_steady") {
		res, note, err := e.freshPollSteady(ctx, cfg)
		if err != nil {
			return sec, fmt.Errorf("poll on a driven clock: %w", err)
		}
		sec.Results = append(sec.Results, res...)
		sec.Notes = append(sec.Notes, note)
	}
	return sec, nil
}

// freshResults are a channel's p99 (with its goal), p50 and max.
func freshResults(prefix string, ch freshChannel, r freshness, evidence, bound string) []Result {
	lim := ch.limit.Seconds()
	goal := fmt.Sprintf("≤ %s s (%s), every event arrives", num(lim), limitText(ch))
	checks := []check{atMost("value", lim), inEvery(atLeast("baseline:arrived", float64(r.sent)))}
	if ch.reportOnly {
		goal, checks = "report only", nil
	}
	return []Result{{
		Name: prefix + "_p99", Value: round3(r.p99.Seconds()), Unit: "s",
		Baselines: map[string]float64{"goal_limit": lim, "events": float64(r.sent), "arrived": float64(r.seen)},
		Ratios:    map[string]float64{"goal_limit": ratio(r.p99.Seconds(), lim)},
		Goal:      goal, checks: checks, miss: "an event takes longer than the limit to become a ticket (p99), or one never arrives",
		explain: func(m Result) string {
			return fmt.Sprintf(`p99 %s s (median over runs). In the last run %d of %d events arrived: fastest %.1f s, p50 %.1f s, max %.1f s; %s.%s%s`,
				num(m.Value), r.seen, r.sent, r.least.Seconds(), r.p50.Seconds(), r.worst.Seconds(), evidence, boundText(ch, r), prefixed(" ", bound))
		},
	}, {
		Name: prefix + "_p50", Value: round3(r.p50.Seconds()), Unit: "s",
		Baselines: map[string]float64{"goal_limit": lim}, Ratios: map[string]float64{"goal_limit": ratio(r.p50.Seconds(), lim)},
		Goal: "report only",
	}, {
		Name: prefix + "_max", Value: round3(r.worst.Seconds()), Unit: "s",
		Baselines: map[string]float64{"goal_limit": lim}, Ratios: map[string]float64{"goal_limit": ratio(r.worst.Seconds(), lim)},
		Goal: "report only",
	}}
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// windowText says what Lambda's batching window would add on AWS, from
// the template (the local consumer hands a batch over as soon as it has
// one).
func windowText(ch freshChannel) string {
	if ch.window <= 0 {
		return ""
	}
	return fmt.Sprintf(" On AWS the event source mapping's MaximumBatchingWindowInSeconds (%s in template.yaml) may add up to that much before an invocation; the local consumer does not wait for it.", ch.window)
}

// callsText lists SP-API calls by operation, sorted.
func callsText(calls map[string]int) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(calls)) {
		parts = append(parts, fmt.Sprintf("%s %d", op, calls[op]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// mailOutcomes counts a tenant's InboundMail rows by outcome.
func mailOutcomes(ctx context.Context, pool *pgxpool.Pool, tenant string) (string, error) {
	rows, err := pool.Query(ctx, `SELECT "outcome"::text, count(*) FROM keybuzz_amazon."InboundMail" WHERE "tenantId" = $1 GROUP BY 1 ORDER BY 1`, tenant)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var o string
		var n int
		if err := rows.Scan(&o, &n); err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%s %d", o, n))
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	return strings.Join(parts, ", "), rows.Err()
}

// freshWatchedStore is a channel's store on a fresh database (its pool
// traced by trace) and a pool of its own on the same database for the
// watcher and the evidence, whose statements are not the code's.
func (e *env) freshWatchedStore(ctx context.Context, label string, trace *sqlTrace) (*postgres.Store, *pgxpool.Pool, error) {
	store, u, err := e.freshStore(ctx, label, 4, nil, trace)
	if err != nil {
		return nil, nil, err
	}
	watch, err := e.pool(ctx, u, 2)
	if err != nil {
		return nil, nil, err
	}
	return store, watch, nil
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// freshWatchEvery is how often the watcher looks for new ExternalMessages.
const freshWatchEvery = 100 * time.Millisecond

// amazonWindowLag is how far behind now searchOrders' window ends: Amazon
// answers lastUpdatedBefore no later than two minutes before the call
// (dev/sandbox's beforeMargin), so no poll can see a younger event.
const amazonWindowLag = 2 * time.Minute

// pollLimit is the poll channels' goal: Amazon's window lag, then one poll
// period, then 10 s for the poll itself. No poller can do better than the
// lag; a poller that misses a period, or polls twice as seldom as its
// interval, misses it.
func pollLimit(period time.Duration) time.Duration {
	return amazonWindowLag + period + 10*time.Second
}

func limitText(ch freshChannel) string {
	if ch.period > 0 {
		return "Amazon's window lag of " + amazonWindowLag.String() + " + one poll period of " + ch.period.String() + " + 10 s"
	}
	return "10 s"
}

// boundText says what bounds a channel from what it measured.
func boundText(ch freshChannel, r freshness) string {
	switch {
	case r.seen < r.sent:
		return fmt.Sprintf(" %d event(s) never arrived within the run's wait; they count with the time from their action to the end of the wait, so the percentiles are lower bounds.", r.sent-r.seen)
	case ch.period > 0 && r.least > ch.period:
		return fmt.Sprintf(" Even its fastest event took longer than the poll period (%s), so the period alone does not bound it.", ch.period)
	case ch.period > 0 && r.worst > ch.period:
		return fmt.Sprintf(" Its max exceeds the poll period (%s).", ch.period)
	case ch.period > 0:
		return fmt.Sprintf(" An action waits for the next poll, at most one period (%s), then the poll itself.", ch.period)
	}
	return ""
}

// measureFreshness performs n actions per channel at random moments over
// spread, all channels interleaved, and waits (at most deadline after the
// start) until a watcher sees each action's order in ExternalMessage.
func measureFreshness(ctx context.Context, channels []freshChannel, n int, spread, deadline time.Duration) ([]freshness, error) {
	type action struct {
		ch int
		at time.Duration
	}
	rng := newRand()
	var plan []action
	for c := range channels {
		for range n {
			plan = append(plan, action{c, time.Duration(rng.Int64N(int64(spread)))})
		}
	}
	slices.SortFunc(plan, func(a, b action) int { return int(a.at - b.at) })

	type key struct {
		tenant, order string
	}
	var mu sync.Mutex
	acted := map[key]time.Time{}
	seen := map[key]time.Time{}
	// One watcher per channel, each on its channel's database.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan error, len(channels))
	for _, ch := range channels {
		go func(ch freshChannel) {
			for watchCtx.Err() == nil {
				rows, err := ch.pool.Query(watchCtx, `SELECT "orderId" FROM "ExternalMessage" WHERE "tenantId" = $1`, ch.tenant)
				if err == nil {
					now := time.Now()
					for rows.Next() {
						k := key{tenant: ch.tenant}
						if err = rows.Scan(&k.order); err != nil {
							break
						}
						mu.Lock()
						if _, ok := seen[k]; !ok {
							seen[k] = now
						}
						mu.Unlock()
					}
					rows.Close()
					if err == nil {
						err = rows.Err()
					}
				}
				if err != nil && watchCtx.Err() == nil {
					watchDone <- fmt.Errorf("%s watcher: %w", ch.name, err)
					return
				}
				select {
				case <-watchCtx.Done():
				case <-time.After(freshWatchEvery):
				}
			}
			watchDone <- nil
		}(ch)
	}
	defer stopWatch()

	t0 := time.Now()
	errs := make(chan error, len(plan))
	var actWG sync.WaitGroup
	for _, a := range plan {
		if d := time.Until(t0.Add(a.at)); d > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(d):
			}
		}
		actWG.Add(1)
		go func(a action) {
			defer actWG.Done()
			order, at, err := channels[a.ch].act(ctx)
			if err != nil {
				errs <- fmt.Errorf("%s action: %w", channels[a.ch].name, err)
				return
			}
			mu.Lock()
			acted[key{channels[a.ch].tenant, order}] = at
			mu.Unlock()
		}(a)
	}
	actWG.Wait()
	close(errs)
	for err := range errs {
		return nil, err
	}
	for time.Since(t0) < deadline {
		mu.Lock()
		done := true
		for k := range acted {
			if _, ok := seen[k]; !ok {
				done = false
				break
			}
		}
		mu.Unlock()
		if done {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	ended := time.Now()
	stopWatch()
	for range channels {
		if err := <-watchDone; err != nil {
			return nil, err
		}
	}
	out := make([]freshness, len(channels))
	mu.Lock()
	defer mu.Unlock()
	for i, ch := range channels {
		var lat []time.Duration
		for k, at := range acted {
			if k.tenant != ch.tenant {
				continue
			}
			out[i].sent++
			if s, ok := seen[k]; ok {
				out[i].seen++
				lat = append(lat, max(s.Sub(at), 0))
			} else {
				lat = append(lat, ended.Sub(at)) // at least that: it never arrived
			}
		}
		slices.Sort(lat)
		if len(lat) > 0 {
			out[i].p50, out[i].p99, out[i].worst, out[i].least = pct(lat, 0.5), pct99(lat), lat[len(lat)-1], lat[0]
		}
	}
	return out, nil
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16)) }

// loadConfig reads the stack's configuration (its poll intervals are set
// whatever else fails).
func loadConfig() (config.Config, error) { return config.Load(os.Getenv) }

// pct99 is the 99th percentile, nearest rank (with fewer than 100 samples,
// the largest but none above it).
func pct99(sorted []time.Duration) time.Duration {
	i := (len(sorted)*99 + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// sandboxAdmin calls a sandbox's admin API over HTTP, as a person driving
// it would.
type sandboxAdmin struct {
	client *http.Client
}

func (a *sandboxAdmin) call(ctx context.Context, method, url, path string, in, out any) error {
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, method, url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(buf.String()))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func (a *sandboxAdmin) addOrder(ctx context.Context, url, sellerID, marketplaceID string) (string, error) {
	var out struct {
		OrderID string `json:"orderId"`
	}
	err := a.call(ctx, http.MethodPost, url, "/_sandbox/sellers/"+sellerID+"/orders", map[string]any{"marketplaceId": marketplaceID}, &out)
	return out.OrderID, err
}

func (a *sandboxAdmin) cancel(ctx context.Context, url, sellerID, orderID string) error {
	return a.call(ctx, http.MethodPost, url, "/_sandbox/sellers/"+sellerID+"/cancellation-requests", map[string]any{"orderId": orderID, "reason": "ORDERED_BY_MISTAKE"}, nil)
}

// pollBound derives what bounds poll freshness from the searchOrders calls
// the channel's sandbox answered: an answer covers orders changed up to its
// lastUpdatedBefore, so an event is stored by the first call whose window
// ends after it: no sooner than that call's lag behind the clock (call time
// minus lastUpdatedBefore), and up to that lag plus the gap to the next
// call.
func pollBound(calls []searchCall, r freshness, interval, limit time.Duration) string {
	var ok []searchCall
	var rate float64
	throttled := 0
	for _, c := range calls {
		if c.Status == http.StatusTooManyRequests {
			throttled++
		}
		if c.Status == http.StatusOK && !c.Before.IsZero() {
			ok = append(ok, c)
			if c.RateLimit > 0 {
				rate = c.RateLimit
			}
		}
	}
	if len(ok) == 0 {
		return fmt.Sprintf("The sandbox recorded %d searchOrders calls and none answered with a window end (lastUpdatedBefore), so this run shows nothing that bounds it.", len(calls))
	}
	var lags, gaps []time.Duration
	for i, c := range ok {
		lags = append(lags, c.At.Sub(c.Before))
		if i > 0 {
			gaps = append(gaps, c.At.Sub(ok[i-1].At))
		}
	}
	slices.Sort(lags)
	lag := lags[len(lags)/2]
	var b strings.Builder
	fmt.Fprintf(&b, "What bounds it, from %d searchOrders answers of this channel's sandbox (%d calls answered 429): each answer's window ended %.0f s before its call (lastUpdatedBefore; median, range %.0f–%.0f s), so no event is stored sooner than that after it happens",
		len(ok), throttled, lag.Seconds(), lags[0].Seconds(), lags[len(lags)-1].Seconds())
	if rate > 0 {
		fmt.Fprintf(&b, "; the answers' x-amzn-RateLimit-Limit was %g/s, one call per %.0f s once the burst is spent, and a call waits for the first fan-out (every %s) after its token", rate, 1/rate, interval)
	}
	if len(gaps) == 0 {
		fmt.Fprintf(&b, "; with one call in the run its calls' spacing is not measured. ")
	} else {
		sorted := slices.Clone(gaps)
		slices.Sort(sorted)
		gap, worst := sorted[len(sorted)/2], sorted[len(sorted)-1]
		apart := fmt.Sprintf("%.0f–%.0f s apart (%d gaps, median %.0f s)", sorted[0].Seconds(), worst.Seconds(), len(gaps), gap.Seconds())
		if len(gaps) <= 6 {
			secs := make([]string, len(gaps))
			for i, g := range gaps {
				secs[i] = fmt.Sprintf("%.0f", g.Seconds())
			}
			apart = fmt.Sprintf("%s s apart (median %.0f s)", strings.Join(secs, ", "), gap.Seconds())
		}
		fmt.Fprintf(&b, "; the calls came %s, %.2f fan-out periods", apart, gap.Seconds()/interval.Seconds())
		if gap > interval+interval/2 {
			fmt.Fprintf(&b, " (the poll interval is %s)", interval)
		}
		fmt.Fprintf(&b, "; so an event waits from %.0f s up to %.0f s (the lag plus the widest gap, %.0f s) plus the poll itself. ",
			lag.Seconds(), (lag + worst).Seconds(), worst.Seconds())
	}
	fmt.Fprintf(&b, "Measured: fastest %.1f s, max %.1f s.", r.least.Seconds(), r.worst.Seconds())
	if lag > limit {
		fmt.Fprintf(&b, " The window's lag alone (%.0f s) exceeds the goal's limit (%s s): no poll interval meets that goal.", lag.Seconds(), num(limit.Seconds()))
	}
	return b.String()
}

// steadyWarmUpMax bounds the steady-state poll run's warm-up.
const steadyWarmUpMax = 2 * time.Hour

// freshPollSteady measures poll freshness on a driven clock (the
// sandbox's, the store's, the fan-out's and the poller's), over enough
// sandbox time for its steady state, past the rate budget's burst: one
// tenant, sc.FreshEvents cancellation requests at random moments, the
// fan-out every interval of the clock and the poller on the jobs it sent,
// as the schedule and the event source mapping would. An event's time is
// from its action to the poll that stored it (observed right after each
// poll: the poll takes no clock time).
func (e *env) freshPollSteady(ctx context.Context, cfg config.Config) ([]Result, string, error) {
	sc := e.sc
	interval := cfg.PollInterval
	spread := time.Duration(sc.FreshEvents) * 90 * time.Second
	tail := 10 * time.Minute
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := sandbox.NewManualClock(start)
	rig, err := e.newSandboxRig(ctx, 1, clock, false)
	if err != nil {
		return nil, "", err
	}
	trace := newSQLTrace()
	store, _, err := e.freshStore(ctx, "freshsteady", 2, clock.Now, trace)
	if err != nil {
		return nil, "", err
	}
	secrets := credcache.New(rig.secrets, credcache.WithClock(clock.Now))
	sp := spapi.New()
	amazon := poll.NewAmazonSource(sellerapi.New(secrets, lwa.New(rig.url+"/auth/o2/token"), sp, store, sellerapi.WithEndpoint(rig.url), sellerapi.WithLogger(e.quiet)),
		sp, poll.WithClock(clock.Now))
	poller := poll.NewPoller(store, amazon, poll.WithConfig(poll.Config{Interval: interval, Lookback: cfg.PollLookback}), poll.WithClock(clock.Now), poll.WithLogger(e.quiet))
	sender := &captureSender{}
	fanout := poll.NewFanout(store, sender, poll.WithClock(clock.Now), poll.WithLogger(e.quiet))
	tenant, _, seller, err := rig.connect(ctx, e, store, 0, "fresh-steady", start)
	if err != nil {
		return nil, "", err
	}
	acted := map[string]time.Time{}
	seen := map[string]time.Time{}
	// tick is one step of the schedule at t: the fan-out, then the poller
	// on the jobs it sent, then what the tenant's ExternalMessages show.
	tick := func(t time.Time) error {
		clock.Set(t)
		sender.msgs = sender.msgs[:0]
		if _, err := fanout.Handle(ctx, events.EventBridgeEvent{ID: fmt.Sprintf("tick-%d", t.Unix()), DetailType: "Scheduled Event", Source: "aws.events", Time: t}); err != nil {
			return fmt.Errorf("fan-out at %s: %w", t, err)
		}
		if len(sender.msgs) > 0 {
			ev := events.SQSEvent{}
			for j, m := range sender.msgs {
				ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("%d-%d", t.Unix(), j), Body: m.Encode(), EventSource: "aws:sqs"})
			}
			if _, err := sqsbatch.Handler(poller)(ctx, ev); err != nil {
				return fmt.Errorf("poll at %s: %w", t, err)
			}
		}
		rows, err := poolOf(store).Query(ctx, `SELECT "orderId" FROM "ExternalMessage" WHERE "tenantId" = $1`, tenant)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var o string
			if err := rows.Scan(&o); err != nil {
				return err
			}
			if _, ok := seen[o]; !ok {
				seen[o] = t
			}
		}
		return rows.Err()
	}
	// Warm-up: until the rate budget binds (two calls further apart than
	// the interval: the burst is spent), at most steadyWarmUpMax.
	now := start
	bound := func() bool {
		c := rig.searches.list()
		return len(c) >= 2 && c[len(c)-1].At.Sub(c[len(c)-2].At) > interval
	}
	for ; now.Sub(start) < steadyWarmUpMax && !bound(); now = now.Add(interval) {
		if err := tick(now); err != nil {
			return nil, "", err
		}
	}
	warmUp, warmCalls := now.Sub(start), len(rig.searches.list())
	rng := newRand()
	var plan []time.Time
	for range sc.FreshEvents {
		plan = append(plan, now.Add(time.Duration(rng.Int64N(int64(spread))).Truncate(time.Second)))
	}
	slices.SortFunc(plan, func(a, b time.Time) int { return a.Compare(b) })
	end := now.Add(spread + tail)
	for ; !now.After(end); now = now.Add(interval) {
		for len(plan) > 0 && plan[0].Before(now) {
			clock.Set(plan[0])
			orderID, err := rig.sb.AddOrder(seller.ID, seller.MarketplaceIDs[0], true)
			if err != nil {
				return nil, "", err
			}
			acted[orderID] = plan[0]
			plan = plan[1:]
		}
		if err := tick(now); err != nil {
			return nil, "", err
		}
	}
	var r freshness
	var lat []time.Duration
	for o, at := range acted {
		r.sent++
		if s, ok := seen[o]; ok {
			r.seen++
			lat = append(lat, s.Sub(at))
		} else {
			lat = append(lat, end.Sub(at))
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		r.p50, r.p99, r.worst, r.least = pct(lat, 0.5), pct99(lat), lat[len(lat)-1], lat[0]
	}
	ch := freshChannel{name: "poll_steady", period: interval, limit: pollLimit(interval), reportOnly: true}
	calls := rig.searches.list()[warmCalls:]
	boundText := pollBound(calls, r, interval, ch.limit)
	st := rig.sb.Stats(seller.ID)
	e.logf("freshness poll (driven clock): %d of %d events; p50 %s p99 %s max %s; %d searchOrders calls", r.seen, r.sent, r.p50, r.p99, r.worst, st.Calls["searchOrders"])
	res := freshResults("freshness_poll_steady", ch, r, "", "")
	note := fmt.Sprintf(`**poll, steady state** (driven clock): the same poller and fan-out as
poll above, at MARKETPLACE_POLL_INTERVAL_SECONDS = %s, on one
sandbox.ManualClock shared by the sandbox, the store, the fan-out and the
poller; every %s of the clock one poll.Fanout.Handle call, then
sqsbatch.Handler(poll.Poller) on the jobs it sent. First a warm-up of %s (%d
searchOrders calls) until two calls came further apart than the interval
(the rate budget's burst spent, at most %s); then %d cancellation requests
at random moments over %s, and %s more; an event's time runs from its
request to the poll that stored it (the watcher looks right after each
poll, which takes no clock time). %d events, %d arrived: fastest %.0f s,
p50 %.0f s, p99 %.0f s, max %.0f s; the sandbox answered %d searchOrders
calls in all (%d with 429). %s`,
		interval, interval, warmUp, warmCalls, steadyWarmUpMax, r.sent, spread, tail, r.sent, r.seen, r.least.Seconds(), r.p50.Seconds(), r.p99.Seconds(), r.worst.Seconds(),
		st.Calls["searchOrders"], st.Throttled, boundText)
	return res, note, nil
}
