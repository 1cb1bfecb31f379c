package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// budgetScenario is one driven run of the poller against the sandbox.
type budgetScenario struct {
	name string
	// change, when set, replaces the sandbox's searchOrders plan at
	// changeAt (after the start) — the poller is not told.
	changeAt  time.Duration
	newRate   float64
	newBurst  int
	hasChange bool
}

type budgetOutcome struct {
	calls, throttled, polls int
	failed                  int    // polls that failed other than by a 429
	firstErr                string // the first such failure
	max                     float64
	// headerRate is the x-amzn-RateLimit-Limit of the sandbox's first
	// searchOrders answer (0: none).
	headerRate float64
}

// sqsRetry is when SQS hands a failed poll message back (the local queue's
// VisibilityTimeout).
const sqsRetry = 60 * time.Second

// benchBudget drives the real poller (poll.Poller with poll.AmazonSource:
// Vault credentials, LWA, the persisted rate budget in PostgreSQL, SP-API
// searchOrders) against an in-process Amazon sandbox, every clock — the
// sandbox's, the store's, the poller's — one sandbox.ManualClock. The driver
// only does what the schedule would: poll the connection again when the
// poller says it is due (NextPollAt, or a throttle's RetryAt), moving the
// clock there. The connection always has work (a 1 s interval), so the
// budget alone limits the calls.
func benchBudget(ctx context.Context, e *env) (section, error) {
	sec := section{Title: "Rate-budget use (poller vs the sandbox's token bucket, driven clock)"}
	T := e.sc.SandboxTime
	scenarios := []budgetScenario{
		{name: "known_plan"},
		{name: "plan_change", hasChange: true, changeAt: T / 3, newRate: spapi.SearchOrdersRate / 2, newBurst: spapi.SearchOrdersBurst / 2},
	}
	uses := map[string]float64{}
	var headerRate float64
	for _, s := range scenarios {
		out, err := e.runBudget(ctx, s, T)
		if err != nil {
			return sec, fmt.Errorf("%s: %w", s.name, err)
		}
		use := ratio(float64(out.calls), out.max)
		uses[s.name] = use
		if headerRate == 0 {
			headerRate = out.headerRate
		}
		e.logf("budget %s: %d calls completed of %.2f possible (%.3f), %d throttled, %d polls, %d failed", s.name, out.calls, out.max, use, out.throttled, out.polls, out.failed)
		if out.failed > 0 {
			sec.Notes = append(sec.Notes, fmt.Sprintf("**%s: %d of %d polls failed** (the driver hands them back %s later, as SQS would); the first: `%s`",
				s.name, out.failed, out.polls, sqsRetry, out.firstErr))
		}
		if !s.hasChange {
			sec.Results = append(sec.Results, Result{
				Name: "budget_use_known_plan", Value: use, Unit: "ratio",
				Baselines: map[string]float64{"theoretical_max_calls": round3(out.max), "calls_completed": float64(out.calls), "throttled_429": float64(out.throttled), "failed_polls": float64(out.failed)},
				Ratios:    map[string]float64{"theoretical_max_calls": use},
				Goal:      "≥ 0.95, zero 429s and no failed poll in every run",
				checks:    []check{atLeast("value", 0.95), inEvery(atMost("baseline:throttled_429", 0)), inEvery(atMost("baseline:failed_polls", 0))},
				miss:      "the poller leaves more than 5% of Amazon's allowance unused, or spends past it (a 429), or a poll fails",
				explain:   budgetExplain(out),
			})
			continue
		}
		sec.Results = append(sec.Results, Result{
			Name: "budget_429_after_plan_change", Value: float64(out.throttled), Unit: "429s",
			Baselines: map[string]float64{"theoretical_max_calls": round3(out.max), "calls_completed": float64(out.calls), "failed_polls": float64(out.failed)},
			Ratios:    map[string]float64{"theoretical_max_calls": use},
			Goal:      "≤ 1 429 and no failed poll in every run",
			checks:    []check{inEvery(atMost("value", 1)), inEvery(atMost("baseline:failed_polls", 0))},
			miss:      "the poller keeps calling at the old plan's pace after Amazon lowered it (two or more 429s), or a poll fails",
			explain:   budgetExplain(out),
		})
	}
	assumed := fmt.Sprintf("the sandbox's first answer carried x-amzn-RateLimit-Limit %g/s", headerRate)
	if headerRate == spapi.SearchOrdersRate {
		assumed += ", the rate the poller assumes"
	} else {
		assumed += fmt.Sprintf(", not the %g/s the poller assumes", spapi.SearchOrdersRate)
	}
	lower := fmt.Sprintf("its ratio, %.3f, is not below the known plan's %.3f", uses["plan_change"], uses["known_plan"])
	if uses["plan_change"] < uses["known_plan"] {
		lower = fmt.Sprintf("its ratio, %.3f, is below the known plan's %.3f", uses["plan_change"], uses["known_plan"])
	}
	sec.Notes = append(sec.Notes, fmt.Sprintf(`%s of sandbox time per scenario, the poller on spapi's defaults for Orders
v2026-01-01's searchOrders (rate %.4g/s, burst %d; %s). Theoretical maximum = burst + rate·t (for the plan change: the old
plan's burst + rate·t until the change, then the new plan's burst — the
sandbox restarts the bucket full — + its rate·t). Calls completed = the
sandbox's searchOrders calls minus the ones it answered 429
(sandbox.Server.Stats). **plan_change**: at %s the sandbox switches the seller
to rate %.4g/s, burst %d without telling the poller, which only sees
x-amzn-RateLimit-Limit on its answers: Amazon's headers carry no burst, so
the poller cannot learn the new one (%s).

The clock is driven, not slept: the poller's TakeToken/RecordThrottle/
RecordSuccess run their SQL with the injected now (postgres.New(pool, now)),
the poller and AmazonSource take the same now, and the sandbox's buckets
refill on the same ManualClock.`,
		T, spapi.SearchOrdersRate, spapi.SearchOrdersBurst, assumed, T/3, spapi.SearchOrdersRate/2, spapi.SearchOrdersBurst/2, lower))
	return sec, nil
}

