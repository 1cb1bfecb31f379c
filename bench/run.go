package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// options are the command line.
type options struct {
	scale      string
	only       string
	out        string
	jsonOut    string
	profileDir string
	command    string
	// fresh lists the freshness channels to run ("": the scale's).
	fresh string
	// runs is how many times each benchmark runs (0: the scale's).
	runs int
	// fanoutTenants overrides the scale's fan-out size (0: the scale's).
	fanoutTenants int
	// log receives progress lines (nil: stderr).
	log func(format string, args ...any)
}

// scale sizes every benchmark.
type scale struct {
	Name string
	// Fan-out.
	Tenants     int // CONNECTED connections enqueued by one fan-out run
	NaiveSample int // messages the one-by-one baseline sends (its rate is what counts)
	// Ingestion.
	Events         int // inbound events, in pages of PageSize
	PageSize       int
	RowByRowSample int // events the one-INSERT-per-row baseline stores
	// Mail intake: relay mails timed on each side.
	Mails int
	// API.
	APIRequests    int // per route and per server
	APIConcurrency int
	APITenants     int
	// Rate budget.
	SandboxTime time.Duration
	// Cold start.
	Functions []string // nil: the Makefile's FUNCTIONS
	ColdRuns  int      // cold starts per binary and run; the median counts
	// Freshness: events per channel, spread over FreshSpread; the poll
	// interval (0: MARKETPLACE_POLL_INTERVAL_SECONDS, the real one).
	FreshEvents       int
	FreshSpread       time.Duration
	FreshPollInterval time.Duration
	FreshGrace        time.Duration // the wait after the last action, beyond one poll period
	FreshChannels     []string      // poll, push, mail (side by side, real clock), poll_steady (driven clock)
	// Cost: tenants, the simulated day's length, buyer events per tenant
	// over it.
	CostTenants int
	CostDay     time.Duration
	CostEvents  int
	// The polling-only cadence on the real clock: fan-outs measured, and
	// their period (0: MARKETPLACE_POLL_INTERVAL_SECONDS, the real one).
	CadencePeriods  int
	CadenceInterval time.Duration
	// Replies: replies timed from send-reply's 202 (from ReplyTenants
	// tenants at once), replies the throughput comparison sends on each
	// side, and replies per tenant in the cost benchmark.
	Replies, ReplyTenants, ReplyThroughput int
	CostReplies                            int
	// Runs is how many times each benchmark runs; medians count.
	Runs int
}

var scales = map[string]scale{
	"full": {
		// A million: the fan-out's goal is measured, not projected (about 3
		// minutes a run with its seeding; -fanout-tenants shortens it).
		Name: "full", Tenants: 1_000_000, NaiveSample: 5_000,
		Events: 100_000, PageSize: 100, RowByRowSample: 10_000,
		Mails:       1_000,
		APIRequests: 4_000, APIConcurrency: 8, APITenants: 1_000,
		SandboxTime: 30 * time.Minute,
		ColdRuns:    3,
		FreshEvents: 40, FreshSpread: 45 * time.Second, FreshGrace: 150 * time.Second, FreshChannels: []string{"poll", "push", "mail", "poll_steady"},
		CostTenants: 5, CostDay: 24 * time.Hour, CostEvents: 10,
		CadencePeriods: 4,
		Replies:        240, ReplyTenants: 8, ReplyThroughput: 400, CostReplies: 10,
		Runs: 3,
	},
	"small": {
		Name: "small", Tenants: 1_000, NaiveSample: 200,
		Events: 1_000, PageSize: 100, RowByRowSample: 300,
		Mails:       40,
		APIRequests: 200, APIConcurrency: 4, APITenants: 50,
		SandboxTime: 5 * time.Minute,
		Functions:   []string{"status", "sendreply"},
		ColdRuns:    1,
		FreshEvents: 5, FreshSpread: 3 * time.Second, FreshPollInterval: 2 * time.Second, FreshGrace: 10 * time.Second,
		// Poll waits for Amazon's searchOrders margin (minutes): too long
		// for the test run.
		FreshChannels: []string{"push", "mail", "poll_steady"},
		CostTenants:   2, CostDay: 2 * time.Hour, CostEvents: 2,
		CadencePeriods: 4, CadenceInterval: 2 * time.Second,
		Replies: 40, ReplyTenants: 4, ReplyThroughput: 60, CostReplies: 3,
		Runs: 1,
	},
}

// freshChannelNames are the freshness channels -fresh may name.
var freshChannelNames = []string{"poll", "push", "mail", "poll_steady"}

// benchmark is one of them.
type benchmark struct {
	name string
	run  func(ctx context.Context, e *env) (section, error)
}

// section is what one run of a benchmark reports: its rows, and markdown
// that explains them (the evidence, from that run's measurements).
type section struct {
	Title   string
	Results []Result
	Notes   []string
}

