package main

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	// API.
	APIRequests    int // per route and per server
	APIConcurrency int
	APITenants     int
	// Rate budget.
	SandboxTime time.Duration
	// Cold start.
	Functions []string
	ColdRuns  int // cold starts per binary; the median counts
}

var scales = map[string]scale{
	"full": {
		Name: "full", Tenants: 100_000, NaiveSample: 5_000,
		Events: 100_000, PageSize: 100, RowByRowSample: 10_000,
		APIRequests: 4_000, APIConcurrency: 8, APITenants: 1_000,
		SandboxTime: 30 * time.Minute,
		Functions:   []string{"oauthstart", "oauthcallback", "status", "pollfanout", "polltenant"},
		ColdRuns:    5,
	},
	"small": {
		Name: "small", Tenants: 1_000, NaiveSample: 200,
		Events: 1_000, PageSize: 100, RowByRowSample: 300,
		APIRequests: 200, APIConcurrency: 4, APITenants: 50,
		SandboxTime: 5 * time.Minute,
		Functions:   []string{"status"},
		ColdRuns:    1,
	},
}

// benchmark is one of the five.
type benchmark struct {
	name string
	run  func(ctx context.Context, e *env) (section, error)
}

// section is what a benchmark reports: its rows, and markdown that explains
// them (what bounds a figure, the evidence).
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
	{"budget", benchBudget},
}

func run(ctx context.Context, o options) (*report, error) {
	sc, ok := scales[o.scale]
	if !ok {
		return nil, fmt.Errorf("-scale %q: want full or small", o.scale)
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
	defer e.close()

	rep := &report{
		Scale: sc.Name, Command: o.command, Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Date: time.Now().UTC(),
	}
	var errs []error
	for _, b := range benchmarks {
		if len(only) > 0 && !slices.Contains(only, b.name) {
			continue
		}
		logf("== %s (%s scale)", b.name, sc.Name)
		start := time.Now()
		stopProfile := startProfile(o.profileDir, b.name, logf)
		sec, err := b.run(ctx, e)
		stopProfile()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.name, err))
			logf("%s failed after %s: %v", b.name, time.Since(start).Round(time.Millisecond), err)
			sec.Notes = append(sec.Notes, fmt.Sprintf("**This benchmark failed:** `%v`", oneLine(err)))
		} else {
			logf("%s done in %s", b.name, time.Since(start).Round(time.Millisecond))
		}
		rep.Sections = append(rep.Sections, sec)
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
