package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
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
	act           func(ctx context.Context) (orderID string, err error)
	// evidence, when set, reports what the channel's state shows after
	// the run.
	evidence func(ctx context.Context) string
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
// dev/localpoll at the real MARKETPLACE_POLL_INTERVAL_SECONDS) and push
// (ORDER_CHANGE notifications delivered by the sandbox to a queue on the
// emulator, consumed by ordernotify's handler, with fallback polling at
// POLL_FALLBACK_INTERVAL_SECONDS), each with a seller and a database of its
// own.
func benchFreshness(ctx context.Context, e *env) (section, error) {
	sec := section{Title: "Freshness (buyer action in the sandbox to committed ticket)"}
	sc := e.sc
	rig, err := e.newSandboxRig(ctx, 3, nil, true)
	if err != nil {
		return sec, err
	}
	pollInterval, fallback := rig.cfg.PollInterval, rig.cfg.PollFallbackInterval
	if sc.FreshPollInterval > 0 {
		pollInterval = sc.FreshPollInterval
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	admin := &sandboxAdmin{url: rig.url, client: &http.Client{Timeout: 10 * time.Second}}
	secrets := credcache.New(rig.secrets, credcache.DefaultTTL, nil)
	lwaClient, api := lwa.New(rig.url+"/auth/o2/token", nil), spapi.New(nil)
	start := time.Now().UTC()

	// runPolling runs the schedule and the poll queue's consumer of one
	// channel's database, as cmd/local does.
	runPolling := func(label string, store *postgres.Store, poller *poll.Poller) error {
		queue, err := e.freshQueue(ctx, label)
		if err != nil {
			return err
		}
		fanout := poll.NewFanout(store, pollqueue.NewSender(e.sqs, queue, 0), poll.FanoutConfig{}, nil, e.quiet, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = localpoll.Run(runCtx, localpoll.Config{Fanout: fanout.Handle, Tenant: poller.HandleSQS, SQS: e.sqs,
				QueueURL: queue, Interval: pollInterval, Log: e.quiet})
		}()
		return nil
	}
	// cancelAct is the buyer's action: a cancellation request on an order
	// that existed before.
	cancelAct := func(sellerID, marketplaceID string) func(ctx context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			orderID, err := admin.addOrder(ctx, sellerID, marketplaceID)
			if err != nil {
				return "", err
			}
			return orderID, admin.cancel(ctx, sellerID, orderID)
		}
	}
	var channels []freshChannel

	// Poll: polling only (no subscriber), at the real interval.
	if slices.Contains(sc.FreshChannels, "poll") {
		trace := newSQLTrace()
		store, _, err := e.freshStore(ctx, "freshpoll", 4, nil, trace)
		if err != nil {
			return sec, err
		}
		tenant, connID, seller, err := rig.connect(ctx, e, store, 0, "fresh-poll", start)
		if err != nil {
			return sec, err
		}
		amazon := poll.NewAmazonSource(secrets, lwaClient, api, store, poll.AmazonConfig{Endpoint: rig.url}, nil, e.quiet)
		poller := poll.NewPoller(store, amazon, poll.Config{Interval: pollInterval, Lookback: rig.cfg.PollLookback}, nil, e.quiet, nil)
		if err := runPolling("freshpoll", store, poller); err != nil {
			return sec, err
		}
		channels = append(channels, freshChannel{
			name: "poll", tenant: tenant, pool: store.Pool(), trace: trace, period: pollInterval, limit: pollInterval + 10*time.Second,
			how: fmt.Sprintf("polling only: dev/localpoll calls poll.Fanout.Handle every %s (MARKETPLACE_POLL_INTERVAL_SECONDS here; a timer for the EventBridge schedule) and feeds poll.Poller.HandleSQS from the poll queue on the emulator, as cmd/local wires them", pollInterval),
			act: cancelAct(seller.ID, seller.MarketplaceIDs[0]),
			evidence: func(ctx context.Context) string {
				var cursor *time.Time
				err := store.Pool().QueryRow(ctx, `SELECT "cursorAt" FROM "MarketplaceSyncState" WHERE "connectionId" = $1`, connID).Scan(&cursor)
				st := rig.sb.Stats(seller.ID)
				if err != nil {
					return fmt.Sprintf("the sandbox answered %d searchOrders calls (%d with 429); the cursor could not be read: %v", st.Calls["searchOrders"], st.Throttled, err)
				}
				if cursor == nil {
					return fmt.Sprintf("the sandbox answered %d searchOrders calls (%d with 429); no cursor stored", st.Calls["searchOrders"], st.Throttled)
				}
				return fmt.Sprintf("the sandbox answered %d searchOrders calls (%d with 429); at the end of the run the connection's cursor (MarketplaceSyncState, the lastUpdatedBefore of Amazon's last answer) lay %.0f s behind the clock", st.Calls["searchOrders"], st.Throttled, time.Since(*cursor).Seconds())
			},
		})
	}

	// Push: subscribed as the Connect callback subscribes, notifications
	// consumed by ordernotify's handler; fallback polling as polltenant
	// runs it with push on.
	if slices.Contains(sc.FreshChannels, "push") {
		trace := newSQLTrace()
		store, _, err := e.freshStore(ctx, "freshpush", 4, nil, trace)
		if err != nil {
			return sec, err
		}
		tenant, connID, seller, err := rig.connect(ctx, e, store, 1, "fresh-push", start)
		if err != nil {
			return sec, err
		}
		notifyURL, notifyARN, err := e.freshQueueARN(ctx, "freshnotify")
		if err != nil {
			return sec, err
		}
		amazon := poll.NewAmazonSource(secrets, lwaClient, api, store, poll.AmazonConfig{Endpoint: rig.url}, nil, e.quiet)
		dest := push.NewDestinations(store, secrets, api, lwaClient, notifyARN, rig.url)
		subscriber := push.NewSubscriber(store, dest, amazon, secrets, api, rig.url, 0, e.quiet)
		subscriber.OnConnected(ctx, marketplace.Connection{ID: connID, TenantID: tenant})
		intake := push.NewIntake(store, amazon, nil, e.quiet, nil)
		consumer := localpoll.Consumer{SQS: e.sqs, QueueURL: notifyURL, Handler: intake.HandleSQS, Log: e.quiet, Name: "ordernotify"}
		wg.Add(1)
		go func() { defer wg.Done(); consumer.Run(runCtx) }()
		poller := poll.NewPoller(store, amazon, poll.Config{Interval: pollInterval, FallbackInterval: fallback, Lookback: rig.cfg.PollLookback},
			nil, e.quiet, nil).WithSubscriber(subscriber)
		if err := runPolling("freshpushpoll", store, poller); err != nil {
			return sec, err
		}
		channels = append(channels, freshChannel{
			name: "push", tenant: tenant, pool: store.Pool(), trace: trace, limit: 10 * time.Second,
			how: fmt.Sprintf("the sandbox delivers ORDER_CHANGE notifications to a queue on the emulator (SendMessage at once), a dev/localpoll.Consumer feeds push.Intake.HandleSQS (ordernotify's handler: getOrder, then the ingestion statement); the connection is subscribed by push.Subscriber.OnConnected as the Connect callback runs it, and polled as a fallback every %s (POLL_FALLBACK_INTERVAL_SECONDS)", fallback),
			act: cancelAct(seller.ID, seller.MarketplaceIDs[0]),
			evidence: func(ctx context.Context) string {
				st := rig.sb.NotificationStats()
				sp := rig.sb.Stats(seller.ID)
				return fmt.Sprintf("the sandbox published %d notifications and sent %d (%d failed); the seller's SP-API calls: %v (%d with 429)", st.Published, st.Sent, st.Failed, sp.Calls, sp.Throttled)
			},
		})
	}

	// Let the first fan-outs and polls pass (a connection's first poll
	// covers the look-back), then act.
	time.Sleep(min(2*time.Second, pollInterval))
	results, err := measureFreshness(ctx, channels, sc.FreshEvents, sc.FreshSpread, sc.FreshSpread+pollInterval+sc.FreshGrace)
	if err != nil {
		return sec, err
	}
	stop()
	wg.Wait()

	var lines []string
	for i, ch := range channels {
		r := results[i]
		e.logf("freshness %s: %d of %d events reached a ticket; p50 %s p99 %s max %s", ch.name, r.seen, r.sent, r.p50, r.p99, r.worst)
		lim := ch.limit.Seconds()
		rr, chc := r, ch
		ev := ""
		if ch.evidence != nil {
			ev = ch.evidence(ctx)
		}
		sec.Results = append(sec.Results, Result{
			Name: "freshness_" + ch.name + "_p99", Value: round3(r.p99.Seconds()), Unit: "s",
			Baselines: map[string]float64{"goal_limit": lim, "events": float64(r.sent), "arrived": float64(r.seen)},
			Ratios:    map[string]float64{"goal_limit": ratio(r.p99.Seconds(), lim)},
			Goal:      fmt.Sprintf("≤ %s s (%s), every event arrives", num(lim), limitText(ch)),
			checks:    []check{atMost("value", lim), inEvery(atLeast("baseline:arrived", float64(r.sent)))},
			explain: func(m Result) string {
				return fmt.Sprintf(`p99 %s s (median over runs). In the last run %d of %d events arrived: fastest %.1f s, p50 %.1f s, max %.1f s; %s.%s`,
					num(m.Value), rr.seen, rr.sent, rr.least.Seconds(), rr.p50.Seconds(), rr.worst.Seconds(), ev, boundText(chc, rr))
			},
		}, Result{
			Name: "freshness_" + ch.name + "_p50", Value: round3(r.p50.Seconds()), Unit: "s",
			Baselines: map[string]float64{"goal_limit": lim}, Ratios: map[string]float64{"goal_limit": ratio(r.p50.Seconds(), lim)},
			Goal: "report only",
		}, Result{
			Name: "freshness_" + ch.name + "_max", Value: round3(r.worst.Seconds()), Unit: "s",
			Baselines: map[string]float64{"goal_limit": lim}, Ratios: map[string]float64{"goal_limit": ratio(r.worst.Seconds(), lim)},
			Goal: "report only",
		})
		lines = append(lines, fmt.Sprintf(`- **%s**: %s. %d events, %d arrived: fastest %.2f s, p50 %.2f s, p99 %.2f s, max %.2f s; %s.

  Statements of its code over the run (pgx tracer on its store's pool):

%s`, ch.name, ch.how, r.sent, r.seen, r.least.Seconds(), r.p50.Seconds(), r.p99.Seconds(), r.worst.Seconds(), ev, indent(ch.trace.table(), "  ")))
	}
	sec.Notes = append(sec.Notes, fmt.Sprintf(`Each channel has a seller of its own in one in-process sandbox on the real
clock and a fresh database of its own, with the real handlers and
consumers; %d buyer actions per channel at random moments over %s, all
channels interleaved, each through the sandbox's admin API over HTTP (an
order placed, then the buyer's cancellation request on it); the time
counted is from the moment the cancellation request's HTTP answer came back
to the moment a watcher saw the ExternalMessage of its order in the
channel's database (it queries every %s, so a figure is late by at most
that; a row is visible only once its transaction committed). The run
waits at most %s after the first action.

%s`, sc.FreshEvents, sc.FreshSpread, freshWatchEvery, sc.FreshSpread+pollInterval+sc.FreshGrace, strings.Join(lines, "\n")))
	return sec, nil
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

func limitText(ch freshChannel) string {
	if ch.period > 0 {
		return "one poll period of " + ch.period.String() + " + 10 s"
	}
	return "10 s"
}

// boundText says what bounds a channel from what it measured.
func boundText(ch freshChannel, r freshness) string {
	switch {
	case r.seen < r.sent:
		return fmt.Sprintf(" %d event(s) never arrived within the run's wait; they count with the time from their action to the end of the wait, so the percentiles are lower bounds.", r.sent-r.seen)
	case ch.period > 0 && r.least > ch.period:
		return fmt.Sprintf(" Even its fastest event took longer than the poll period (%s), so the period alone does not bound it: see the searchOrders calls and the cursor's lag behind the clock above (Amazon's searchOrders answers only up to its lastUpdatedBefore).", ch.period)
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
			order, err := channels[a.ch].act(ctx)
			at := time.Now()
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

// sandboxAdmin calls the sandbox's admin API over HTTP, as a person
// driving it would.
type sandboxAdmin struct {
	url    string
	client *http.Client
}

func (a *sandboxAdmin) post(ctx context.Context, path string, in, out any) error {
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+path, bytes.NewReader(b))
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
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, strings.TrimSpace(buf.String()))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func (a *sandboxAdmin) addOrder(ctx context.Context, sellerID, marketplaceID string) (string, error) {
	var out struct {
		OrderID string `json:"orderId"`
	}
	err := a.post(ctx, "/_sandbox/sellers/"+sellerID+"/orders", map[string]any{"marketplaceId": marketplaceID}, &out)
	return out.OrderID, err
}

func (a *sandboxAdmin) cancel(ctx context.Context, sellerID, orderID string) error {
	return a.post(ctx, "/_sandbox/sellers/"+sellerID+"/cancellation-requests", map[string]any{"orderId": orderID, "reason": "ORDERED_BY_MISTAKE"}, nil)
}