var benchmarks = []benchmark{
	{"api", benchAPI},
	{"coldstart", benchColdStart},
	{"fanout", benchFanout},
	{"ingest", benchIngest},
	{"mail", benchMail},
	{"budget", benchBudget},
	{"freshness", benchFreshness},
	{"cost", benchCost},
	{"replies", benchReplies},
}

func run(ctx context.Context, o options) (*report, error) {
	sc, ok := scales[o.scale]
	if !ok {
		return nil, fmt.Errorf("-scale %q: want full or small", o.scale)
	}
	if o.runs > 0 {
		sc.Runs = o.runs
	}
	if o.fanoutTenants < 0 {
		return nil, fmt.Errorf("-fanout-tenants %d: want a positive count", o.fanoutTenants)
	}
	if o.fanoutTenants > 0 {
		sc.Tenants = o.fanoutTenants
	}
	var only []string
	for _, n := range strings.Split(o.only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			if !slices.ContainsFunc(benchmarks, func(b benchmark) bool { return b.name == n }) {
				return nil, fmt.Errorf("-only %q: unknown benchmark", n)
			}
			only = append(only, n)
		}
	}
	logf := o.log
	if logf == nil {
		logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }
	}
	e, err := newEnv(ctx, sc, logf)
	if err != nil {
		return nil, err
	}
	for _, c := range strings.Split(o.fresh, ",") {
		if c = strings.TrimSpace(c); c != "" {
			if !slices.Contains(freshChannelNames, c) {
				e.closeAll()
				return nil, fmt.Errorf("-fresh %q: want some of %s", c, strings.Join(freshChannelNames, ", "))
			}
			e.channels = append(e.channels, c)
		}
	}
	defer e.closeAll()

	rep := &report{
		Scale: sc.Name, Runs: sc.Runs, FanoutTenants: sc.Tenants, Command: o.command, Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Date: time.Now().UTC(),
	}
	rep.Commit, rep.Dirty = gitCommit(ctx)
	var errs []error
	for _, b := range benchmarks {
		if len(only) > 0 && !slices.Contains(only, b.name) {
			continue
		}
		var (
			runs    [][]Result
			last    section
			lastRun int
			failed  []string
		)
		for i := 1; i <= sc.Runs && ctx.Err() == nil; i++ {
			logf("== %s (%s scale), run %d of %d", b.name, sc.Name, i, sc.Runs)
			start := time.Now()
			stopProfile := startProfile(o.profileDir, fmt.Sprintf("%s-%d", b.name, i), logf)
			e.run = i
			sec, err := b.run(ctx, e)
			stopProfile()
			e.close() // each run's databases and queues go at once
			if last.Title == "" {
				last.Title = sec.Title
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s run %d: %w", b.name, i, err))
				logf("%s run %d failed after %s: %v", b.name, i, time.Since(start).Round(time.Millisecond), err)
				failed = append(failed, fmt.Sprintf("**Run %d of this benchmark failed:** `%v`", i, oneLine(err)))
				continue
			}
			logf("%s run %d done in %s", b.name, i, time.Since(start).Round(time.Millisecond))
			for j := range sec.Results {
				sec.Results[j] = sec.Results[j].judge()
			}
			runs = append(runs, sec.Results)
			last, lastRun = sec, i
		}
		merged := section{Title: last.Title, Results: mergeRuns(runs)}
		merged.Notes = append(merged.Notes, failed...)
		if lastRun > 0 {
			merged.Notes = append(merged.Notes, fmt.Sprintf("_The evidence below is from run %d of %d; the figures above are medians over %d run(s)._", lastRun, sc.Runs, len(runs)))
			merged.Notes = append(merged.Notes, last.Notes...)
		}
		rep.Sections = append(rep.Sections, merged)
		if ctx.Err() != nil {
			break
		}
	}
	if o.out != "" {
		if werr := os.WriteFile(o.out, []byte(rep.markdown()), 0o644); werr != nil {
			errs = append(errs, werr)
		}
	}
	if o.jsonOut != "" {
		b, jerr := rep.json()
		if jerr == nil {
			jerr = os.WriteFile(o.jsonOut, b, 0o644)
		}
		if jerr != nil {
			errs = append(errs, jerr)
		}
	}
	return rep, errors.Join(errs...)
}

// gitCommit is HEAD's commit and whether the work tree has uncommitted
// changes ("" when git or the repository is missing).
func gitCommit(ctx context.Context) (string, bool) {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false
	}
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), err != nil || len(bytes.TrimSpace(st)) > 0
}

func startProfile(dir, name string, logf func(string, ...any)) func() {
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logf("profile: %v", err)
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
	if err != nil {
		logf("profile: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		logf("profile: %v", err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func oneLine(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
