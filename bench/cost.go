package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keybuzz/keybuzz-amazon/dev/cfn"
	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

// dayCost is what one simulated day cost, for the tenants simulated.
type dayCost struct {
	invocations map[string]int           // per function
	duration    map[string]time.Duration // summed handler time per function
	records     map[string]int           // SQS records handled per function
	statements  int
	spapi       map[string]int // calls per operation, every seller
	throttled   int
	events      int // buyer events in the day
	stored      int // ExternalMessages at the end
	truth       int // the sandbox's buyer events since the look-back
	failed      int // records handed back as batch item failures
	// earlyRecords are the polltenant records of the first earlyTicks
	// ticks, while the rate budget's burst is not spent: the cadence the
	// schedule and the poller give, compared with the real clock's.
	earlyRecords, earlyTicks int
}

// benchCost simulates a day of sc.CostTenants tenants with the real code
// on one sandbox.ManualClock (the sandbox's, the store's, the fan-out's, the
// poller's, the intake's), twice: polling only, and push with fallback
// polling. On a driven clock a poll takes no time, so the polling-only
// baseline is brought to the cadence measured on the real clock
// (measureCadence: polls per connection per period as `make dev` runs the
// schedule, the queue and the poller), compared like with like with the
// driven day's first ticks. It reports the cost per 1,000 tenants per day,
// the ratios, and dollars per tenant per month at public prices.
func benchCost(ctx context.Context, e *env) (section, error) {
	sec := section{Title: "Cost per 1,000 tenants per day (simulated day, driven clock; polling only at the real clock's cadence)"}
	sc := e.sc
	repo, err := devstack.RepoRoot()
	if err != nil {
		return sec, err
	}
	mappings, err := templateSQS(filepath.Join(repo, "template.yaml"), "PollTenantFunction", "OrderNotifyFunction")
	if err != nil {
		return sec, err
	}
	pollBatch, notifyBatch, notifyWindow := mappings["PollTenantFunction"].batch, mappings["OrderNotifyFunction"].batch, mappings["OrderNotifyFunction"].window
	pollOnly, err := e.simulateDay(ctx, false, pollBatch, notifyBatch)
	if err != nil {
		return sec, fmt.Errorf("polling only: %w", err)
	}
	withPush, err := e.simulateDay(ctx, true, pollBatch, notifyBatch)
	if err != nil {
		return sec, fmt.Errorf("push with fallback polling: %w", err)
	}
	// The polling-only baseline at the cadence the real clock shows: the
	// driven day's polls take no clock time, so its cadence is the code's
	// intent; the real clock's is what the schedule, the queue and the
	// polls' own time give.
	cadInterval := sc.CadenceInterval
	if cadInterval <= 0 {
		cadInterval = e.costInterval()
	}
	cad, err := e.measureCadence(ctx, cadInterval, pollBatch)
	if err != nil {
		return sec, fmt.Errorf("real-clock cadence: %w", err)
	}
	drivenPoll := pollOnly
	// Like with like: the driven day's first ticks, while the budget's burst
	// is not spent either.
	drivenPerPeriod := float64(pollOnly.earlyRecords) / float64(max(sc.CostTenants*pollOnly.earlyTicks, 1))
	pollOnly = atCadence(pollOnly, drivenPerPeriod, cad.perPeriod)
	scale := 1000.0 / float64(sc.CostTenants) * (24 * time.Hour).Hours() / sc.CostDay.Hours()
	// invocations per 1,000 tenants per day: the fan-out is one per tick
	// whatever the tenants; the SQS consumers get full batches of the
	// template's BatchSize for polls (1,000 tenants' jobs arrive together)
	// and one record per invocation for notifications (they arrive one by
	// one, MaximumBatchingWindowInSeconds 0).
	perK := func(d dayCost) (inv map[string]float64, total float64) {
		inv = map[string]float64{}
		days := (24 * time.Hour).Hours() / sc.CostDay.Hours()
		inv["pollfanout"] = float64(d.invocations["pollfanout"]) * days
		inv["polltenant"] = math.Ceil(float64(d.records["polltenant"]) * scale / float64(pollBatch))
		if d.records["ordernotify"] > 0 {
			inv["ordernotify"] = float64(d.records["ordernotify"]) * scale
		}
		for _, v := range inv {
			total += v
		}
		return inv, total
	}
	invPoll, totPoll := perK(pollOnly)
	invPush, totPush := perK(withPush)
	calls := func(d dayCost) float64 {
		n := 0
		for _, v := range d.spapi {
			n += v
		}
		return float64(n) * scale
	}
	callsPoll, callsPush := calls(pollOnly), calls(withPush)
	rInv, rCalls := ratio(totPush, totPoll), ratio(callsPush, callsPoll)
	e.logf("cost: polling only %.0f invocations, %.0f SP-API calls per 1,000 tenants per day; push %.0f, %.0f (%.3f, %.3f)", totPoll, callsPoll, totPush, callsPush, rInv, rCalls)
	days := (24 * time.Hour).Hours() / sc.CostDay.Hours()
	// durScale scales a function's handler time: the fan-out's by days
	// only (its run for these tenants; a larger fleet claims more rows per
	// run), the consumers' by tenants and days.
	durScale := func(fn string) float64 {
		if fn == "pollfanout" {
			return days
		}
		return scale
	}
	sumDur := func(d dayCost) float64 {
		t := 0.0
		for fn, v := range d.duration {
			t += v.Seconds() * durScale(fn)
		}
		return t
	}
	describe := func(d dayCost, inv map[string]float64) string {
		var parts []string
		for _, fn := range slices.Sorted(maps.Keys(inv)) {
			parts = append(parts, fmt.Sprintf("%s %.0f invocations (%.1f s of handler time)", fn, inv[fn], d.duration[fn].Seconds()*durScale(fn)))
		}
		var ops []string
		for _, op := range slices.Sorted(maps.Keys(d.spapi)) {
			ops = append(ops, fmt.Sprintf("%s %.0f", op, float64(d.spapi[op])*scale))
		}
		// Per tenant-hour: what one tenant costs in an hour of the day.
		tenantHours := float64(sc.CostTenants) * sc.CostDay.Hours()
		spapiCalls := 0
		for _, v := range d.spapi {
			spapiCalls += v
		}
		return fmt.Sprintf("%s; %.0f database statements; SP-API calls %s, %.0f answered 429. Per tenant-hour: %.2f polltenant records, %.2f ordernotify records, %.2f SP-API calls. In the simulated day: %d buyer events made, %d ExternalMessages stored against the sandbox's ground truth of %d (its buyer events since the look-back), %d records handed back as failures",
			strings.Join(parts, ", "), float64(d.statements)*scale, strings.Join(ops, ", "), float64(d.throttled)*scale,
			float64(d.records["polltenant"])/tenantHours, float64(d.records["ordernotify"])/tenantHours, float64(spapiCalls)/tenantHours,
			d.events, d.stored, d.truth, d.failed)
	}
	pollText, pushText := describe(pollOnly, invPoll), describe(withPush, invPush)
	drivenInv, _ := perK(drivenPoll)
	drivenText := describe(drivenPoll, drivenInv)
	dollarsPush, dollarsPoll := dollarsPerTenantMonth(withPush, sc, pollBatch), dollarsPerTenantMonth(pollOnly, sc, pollBatch)
	explain := func(what string) func(Result) string {
		return func(m Result) string {
			return fmt.Sprintf(`Push with fallback costs %.3f of polling only in %s (median). In the last
run, per 1,000 tenants per day: polling only: %s. Push with fallback: %s.`, m.Ratios["polling_only"], what, pollText, pushText)
		}
	}
	sec.Results = append(sec.Results, Result{
		Name: "cost_invocations_push_vs_poll", Value: round3(totPush), Unit: "invocations/1k tenants/day",
		Baselines: map[string]float64{"polling_only": round3(totPoll)}, Ratios: map[string]float64{"polling_only": rInv},
		Goal: "≤ 0.2 × polling_only", checks: []check{atMost("ratio:polling_only", 0.2)}, explain: explain("Lambda invocations"),
		miss: "push with fallback polling needs more than a fifth of polling only's invocations",
	}, Result{
		Name: "cost_spapi_calls_push_vs_poll", Value: round3(callsPush), Unit: "calls/1k tenants/day",
		Baselines: map[string]float64{"polling_only": round3(callsPoll)}, Ratios: map[string]float64{"polling_only": rCalls},
		Goal: "≤ 0.2 × polling_only", checks: []check{atMost("ratio:polling_only", 0.2)}, explain: explain("SP-API calls"),
		miss: "push with fallback polling makes more than a fifth of polling only's SP-API calls",
	}, Result{
		Name: "cost_poll_cadence_real_clock", Value: round3(cad.perPeriod), Unit: "polls/connection/period",
		Baselines: map[string]float64{"driven_clock": round3(drivenPerPeriod)}, Ratios: map[string]float64{"driven_clock": ratio(cad.perPeriod, drivenPerPeriod)},
		Goal: "report only (the polling-only baseline uses it)",
	}, Result{
		Name: "cost_dollars_per_tenant_month_push", Value: round6(dollarsPush.total), Unit: "$/tenant/month",
		Baselines: map[string]float64{"polling_only": round6(dollarsPoll.total)}, Ratios: map[string]float64{"polling_only": ratio(dollarsPush.total, dollarsPoll.total)},
		Goal: "report only (Lambda and SQS at public prices; handler time measured here, without Amazon's latency)",
	}, Result{
		Name: "cost_statements_push_vs_poll", Value: round3(float64(withPush.statements) * scale), Unit: "statements/1k tenants/day",
		Baselines: map[string]float64{"polling_only": round3(float64(pollOnly.statements) * scale)},
		Ratios:    map[string]float64{"polling_only": ratio(float64(withPush.statements), float64(pollOnly.statements))},
		Goal:      "report only",
	}, Result{
		Name: "cost_handler_seconds_push_vs_poll", Value: round3(sumDur(withPush)), Unit: "s/1k tenants/day",
		Baselines: map[string]float64{"polling_only": round3(sumDur(pollOnly))},
		Ratios:    map[string]float64{"polling_only": ratio(sumDur(withPush), sumDur(pollOnly))},
		Goal:      "report only",
	})
	sec.Notes = append(sec.Notes, fmt.Sprintf(`%d tenants (one sandbox seller each), a simulated %s on one driven clock,
%d buyer cancellation requests per tenant spread over it (an order placed with
the request, at random moments); every %s of the clock (MARKETPLACE_POLL_INTERVAL_SECONDS)
the driver does what the schedule and the event source mappings would: one
poll.Fanout.Handle call (pollfanout), then sqsbatch.Handler(poll.Poller) on the
jobs it sent, in batches of %d (the template's BatchSize for polltenant,
read from template.yaml), and, with push, sqsbatch.Handler(push.Intake) on what the
sandbox delivered to the notifications queue on the emulator
(dev/localpoll.Consumer, batches of at most %d, the template's BatchSize for
ordernotify). Handler time is the handlers' own time in this process (no
Lambda overhead); statements are counted by the pgx tracer on the store's
pool; SP-API calls by the sandbox (sandbox.Server.Stats, every seller, 429s
included; with push, %d createSubscription calls for %d connections). Per 1,000 tenants per
day = the simulated figures × %.4g, except pollfanout (one invocation per
tick whatever the tenants, and its handler time for these tenants: × %.4g
days) and polltenant's invocations (its records in batches of %d).
Ordernotify counts one invocation per record: the template sets its
MaximumBatchingWindowInSeconds to %s, so Lambda does not wait to fill a
batch (in the simulated day the local consumer's batches held %.2f records
on average, what arrived between two of its receives).

- **Polling only** (no subscriber), at the cadence measured on the real clock (%.3f polls per connection per period, against %.3f in the driven day's first ticks, the rate budget's burst unspent in both: the driven day's polltenant records, invocations, handler time and statements scaled by %.3f, its searchOrders calls capped at one per poll): %s.
- Polling only as the driven day ran it: %s.
- **Push with fallback polling** (subscribed by push.Subscriber.OnConnected, polled every POLL_FALLBACK_INTERVAL_SECONDS = %s): %s.`,
		sc.CostTenants, sc.CostDay, sc.CostEvents, e.costInterval(), pollBatch, notifyBatch, withPush.spapi["createSubscription"], sc.CostTenants, scale, (24*time.Hour).Hours()/sc.CostDay.Hours(), pollBatch,
		notifyWindow, float64(withPush.records["ordernotify"])/float64(max(withPush.invocations["ordernotify"], 1)),
		cad.perPeriod, drivenPerPeriod, cad.perPeriod/max(drivenPerPeriod, 1e-9), pollText, drivenText, e.costFallback(), pushText))
	sec.Notes = append(sec.Notes, "**The real-clock cadence.** "+cad.text())
	sec.Notes = append(sec.Notes, millionText(map[string]dayCost{"push with fallback": withPush, "polling only": pollOnly}, scale, pollBatch))
	// Replies: per reply, and per tenant per month at an assumed count.
	rc, err := e.measureReplyCost(ctx)
	if err != nil {
		return sec, fmt.Errorf("replies: %w", err)
	}
	replyRows, replyNote := replyCostResults(rc)
	sec.Results = append(sec.Results, replyRows...)
	e.logf("cost: a reply %.3f SendEmail calls, %.0f statements, $%.7f", rc.sesSends, rc.statements["sendreply"]+rc.statements["replysender"]+rc.statements["sesevents"], rc.dollars.total)
	sec.Notes = append(sec.Notes, fmt.Sprintf(`**Dollars per tenant per month** (30 days), from the counts above at %s:
push with fallback $%.6f (Lambda requests $%.6f, duration $%.6f, SQS $%.6f),
polling only $%.6f (requests $%.6f, duration $%.6f, SQS $%.6f). Duration is
the handlers' time measured here times the template's memory (polltenant
512 MB, ordernotify and pollfanout 256 MB): the sandbox answers on
loopback, so Amazon's own latency, which Lambda bills while a handler waits,
is not in it (docs/scale.md adds it as an assumption). SQS requests: per
poll record a tenth of a SendMessageBatch and a receive and a delete per
batch of %d; per notification a receive and a delete. RDS, Vault, logs and
tracing are not in it.`, priceSource, dollarsPush.total, dollarsPush.requests, dollarsPush.duration, dollarsPush.sqs,
		dollarsPoll.total, dollarsPoll.requests, dollarsPoll.duration, dollarsPoll.sqs, pollBatch))
	sec.Notes = append(sec.Notes, replyNote)
	return sec, nil
}

