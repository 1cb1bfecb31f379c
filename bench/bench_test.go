package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
)

// TestSmallScale runs every benchmark at the small scale against the stack
// `make test` starts, so the harness cannot rot. It checks that each
// produced sane, non-zero results with the expected fields; timings are
// never asserted (the machines are shared).
func TestSmallScale(t *testing.T) {
	for _, k := range required {
		testenv.Env(t, k) // fails (never skips) outside the stack
	}
	if testing.Short() {
		t.Skip("-short: the small benchmarks take some seconds")
	}
	// The cold-start benchmark builds ./functions/... from the repository root.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(filepath.Dir(wd)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chdir(wd) })

	dir := t.TempDir()
	o := options{
		scale: "small", out: filepath.Join(dir, "BENCHMARKS.md"), jsonOut: filepath.Join(dir, "results.json"),
		command: "go test ./bench", log: t.Logf,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := run(ctx, o)
	if err != nil {
		t.Fatalf("run: %v", err)
	}

	// Every benchmark reported, with its measures.
	want := map[string][]string{
		"fanout":    {"fanout_throughput", "fanout_run_time", "fanout_time_per_million"},
		"ingest":    {"ingest_throughput", "ingest_vs_row_by_row", "reingest_throughput"},
		"api":       {"api_status_throughput", "api_status_p50", "api_status_p99", "api_oauthstart_throughput", "api_oauthstart_p50", "api_oauthstart_p99"},
		"budget":    {"budget_use_known_plan", "budget_429_after_plan_change"},
		"coldstart": {"coldstart_status", "coldstart_status_total", "size_status", "coldstart_functions_measured"},
		"mail":      {"mail_intake_throughput", "mail_intake_statements_per_mail"},
		"freshness": {"freshness_push_p99", "freshness_push_p50", "freshness_push_max", "freshness_mail_p99", "freshness_mail_p50", "freshness_mail_max",
			"freshness_poll_steady_p99", "freshness_poll_steady_p50", "freshness_poll_steady_max"},
		"cost": {"cost_invocations_push_vs_poll", "cost_spapi_calls_push_vs_poll", "cost_statements_push_vs_poll", "cost_handler_seconds_push_vs_poll",
			"cost_poll_cadence_real_clock", "cost_dollars_per_tenant_month_push",
			"cost_reply_ses_sends", "cost_reply_invocations", "cost_reply_statements", "cost_reply_dollars_per_tenant_month"},
		"replies": replyMeasures,
	}
	if len(rep.Sections) != len(benchmarks) {
		t.Errorf("%d sections, want %d", len(rep.Sections), len(benchmarks))
	}

	b, err := os.ReadFile(o.jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	// The JSON's shape, field by field.
	var doc struct {
		Commit  string                       `json:"commit"`
		Date    string                       `json:"date"`
		Runs    int                          `json:"runs"`
		Results []map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if doc.Commit == "" || doc.Date == "" || doc.Runs != 1 {
		t.Errorf("results.json: commit %q, date %q, runs %d", doc.Commit, doc.Date, doc.Runs)
	}
	for i, r := range doc.Results {
		for _, f := range []string{"name", "value", "unit", "baselines", "ratios", "goal", "met", "runs", "value_spread", "ratio_spread"} {
			if _, ok := r[f]; !ok {
				t.Errorf("results.json results[%d] has no %q", i, f)
			}
		}
	}
	var parsed struct {
		Results []Result `json:"results"`
	}
	if err := json.Unmarshal(b, &parsed); err != nil {
		t.Fatal(err)
	}
	results := parsed.Results
	byName := map[string]Result{}
	for _, r := range results {
		if _, dup := byName[r.Name]; dup {
			t.Errorf("measure %s reported twice", r.Name)
		}
		byName[r.Name] = r
	}
	// Every goal says which result would miss it.
	for _, r := range results {
		if !strings.HasPrefix(r.Goal, "report only") && r.Miss == "" {
			t.Errorf("%s: goal %q says nothing of what would miss it", r.Name, r.Goal)
		}
	}
	for bench, names := range want {
		for _, n := range names {
			r, ok := byName[n]
			if !ok {
				t.Errorf("%s: no measure %s", bench, n)
				continue
			}
			sane(t, r)
		}
	}

	md, err := os.ReadFile(o.out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| measure | median | spread | unit | baselines (median) | ratios (median, min–max) | goal | met |",
		"## Goals", "| commit | `", "cores (runtime.NumCPU)", "`go test ./bench`", "Go |"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("BENCHMARKS.md lacks %q", s)
		}
	}
	for name := range byName {
		if !strings.Contains(string(md), "| "+name+" |") {
			t.Errorf("BENCHMARKS.md has no row for %s", name)
		}
	}
}

// sane checks a measure's fields: a unit and a goal, baselines with
// positive values and one ratio per baseline, and a positive value except
// for counts of 429s (zero is the goal there).
func sane(t *testing.T, r Result) {
	t.Helper()
	if r.Unit == "" || r.Goal == "" {
		t.Errorf("%s: unit %q, goal %q", r.Name, r.Unit, r.Goal)
	}
	if r.Unit == "429s" {
		if r.Value < 0 {
			t.Errorf("%s: negative count %v", r.Name, r.Value)
		}
	} else if !(r.Value > 0) {
		t.Errorf("%s: value %v, want > 0", r.Name, r.Value)
	}
	if len(r.Baselines) == 0 || len(r.Ratios) == 0 {
		t.Errorf("%s: baselines %v, ratios %v", r.Name, r.Baselines, r.Ratios)
	}
	for k, v := range r.Ratios {
		b, ok := r.Baselines[k]
		if !ok {
			t.Errorf("%s: ratio %s has no baseline", r.Name, k)
			continue
		}
		if !(b > 0) || !(v > 0) {
			t.Errorf("%s: baseline %s = %v, ratio %v; want both > 0", r.Name, k, b, v)
		}
	}
}

// replyMeasures are the replies benchmark's rows.
var replyMeasures = []string{"replies_to_ses_p99", "replies_to_ses_p50", "replies_to_ses_max",
	"replies_to_inbox_p99", "replies_to_inbox_p50", "replies_to_inbox_max", "replies_sender_throughput", "replies_ses_rate"}

// TestReplies runs the replies benchmark alone at the small scale against
// the stack, end to end: replies from several tenants through the route,
// the queue, the reply sender, the SESv2 stand-in and the sandbox's buyer
// relay, then the throughput comparison. Every reply must reach SES and
// the buyer (the benchmark fails otherwise); timings are not asserted.
func TestReplies(t *testing.T) {
	for _, k := range required {
		testenv.Env(t, k)
	}
	if testing.Short() {
		t.Skip("-short: the replies benchmark takes some seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := run(ctx, options{scale: "small", only: "replies", command: "go test ./bench", log: t.Logf})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	byName := map[string]Result{}
	for _, r := range rep.results() {
		byName[r.Name] = r
	}
	for _, n := range replyMeasures {
		r, ok := byName[n]
		if !ok {
			t.Errorf("no measure %s", n)
			continue
		}
		sane(t, r)
		if !strings.HasPrefix(r.Goal, "report only") && r.Miss == "" {
			t.Errorf("%s: goal %q says nothing of what would miss it", r.Name, r.Goal)
		}
	}
	for _, n := range []string{"replies_to_ses_p99", "replies_to_inbox_p99"} {
		r := byName[n]
		if r.Baselines["arrived"] != r.Baselines["replies"] || r.Baselines["replies"] != float64(scales["small"].Replies) {
			t.Errorf("%s: %v of %v replies arrived, want all %d", n, r.Baselines["arrived"], r.Baselines["replies"], scales["small"].Replies)
		}
	}
}
