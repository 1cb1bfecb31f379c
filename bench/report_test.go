package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMergeRuns(t *testing.T) {
	run := func(v, r, thr float64) []Result {
		return []Result{{
			Name: "x", Value: v, Unit: "u", Goal: "g",
			Baselines: map[string]float64{"base": 10, "throttled_429": thr}, Ratios: map[string]float64{"base": r},
			checks:  []check{atLeast("ratio:base", 0.8), inEvery(atMost("baseline:throttled_429", 0))},
			explain: func(m Result) string { return "bound by the base" },
		}, {Name: "report", Value: v, Unit: "u", Goal: "report only"}}
	}
	tests := []struct {
		name      string
		runs      [][]Result
		wantValue float64
		wantRatio float64
		wantLow   float64
		wantHigh  float64
		wantMet   bool
	}{
		{"median meets though one run misses", [][]Result{run(9, 0.9, 0), run(7, 0.7, 0), run(8, 0.85, 0)}, 8, 0.85, 0.7, 0.9, true},
		{"median misses though one run meets", [][]Result{run(9, 0.9, 0), run(7, 0.7, 0), run(7.5, 0.75, 0)}, 7.5, 0.75, 0.7, 0.9, false},
		{"a 429 in any run misses", [][]Result{run(9, 0.9, 0), run(9, 0.9, 1), run(9, 0.9, 0)}, 9, 0.9, 0.9, 0.9, false},
		{"two runs: the mean of the middle two", [][]Result{run(8, 0.8, 0), run(9, 1, 0)}, 8.5, 0.9, 0.8, 1, true},
		{"one run", [][]Result{run(5, 0.5, 0)}, 5, 0.5, 0.5, 0.5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeRuns(tt.runs)
			if len(got) != 2 || got[0].Name != "x" || got[1].Name != "report" {
				t.Fatalf("merged %+v", got)
			}
			x := got[0]
			if x.Value != tt.wantValue || x.Ratios["base"] != tt.wantRatio || x.Runs != len(tt.runs) {
				t.Errorf("value %v ratio %v runs %d; want %v %v %d", x.Value, x.Ratios["base"], x.Runs, tt.wantValue, tt.wantRatio, len(tt.runs))
			}
			if s := x.RatioSpread["base"]; s != [2]float64{tt.wantLow, tt.wantHigh} {
				t.Errorf("ratio spread %v, want [%v %v]", s, tt.wantLow, tt.wantHigh)
			}
			if x.Met != tt.wantMet {
				t.Errorf("met %v, want %v", x.Met, tt.wantMet)
			}
			if (x.Bound != "") == x.Met {
				t.Errorf("bound %q with met %v", x.Bound, x.Met)
			}
			if !got[1].Met || got[1].Bound != "" {
				t.Errorf("report-only row: met %v bound %q", got[1].Met, got[1].Bound)
			}
		})
	}
}

func TestReportMarkdown(t *testing.T) {
	r := &report{Scale: "small", Runs: 3, Commit: "abc123", Dirty: true, Sections: []section{{
		Title: "S", Results: mergeRuns([][]Result{{{Name: "m", Value: 1, Unit: "u", Goal: "≥ 2", checks: []check{atLeast("value", 2)},
			explain: func(Result) string { return "because of X" }}}}),
	}}}
	md := r.markdown()
	for _, want := range []string{"`abc123` with uncommitted changes (dirty)", "## Goals", "| m | 1 |", "**m misses its goal (≥ 2).** because of X", "## 1. S"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestPollBound(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	call := func(at time.Duration, status int) searchCall {
		c := searchCall{At: t0.Add(at), Status: status}
		if status == 200 {
			c.Before, c.RateLimit = c.At.Add(-2*time.Minute), 0.0056
		}
		return c
	}
	r := freshness{least: 130 * time.Second, worst: 290 * time.Second}
	tests := []struct {
		name  string
		calls []searchCall
		want  []string
		not   []string
	}{
		{"steady calls", []searchCall{call(0, 200), call(180*time.Second, 200), call(360*time.Second, 200), call(600*time.Second, 200)},
			[]string{"from 4 searchOrders answers", "ended 120 s before its call", "one call per 179 s", "180, 180, 240 s apart (median 180 s), 3.00 fan-out periods (the poll interval is 1m0s);",
				"from 120 s up to 360 s", "Measured: fastest 130.0 s, max 290.0 s.", "The window's lag alone (120 s) exceeds the goal's limit (70 s)"}, nil},
		{"many calls summarised", func() []searchCall {
			var cs []searchCall
			for i := range 9 {
				cs = append(cs, call(time.Duration(i)*180*time.Second, 200))
			}
			return cs
		}(), []string{"180–180 s apart (8 gaps, median 180 s)"}, []string{"180, 180"}},
		{"polls due less often than allowed", []searchCall{call(0, 200), call(120*time.Second, 200), call(240*time.Second, 200)},
			[]string{"2.00 fan-out periods (the poll interval is 1m0s)"}, nil},
		{"one call", []searchCall{call(0, 200), call(time.Second, 429)}, []string{"(1 calls answered 429)", "spacing is not measured"}, []string{"apart"}},
		{"no window", []searchCall{call(0, 429)}, []string{"recorded 1 searchOrders calls and none answered with a window end"}, []string{"Measured"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pollBound(tt.calls, r, time.Minute, 70*time.Second)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("has %q:\n%s", w, got)
				}
			}
		})
	}
	// A lag within the limit says nothing about the goal being out of reach.
	if got := pollBound([]searchCall{call(0, 200)}, r, time.Minute, 200*time.Second); strings.Contains(got, "exceeds") {
		t.Errorf("lag under the limit: %s", got)
	}
}