// millionText carries this run's figures to a million tenants, the inputs
// of docs/scale.md's model: per second, polltenant records and
// invocations, ordernotify records, database statements, SP-API calls, and
// handler-seconds per second (the concurrency the handlers' own time needs,
// before Amazon's latency, which this machine does not have).
func millionText(days map[string]dayCost, perK float64, pollBatch int) string {
	const perSecond = 1000.0 / 86400 // 1,000 × (1,000 tenants per day) per second
	var lines []string
	for _, name := range slices.Sorted(maps.Keys(days)) {
		d := days[name]
		k := perK * perSecond
		calls := 0
		for _, v := range d.spapi {
			calls += v
		}
		busy := (d.duration["polltenant"] + d.duration["ordernotify"]).Seconds() * k
		lines = append(lines, fmt.Sprintf("- %s: polltenant %.0f records/s (%.0f invocations/s in batches of %d), ordernotify %.0f records/s, %.0f database statements/s, %.0f SP-API calls/s, %.1f handler-seconds per second",
			name, float64(d.records["polltenant"])*k, float64(d.records["polltenant"])*k/float64(pollBatch), pollBatch, float64(d.records["ordernotify"])*k,
			float64(d.statements)*k, float64(calls)*k, busy))
	}
	return "**At a million tenants** (this run's figures × 1,000, per second; docs/scale.md turns them into Lambda concurrency, SQS requests, database connections and quotas):\n\n" + strings.Join(lines, "\n")
}

