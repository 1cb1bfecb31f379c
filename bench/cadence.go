package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

// cadence is the polling-only cadence measured on the real clock: the
// schedule (dev/localpoll's timer), the fan-out, the SQS emulator and the
// poller as `make dev` runs them, for some periods.
type cadence struct {
	interval  time.Duration // the schedule period of the measurement
	periods   int           // fan-outs in the window
	tenants   int
	records   int            // polltenant records handled
	perConn   map[string]int // records per connection
	searches  int            // searchOrders calls the sandbox answered
	pollTime  time.Duration  // polltenant handler time, summed
	batches   int
	wall      time.Duration
	perPeriod float64 // records per connection per period
}

// measureCadence polls sc.CostTenants connections, polling only, on the
// real clock for sc.CadencePeriods periods of interval, and counts the
// polls each connection got.
func (e *env) measureCadence(ctx context.Context, interval time.Duration, pollBatch int) (cadence, error) {
	sc := e.sc
	c := cadence{interval: interval, periods: sc.CadencePeriods, tenants: sc.CostTenants, perConn: map[string]int{}}
	rig, err := e.newSandboxRig(ctx, sc.CostTenants, nil, false)
	if err != nil {
		return c, err
	}
	store, _, err := e.freshStore(ctx, "costcadence", 2, nil, nil)
	if err != nil {
		return c, err
	}
	start := time.Now().UTC()
	for i := range sc.CostTenants {
		_, conn, _, err := rig.connect(ctx, e, store, i, "costcadence", start)
		if err != nil {
			return c, err
		}
		c.perConn[conn] = 0
	}
	cfg := rig.cfg
	secrets := credcache.New(rig.secrets)
	lwaClient, api := lwa.New(rig.url+"/auth/o2/token"), spapi.New()
	gw := sellerapi.New(secrets, lwaClient, api, store, sellerapi.WithEndpoint(rig.url), sellerapi.WithLogger(e.quiet))
	amazon := poll.NewAmazonSource(gw, api)
	poller := poll.NewPoller(store, amazon, poll.WithConfig(poll.Config{Interval: interval, FallbackInterval: cfg.PollFallbackInterval, Lookback: 24 * time.Hour}),
		poll.WithLogger(e.quiet))
	queue, err := e.freshQueue(ctx, "costcadence")
	if err != nil {
		return c, err
	}
	fanout := poll.NewFanout(store, pollsender.NewSender(e.sqs, queue), poll.WithLogger(e.quiet))
	handler := sqsbatch.Handler(poller)
	var mu sync.Mutex
	counted := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		t0 := time.Now()
		resp, err := handler(ctx, ev)
		d := time.Since(t0)
		mu.Lock()
		defer mu.Unlock()
		c.pollTime += d
		c.batches++
		for _, r := range ev.Records {
			c.records++
			if m, derr := pollqueue.Decode(r.Body); derr == nil {
				c.perConn[m.ConnectionID]++
			}
		}
		return resp, err
	}
	// The window holds exactly c.periods fan-outs (the first at once),
	// then half a period for the last polls to finish.
	window := time.Duration(c.periods)*interval - interval/2
	// Cancelled, not timed out: a deadline on the context would reach the
	// handlers as their invocation's, and the poller stops Amazon calls
	// near one.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	timer := time.AfterFunc(window, stop)
	defer timer.Stop()
	t0 := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = localpoll.Run(runCtx, localpoll.Config{Fanout: fanout.Handle, Tenant: counted, SQS: e.sqs, QueueURL: queue,
			Interval: interval, Log: e.quiet, BatchSize: int32(pollBatch)})
	}()
	<-done
	c.wall = time.Since(t0)
	if ctx.Err() != nil {
		return c, ctx.Err()
	}
	for _, s := range rig.sb.Sellers()[:sc.CostTenants] {
		c.searches += rig.sb.Stats(s.ID).Calls["searchOrders"]
	}
	c.perPeriod = float64(c.records) / float64(max(c.tenants*c.periods, 1))
	e.logf("cost: real-clock cadence: %d polls of %d connections in %d periods of %s (%.2f per connection per period), %d searchOrders calls",
		c.records, c.tenants, c.periods, interval, c.perPeriod, c.searches)
	return c, nil
}

// text describes the measurement for the report.
func (c cadence) text() string {
	counts := make([]int, 0, len(c.perConn))
	for _, n := range c.perConn {
		counts = append(counts, n)
	}
	lo, hi := 0, 0
	if len(counts) > 0 {
		lo, hi = counts[0], counts[0]
		for _, n := range counts {
			lo, hi = min(lo, n), max(hi, n)
		}
	}
	return fmt.Sprintf(`%d connections polled only, on the real clock: dev/localpoll's timer calls
poll.Fanout.Handle every %s (the first at once, %d fan-outs in %s), the fan-out
sends to a queue on the emulator, and sqsbatch.Handler(poll.Poller) consumes
it in batches of the template's BatchSize, as `+"`make dev`"+` runs them: %d polls
(%d to %d per connection), **%.2f per connection per period**, in %d
invocations of %.1f ms of handler time on average; the sandbox answered %d
searchOrders calls (its rate budget's burst is not spent in so few periods).`,
		c.tenants, c.interval, c.periods, c.wall.Round(time.Millisecond), c.records, lo, hi, c.perPeriod, c.batches,
		ms(c.pollTime)/float64(max(c.batches, 1)), c.searches)
}