func TestPlanSummary(t *testing.T) {
	plan := `Insert on "ExternalMessage" (actual time=0.459..0.459 rows=0 loops=1)
Planning Time: 0.496 ms
Trigger for constraint ExternalMessage_ticketId_fkey: time=1.500 calls=100
Trigger for constraint TicketMessage_ticketId_fkey: time=0.500 calls=100
Execution Time: 8.000 ms`
	got := planSummary(plan)
	for _, w := range []string{"took 8.00 ms to execute", "triggers 2.00 ms (25%; 200 calls of ExternalMessage_ticketId_fkey, TicketMessage_ticketId_fkey)"} {
		if !strings.Contains(got, w) {
			t.Errorf("lacks %q: %s", w, got)
		}
	}
	if got := planSummary("Execution Time: 1.000 ms"); !strings.Contains(got, "shows no trigger") {
		t.Errorf("no triggers: %s", got)
	}
	if got := planSummary("(not recorded)"); !strings.Contains(got, "not read") {
		t.Errorf("no plan: %s", got)
	}
}

func TestFreshResultsGoal(t *testing.T) {
	r := freshness{sent: 3, seen: 2, p50: time.Second, p99: 12 * time.Second, worst: 12 * time.Second}
	withGoal := mergeRuns([][]Result{freshResults("f", freshChannel{limit: 10 * time.Second}, r, "ev", "")})
	if withGoal[0].Name != "f_p99" || withGoal[0].Met || !strings.Contains(withGoal[0].Bound, "ev") {
		t.Errorf("p99 over its limit with a lost event: %+v", withGoal[0])
	}
	// Every event must arrive even when p99 is within the limit.
	r.p99 = time.Second
	if got := mergeRuns([][]Result{freshResults("f", freshChannel{limit: 10 * time.Second}, r, "", "")}); got[0].Met {
		t.Errorf("a lost event must miss the goal: %+v", got[0])
	}
	only := mergeRuns([][]Result{freshResults("f", freshChannel{limit: 10 * time.Second, reportOnly: true}, r, "", "")})
	if only[0].Goal != "report only" || !only[0].Met {
		t.Errorf("report-only channel: %+v", only[0])
	}
}

func TestInOrderAlternates(t *testing.T) {
	for run, want := range map[int]string{1: "baseline,real", 2: "real,baseline", 3: "baseline,real", 4: "real,baseline"} {
		e := &env{run: run}
		var got []string
		order, err := e.inOrder(func() error { got = append(got, "baseline"); return nil }, func() error { got = append(got, "real"); return nil })
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("run %d: ran %v (err %v), want %s", run, got, err, want)
		}
		if !strings.HasPrefix(order, strings.Split(want, ",")[0]) {
			t.Errorf("run %d: order text %q, want it to start with %s", run, order, strings.Split(want, ",")[0])
		}
	}
	// A failing first side stops the second.
	e := &env{run: 2}
	ran := false
	if _, err := e.inOrder(func() error { ran = true; return nil }, func() error { return errors.New("boom") }); err == nil || ran {
		t.Errorf("err %v, baseline ran %v after the real side failed", err, ran)
	}
}