// atCadence is the polling-only day at another cadence: its polltenant
// records, handler time and statements scaled by measured/driven (polls per
// connection per period), its searchOrders calls capped at one per poll
// (the rate budget, not the cadence, caps them when polls are frequent).
func atCadence(d dayCost, driven, measured float64) dayCost {
	if driven <= 0 {
		return d
	}
	f := measured / driven
	out := d
	out.records = maps.Clone(d.records)
	out.duration = maps.Clone(d.duration)
	out.invocations = maps.Clone(d.invocations)
	out.spapi = maps.Clone(d.spapi)
	out.records["polltenant"] = int(math.Round(float64(d.records["polltenant"]) * f))
	out.invocations["polltenant"] = int(math.Round(float64(d.invocations["polltenant"]) * f))
	out.duration["polltenant"] = time.Duration(float64(d.duration["polltenant"]) * f)
	out.statements = int(math.Round(float64(d.statements) * f))
	out.spapi["searchOrders"] = min(d.spapi["searchOrders"], out.records["polltenant"])
	return out
}

// Public prices the dollars use: AWS Lambda (Arm, first pricing tier) and
// Amazon SQS (standard queue), from aws.amazon.com/lambda/pricing and
// aws.amazon.com/sqs/pricing as read on 2026-12-07 (US East (N. Virginia)
// figures; free tiers ignored).
const (
	priceSource          = "AWS's public prices as read on 2026-12-07 (aws.amazon.com/lambda/pricing: Arm $0.20 per million requests and $0.0000133334 per GB-second; aws.amazon.com/sqs/pricing: standard queue $0.40 per million requests; US East (N. Virginia) figures, free tiers ignored)"
	lambdaPerRequest     = 0.20 / 1e6
	lambdaArmPerGBSecond = 0.0000133334
	sqsPerRequest        = 0.40 / 1e6
)