// budgetExplain says what the last run measured when a budget goal is
// missed.
func budgetExplain(out budgetOutcome) func(Result) string {
	return func(m Result) string {
		t := fmt.Sprintf(`In the last run the poller completed %d searchOrders calls of %.2f possible,
the sandbox answered %d with 429, and %d of %d polls failed otherwise.`, out.calls, out.max, out.throttled, out.failed, out.polls)
		if out.firstErr != "" {
			t += " The first failure: `" + out.firstErr + "`."
		}
		return t
	}
}

func (e *env) runBudget(ctx context.Context, s budgetScenario, T time.Duration) (budgetOutcome, error) {
	var out budgetOutcome
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	clock := sandbox.NewManualClock(start)
	rig, err := e.newSandboxRig(ctx, 1, clock, false)
	if err != nil {
		return out, err
	}
	sb, sbURL := rig.sb, rig.url
	store, _, err := e.freshStore(ctx, "budget", 2, clock.Now, nil)
	if err != nil {
		return out, err
	}
	tenant, connID, seller, err := rig.connect(ctx, e, store, 0, "budget", start)
	if err != nil {
		return out, err
	}

	sp := spapi.New()
	gw := sellerapi.New(credcache.New(rig.secrets, credcache.WithClock(clock.Now)), lwa.New(sbURL+"/auth/o2/token"), sp, store,
		sellerapi.WithEndpoint(sbURL), sellerapi.WithLogger(e.quiet))
	src := poll.NewAmazonSource(gw, sp, poll.WithClock(clock.Now))

	poller := poll.NewPoller(store, src, poll.WithConfig(poll.Config{Interval: time.Second}), poll.WithClock(clock.Now), poll.WithLogger(e.quiet))
	msg := pollqueue.Message{TenantID: tenant, ConnectionID: connID, EnqueuedAt: start}

	end := start.Add(T)
	changed := !s.hasChange
	for i := 0; clock.Now().Before(end); i++ {
		if i > 1_000_000 {
			return out, errors.New("the driver did not reach the end of the scenario")
		}
		if !changed && !clock.Now().Before(start.Add(s.changeAt)) {
			sb.SetRatePlan(seller.ID, sandbox.OpSearchOrders, s.newRate, s.newBurst)
			changed = true
		}
		res, err := poller.PollResult(ctx, msg)
		out.polls++
		next := res.NextPollAt
		var thr *sellerapi.ThrottledError
		switch {
		case errors.As(err, &thr):
			next = thr.RetryAt
		case err != nil:
			// A transient failure: SQS redelivers the message later.
			if out.failed == 0 {
				out.firstErr = fmt.Sprintf("at +%s: %v", clock.Now().Sub(start), err)
			}
			out.failed++
			next = clock.Now().Add(sqsRetry)
		case res.Skipped != "":
			return out, fmt.Errorf("poll at %s skipped: %s", clock.Now().Sub(start), res.Skipped)
		}
		now := clock.Now()
		if !next.After(now) {
			next = now.Add(time.Millisecond)
		}
		// The plan change happens at its time even if the poller sleeps past it.
		if !changed && next.After(start.Add(s.changeAt)) {
			next = start.Add(s.changeAt)
		}
		clock.Set(next)
	}
	for _, c := range rig.searches.list() {
		if c.RateLimit > 0 {
			out.headerRate = c.RateLimit
			break
		}
	}
	st := sb.Stats(seller.ID)
	out.throttled = st.Throttled
	out.calls = st.Calls[sandbox.OpSearchOrders] - st.Throttled
	secs := T.Seconds()
	if !s.hasChange {
		out.max = float64(spapi.SearchOrdersBurst) + spapi.SearchOrdersRate*secs
	} else {
		t1 := s.changeAt.Seconds()
		out.max = float64(spapi.SearchOrdersBurst) + spapi.SearchOrdersRate*t1 + float64(s.newBurst) + s.newRate*(secs-t1)
	}
	if out.calls <= 0 {
		return out, errors.New("no searchOrders call completed")
	}
	return out, nil
}