func TestMissText(t *testing.T) {
	tests := []struct {
		checks  []check
		meaning string
		want    string
	}{
		{nil, "x", ""},
		{[]check{atLeast("ratio:page_copy", 0.7)}, "", "the ratio to page_copy below 0.7 (median)"},
		{[]check{below("value", 15)}, "", "the value at or above 15 (median)"},
		{[]check{atLeast("value", 0.95), inEvery(atMost("baseline:throttled_429", 0))}, "it wastes quota",
			"the value below 0.95 (median), or throttled_429 above 0 in any run: it wastes quota"},
	}
	for _, tt := range tests {
		if got := missText(tt.checks, tt.meaning); got != tt.want {
			t.Errorf("missText(%v, %q) = %q, want %q", tt.checks, tt.meaning, got, tt.want)
		}
	}
	// The goals table carries it.
	r := &report{Sections: []section{{Title: "S", Results: mergeRuns([][]Result{{{Name: "m", Value: 1, Unit: "u", Goal: "≥ 2",
		checks: []check{atLeast("value", 2)}, miss: "too slow"}}})}}}
	if md := r.markdown(); !strings.Contains(md, "| the value below 2 (median): too slow |") {
		t.Errorf("goals table lacks the miss:\n%s", md)
	}
}

func TestCheckPlanLabels(t *testing.T) {
	plan := func(n int) string {
		return fmt.Sprintf(`Result (actual time=0.9..0.9 rows=1 loops=1)
  CTE ins
    ->  Insert on "ExternalMessage" (actual time=0.898..0.899 rows=%d loops=1)
          Conflict Resolution: NOTHING
  CTE tm
    ->  Insert on "TicketMessage" (actual time=0.900..0.900 rows=%d loops=1)`, n, n)
	}
	if n, ok := insertedRows(plan(100), "ExternalMessage"); !ok || n != 100 {
		t.Errorf("insertedRows = %d, %v", n, ok)
	}
	if _, ok := insertedRows("Result (actual time=0.1..0.1 rows=1 loops=1)", "ExternalMessage"); ok {
		t.Error("a plan without the insert node read as one")
	}
	tests := []struct {
		name       string
		fresh, dup string
		ok         bool
	}{
		{"labels hold", plan(100), plan(0), true},
		// Round 2's bug: the statement's arguments were read one position
		// off, so the "new events" plan deleted nothing and inserted nothing.
		{"new events plan inserts nothing", plan(0), plan(0), false},
		{"stored page plan inserts", plan(100), plan(100), false},
		{"fewer rows than the page", plan(40), plan(0), false},
		{"no plan", "(not recorded)", plan(0), false},
	}
	for _, tt := range tests {
		if err := checkPlanLabels(tt.fresh, tt.dup, 100); (err == nil) != tt.ok {
			t.Errorf("%s: err %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestSQLParams(t *testing.T) {
	got := sqlParams([]any{pgx.QueryExecModeCacheDescribe, "tenant", "conn"})
	if len(got) != 2 || got[0] != "tenant" || got[1] != "conn" {
		t.Errorf("sqlParams with a mode = %v", got)
	}
	if got := sqlParams([]any{"tenant", "conn"}); len(got) != 2 || got[0] != "tenant" {
		t.Errorf("sqlParams without a mode = %v", got)
	}
}

func TestFanoutMillion(t *testing.T) {
	period := schedulePeriodMS / 1000
	// 100,000 in 4 s: a million projected at 40 s.
	r := mergeRuns([][]Result{{fanoutMillion(100_000, 4*time.Second, 30_000, 200_000, "")}})[0]
	if r.Value != 40 || !strings.Contains(r.Goal, "projected linearly from 100000") || r.Met != (40 <= period) {
		t.Errorf("projected: %+v", r)
	}
	// A million measured in 90 s, the emulator's ceiling 12,000 msg/s: the
	// emulator bounds it.
	r = mergeRuns([][]Result{{fanoutMillion(million, 90*time.Second, 12_000, 200_000, "cpu evidence")}})[0]
	if r.Value != 90 || !strings.Contains(r.Goal, "measured") || r.Met {
		t.Errorf("measured: %+v", r)
	}
	if period == 60 && (!strings.Contains(r.Bound, "Bound by the emulator: its own ceiling alone") || !strings.Contains(r.Bound, "cpu evidence")) {
		t.Errorf("bound: %s", r.Bound)
	}
	// The ceiling fits, the claims do not.
	r = mergeRuns([][]Result{{fanoutMillion(million, 90*time.Second, 40_000, 10_000, "")}})[0]
	if period == 60 && !strings.Contains(r.Bound, "Bound by the claims") {
		t.Errorf("bound: %s", r.Bound)
	}
}

// TestCPUMeter finds the process behind a listening port and counts the CPU
// it burns.
func TestCPUMeter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m := newCPUMeter([][2]string{{"listener", "http://" + ln.Addr().String()}, {"self", "self"}, {"nobody", "http://127.0.0.1:1"}})
	if m.roots[0] != os.Getpid() || m.roots[1] != os.Getpid() || m.roots[2] != 0 {
		t.Fatalf("pids %v, want this process (%d) twice and 0", m.roots, os.Getpid())
	}
	before := m.sample()
	t0 := time.Now()
	for x := 0; time.Since(t0) < 300*time.Millisecond; x++ {
		_ = x * x
	}
	u := m.since(before, time.Since(t0))
	if c := u.cores("self"); c <= 0.1 {
		t.Errorf("a busy loop used %.2f cores", c)
	}
	if u.cores("nobody") != -1 || !strings.Contains(u.text(), "nobody not found in /proc") {
		t.Errorf("a server not found: %s", u.text())
	}
}

func TestAtCadence(t *testing.T) {
	d := dayCost{
		records:     map[string]int{"polltenant": 1000, "ordernotify": 0},
		invocations: map[string]int{"polltenant": 200, "pollfanout": 100},
		duration:    map[string]time.Duration{"polltenant": 10 * time.Second, "pollfanout": time.Second},
		spapi:       map[string]int{"searchOrders": 400},
		statements:  8000,
	}
	// The real clock polls half as often as the driven day.
	got := atCadence(d, 1, 0.5)
	if got.records["polltenant"] != 500 || got.invocations["polltenant"] != 100 || got.duration["polltenant"] != 5*time.Second || got.statements != 4000 {
		t.Errorf("scaled: %+v", got)
	}
	if got.invocations["pollfanout"] != 100 || got.duration["pollfanout"] != time.Second {
		t.Errorf("the fan-out is per tick, not per poll: %+v", got)
	}
	if got.spapi["searchOrders"] != 400 {
		t.Errorf("searchOrders %d: the budget, not the polls, caps them", got.spapi["searchOrders"])
	}
	if d.records["polltenant"] != 1000 {
		t.Error("atCadence changed its argument")
	}
	// Fewer polls than the budget allows: one call per poll at most.
	if got := atCadence(d, 1, 0.2); got.spapi["searchOrders"] != 200 {
		t.Errorf("searchOrders %d, want 200 (one per poll)", got.spapi["searchOrders"])
	}
	if got := atCadence(d, 0, 1); got.records["polltenant"] != 1000 {
		t.Errorf("no driven cadence: unchanged, got %+v", got)
	}
}

func TestDollarsPerTenantMonth(t *testing.T) {
	sc := scale{CostTenants: 1, CostDay: 24 * time.Hour}
	// One tenant-day: 1,440 polls (batches of 5) of 10 ms, no notification.
	d := dayCost{records: map[string]int{"polltenant": 1440}, duration: map[string]time.Duration{"polltenant": 14400 * time.Millisecond}}
	got := dollarsPerTenantMonth(d, sc, 5)
	wantReq := 288 * 30 * lambdaPerRequest
	wantDur := 14.4 * 0.5 * lambdaArmPerGBSecond * 30
	wantSQS := (144 + 576) * 30 * sqsPerRequest
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"requests", got.requests, wantReq}, {"duration", got.duration, wantDur}, {"sqs", got.sqs, wantSQS}, {"total", got.total, wantReq + wantDur + wantSQS}} {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestCheckHolds(t *testing.T) {
	r := Result{Value: 15, Ratios: map[string]float64{"x": 0.5}, Baselines: map[string]float64{"n": 0}}
	for _, tc := range []struct {
		c    check
		want bool
	}{
		{below("value", 15), false}, {below("value", 15.01), true},
		{atMost("value", 15), true}, {atLeast("value", 15), true}, {atLeast("value", 15.01), false},
		{atLeast("ratio:x", 0.5), true}, {atMost("baseline:n", 0), true},
		{atMost("ratio:missing", 1), false},
	} {
		if got := tc.c.holds(r); got != tc.want {
			t.Errorf("%+v holds = %v, want %v", tc.c, got, tc.want)
		}
	}
}