// memoryGB is each function's MemorySize in template.yaml.
var memoryGB = map[string]float64{"polltenant": 0.5, "ordernotify": 0.25, "pollfanout": 0.25}

type dollars struct{ requests, duration, sqs, total float64 }

// dollarsPerTenantMonth prices one tenant's month (30 days) of a simulated
// day: invocations (pollfanout's shared by the fleet, so left out: one per
// tick whatever the tenants), handler time × memory, SQS requests.
func dollarsPerTenantMonth(d dayCost, sc scale, pollBatch int) dollars {
	perTenantMonth := 30 * (24 * time.Hour).Hours() / sc.CostDay.Hours() / float64(max(sc.CostTenants, 1))
	polls, notes := float64(d.records["polltenant"]), float64(d.records["ordernotify"])
	var out dollars
	out.requests = (math.Ceil(polls/float64(pollBatch)) + notes) * lambdaPerRequest * perTenantMonth
	for _, fn := range []string{"polltenant", "ordernotify"} {
		out.duration += d.duration[fn].Seconds() * memoryGB[fn] * lambdaArmPerGBSecond * perTenantMonth
	}
	out.sqs = (polls*0.1 + 2*polls/float64(pollBatch) + 2*notes) * sqsPerRequest * perTenantMonth
	out.total = out.requests + out.duration + out.sqs
	return out
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

func (e *env) costInterval() time.Duration {
	if cfg, err := loadConfig(); err == nil {
		return cfg.PollInterval
	}
	return time.Duration(schedulePeriodMS) * time.Millisecond
}

func (e *env) costFallback() time.Duration {
	cfg, _ := loadConfig()
	return cfg.PollFallbackInterval
}

// sqsMapping is what a function's SQS event source mapping sets.
type sqsMapping struct {
	batch  int           // BatchSize
	window time.Duration // MaximumBatchingWindowInSeconds (0 when unset)
}

// templateSQS reads the SQS event source mapping of each function (by
// logical id) from the template.
func templateSQS(path string, fnIDs ...string) (map[string]sqsMapping, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tp, err := cfn.Parse(src)
	if err != nil {
		return nil, err
	}
	read := func(fnID string) (sqsMapping, error) {
		fn, err := tp.Function(fnID)
		if err != nil {
			return sqsMapping{}, err
		}
		for _, ev := range fn.Events {
			if ev.Type != "SQS" {
				continue
			}
			p, err := cfn.Decode[cfn.SQSEvent](ev.Properties)
			if err != nil {
				return sqsMapping{}, err
			}
			n, err := strconv.Atoi(fmt.Sprint(p.BatchSize))
			if err != nil {
				return sqsMapping{}, fmt.Errorf("%s BatchSize %v: %w", fnID, p.BatchSize, err)
			}
			m := sqsMapping{batch: n}
			if p.MaximumBatchingWindowInSeconds != nil {
				w, err := strconv.Atoi(fmt.Sprint(p.MaximumBatchingWindowInSeconds))
				if err != nil {
					return sqsMapping{}, fmt.Errorf("%s MaximumBatchingWindowInSeconds %v: %w", fnID, p.MaximumBatchingWindowInSeconds, err)
				}
				m.window = time.Duration(w) * time.Second
			}
			return m, nil
		}
		return sqsMapping{}, fmt.Errorf("%s has no SQS event", fnID)
	}
	out := map[string]sqsMapping{}
	for _, id := range fnIDs {
		m, err := read(id)
		if err != nil {
			return nil, err
		}
		out[id] = m
	}
	return out, nil
}

// templateMapping reads one function's SQS event source mapping from the
// repository's template.yaml.
func templateMapping(fnID string) (sqsMapping, error) {
	repo, err := devstack.RepoRoot()
	if err != nil {
		return sqsMapping{}, err
	}
	m, err := templateSQS(filepath.Join(repo, "template.yaml"), fnID)
	if err != nil {
		return sqsMapping{}, err
	}
	return m[fnID], nil
}

// captureSender stands for SQS between the fan-out and the poller in the
// simulated day: it keeps what the fan-out sends.
type captureSender struct{ msgs []pollqueue.Message }

func (c *captureSender) Send(_ context.Context, msgs <-chan pollqueue.Message) pollqueue.Result {
	n := 0
	for m := range msgs {
		c.msgs = append(c.msgs, m)
		n++
	}
	return pollqueue.Result{Sent: n}
}

// simulateDay runs one simulated day (sc.CostDay) of sc.CostTenants
// tenants, with push or polling only.
func (e *env) simulateDay(ctx context.Context, withPush bool, pollBatch, notifyBatch int) (dayCost, error) {
	sc := e.sc
	d := dayCost{invocations: map[string]int{}, duration: map[string]time.Duration{}, records: map[string]int{}, spapi: map[string]int{}}
	start := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	clock := sandbox.NewManualClock(start)
	rig, err := e.newSandboxRig(ctx, sc.CostTenants, clock, withPush)
	if err != nil {
		return d, err
	}
	trace := newSQLTrace()
	label := "costpoll"
	if withPush {
		label = "costpush"
	}
	store, _, err := e.freshStore(ctx, label, 2, clock.Now, trace)
	if err != nil {
		return d, err
	}
	cfg := rig.cfg
	secrets := credcache.New(rig.secrets, credcache.WithClock(clock.Now))
	lwaClient, api := lwa.New(rig.url+"/auth/o2/token"), spapi.New()
	gw := sellerapi.New(secrets, lwaClient, api, store, sellerapi.WithEndpoint(rig.url), sellerapi.WithLogger(e.quiet))
	amazon := poll.NewAmazonSource(gw, api, poll.WithClock(clock.Now))
	const lookback = 24 * time.Hour
	pollOpts := []poll.PollerOption{poll.WithConfig(poll.Config{Interval: cfg.PollInterval, FallbackInterval: cfg.PollFallbackInterval, Lookback: lookback}),
		poll.WithClock(clock.Now), poll.WithLogger(e.quiet)}
	sender := &captureSender{}
	fanout := poll.NewFanout(store, sender, poll.WithClock(clock.Now), poll.WithLogger(e.quiet))

	type tenant struct{ id, conn, seller, mp string }
	var tenants []tenant
	for i := range sc.CostTenants {
		t, c, s, err := rig.connect(ctx, e, store, i, label, start)
		if err != nil {
			return d, err
		}
		tenants = append(tenants, tenant{t, c, s.ID, s.MarketplaceIDs[0]})
	}
	var consumer *localpoll.Consumer
	if withPush {
		qURL, qARN, err := e.freshQueueARN(ctx, "costnotify")
		if err != nil {
			return d, err
		}
		dest := push.NewDestinations(store, secrets, api, gw, qARN)
		sub := push.NewSubscriber(store, dest, gw, push.WithLogger(e.quiet))
		pollOpts = append(pollOpts, poll.WithSubscriber(sub))
		for _, t := range tenants {
			sub.OnConnected(ctx, marketplace.Connection{ID: t.conn, TenantID: t.id})
		}
		intake := push.NewIntake(store, gw, push.WithClock(clock.Now), push.WithLogger(e.quiet))
		consumer = &localpoll.Consumer{SQS: e.sqs, QueueURL: qURL, BatchSize: int32(notifyBatch), Log: e.quiet, Name: "ordernotify",
			Handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
				t0 := time.Now()
				resp, err := sqsbatch.Handler(intake)(ctx, ev)
				d.duration["ordernotify"] += time.Since(t0)
				d.invocations["ordernotify"]++
				d.records["ordernotify"] += len(ev.Records)
				d.failed += len(resp.BatchItemFailures)
				return resp, err
			}}
	}
	poller := poll.NewPoller(store, amazon, pollOpts...)
	trace.reset()

	// The buyer events: sc.CostEvents per tenant at random moments.
	type event struct {
		at     time.Time
		tenant int
	}
	rng := newRand()
	var evs []event
	for i := range tenants {
		for range sc.CostEvents {
			evs = append(evs, event{start.Add(time.Duration(rng.Int64N(int64(sc.CostDay)))), i})
		}
	}
	slices.SortFunc(evs, func(a, b event) int { return a.at.Compare(b.at) })

	interval := cfg.PollInterval
	var retry []pollqueue.Message
	end := start.Add(sc.CostDay)
	for now := start; now.Before(end); now = now.Add(interval) {
		if ctx.Err() != nil {
			return d, ctx.Err()
		}
		clock.Set(now)
		published := 0
		for len(evs) > 0 && !evs[0].at.After(now) {
			t := tenants[evs[0].tenant]
			if _, err := rig.sb.AddOrder(t.seller, t.mp, true); err != nil {
				return d, err
			}
			evs = evs[1:]
			d.events++
			published++
		}
		// pollfanout, as the schedule invokes it.
		sender.msgs = sender.msgs[:0]
		t0 := time.Now()
		if _, err := fanout.Handle(ctx, events.EventBridgeEvent{ID: fmt.Sprintf("tick-%d", now.Unix()), DetailType: "Scheduled Event", Source: "aws.events", Time: now}); err != nil {
			return d, fmt.Errorf("fan-out at %s: %w", now, err)
		}
		d.duration["pollfanout"] += time.Since(t0)
		d.invocations["pollfanout"]++
		if d.invocations["pollfanout"] <= sc.CadencePeriods {
			d.earlyTicks++
			d.earlyRecords += len(sender.msgs) + len(retry)
		}
		jobs := append(retry, sender.msgs...)
		retry = nil
		// polltenant, in batches.
		for i := 0; i < len(jobs); i += pollBatch {
			batch := jobs[i:min(i+pollBatch, len(jobs))]
			ev := events.SQSEvent{}
			for j, m := range batch {
				ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("%d-%d", now.Unix(), i+j), Body: m.Encode(), EventSource: "aws:sqs"})
			}
			t0 := time.Now()
			resp, err := sqsbatch.Handler(poller)(ctx, ev)
			d.duration["polltenant"] += time.Since(t0)
			d.invocations["polltenant"]++
			d.records["polltenant"] += len(batch)
			if err != nil {
				return d, fmt.Errorf("polltenant at %s: %w", now, err)
			}
			failed := map[string]bool{}
			for _, f := range resp.BatchItemFailures {
				failed[f.ItemIdentifier] = true
			}
			for j, r := range ev.Records {
				if failed[r.MessageId] {
					retry = append(retry, batch[j]) // SQS hands it back later
					d.failed++
				}
			}
		}
		// ordernotify, on what the sandbox delivered.
		if consumer != nil {
			if err := waitDelivered(ctx, rig.sb); err != nil {
				return d, err
			}
			if _, _, err := consumer.Drain(ctx, 0); err != nil {
				return d, fmt.Errorf("drain notifications: %w", err)
			}
		}
	}
	for _, t := range tenants {
		st := rig.sb.Stats(t.seller)
		for op, n := range st.Calls {
			d.spapi[op] += n
		}
		d.throttled += st.Throttled
		for _, ev := range rig.sb.BuyerEvents(t.seller) {
			if !ev.At.Before(start.Add(-lookback)) {
				d.truth++
			}
		}
	}
	d.statements = trace.calls()
	if err := poolOf(store).QueryRow(ctx, `SELECT count(*) FROM "ExternalMessage"`).Scan(&d.stored); err != nil {
		return d, err
	}
	return d, nil
}

// waitDelivered waits (bounded, real time) until the sandbox has sent or
// failed every notification it published.
func waitDelivered(ctx context.Context, sb *sandbox.Server) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := sb.NotificationStats()
		if st.Sent+st.Failed+st.Dropped >= st.Published {
			if st.Failed > 0 {
				return fmt.Errorf("the sandbox failed %d deliveries", st.Failed)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the sandbox did not deliver its notifications within 10 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
