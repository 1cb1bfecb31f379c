// Command chaos is the soak: many sandbox sellers connected
// through the Connect flow, several poll cycles on a driven sandbox clock,
// faults injected at random (Amazon's 429/500/503/slow/dropped answers,
// expired access tokens, revoked refresh tokens, polltenant containers killed
// between and inside pages, SQS redelivery, Vault and PostgreSQL restarted),
// then an invariant checker comparing the sandbox's ground truth with the
// database, a log scanner and a database scanner for every secret issued.
//
//	go run ./chaos                                  # the short setting (make chaos)
//	go run ./chaos -name long -tenants 100 -cycles 6 -kills 520 -freezes 3 -kill-tenants 130 -mail-kills 60 \
//	    -notify-kills 40 -reply-kills 30 -ses-event-kills 20 -md RELIABILITY.md -json chaos/results-long.json
//
// It starts a private stack (PostgreSQL, Vault, fauxqs) of its own, so that
// it can restart them; `make chaos` installs what they need first (stack setup).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	set := Short()
	fs := flag.NewFlagSet("chaos", flag.ExitOnError)
	set.flags(fs)
	fs.Parse(os.Args[1:])
	set.Out = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, set)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	if !res.Passed {
		os.Exit(1)
	}
}

// Run runs one soak and reports it; err is for a soak that could not run,
// a violated invariant is res.Passed == false.
func Run(ctx context.Context, set Settings) (Result, error) {
	t0 := time.Now()
	res := newResult(set)
	out := &syncBuffer{echo: set.Out, echoFilter: func(p []byte) bool { return strings.HasPrefix(string(p), "chaos:") }}
	w, err := newWorld(ctx, set, out)
	if err != nil {
		return res, err
	}
	defer w.close()
	if path := os.Getenv("CHAOS_DEBUG_LOG"); path != "" {
		// Everything the run logged, for a person debugging it (never in CI).
		defer func() { _ = os.WriteFile(path, out.Bytes(), 0o600) }()
	}
	res.Setting.Seed = w.set.Seed
	w.print("setting %s: %d tenants, %d cycles, seed %d", set.Name, set.Tenants, set.Cycles, w.set.Seed)
	if err := w.connectAll(ctx); err != nil {
		return res, err
	}
	w.stats.add("connect_ms", int(w.stats.ConnectSeconds*1000))
	if set.LoadRequests > 0 {
		lr, err := w.loadAPI(ctx, set.LoadRequests, set.LoadConcurrency, set.LoadVaultDelay)
		if err != nil {
			return res, err
		}
		res.Load = &lr
		w.print("load: %d requests, %d in flight, Vault +%s: %.0f req/s, p50 %.1f ms p95 %.1f ms p99 %.1f ms max %.1f ms; %v",
			lr.Requests, lr.Concurrency, lr.VaultDelay, lr.PerSecond, lr.P50, lr.P95, lr.P99, lr.Max, lr.Status)
	}
	type built struct {
		bin string
		err error
	}
	var bootstrap chan built
	if set.Kills > 0 || set.Freezes > 0 {
		// Built while the soak runs: the real-kill phase runs the bootstrap.
		dir, err := os.MkdirTemp("", "chaos-bootstrap-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(dir)
		bootstrap = make(chan built, 1)
		go func() { bin, err := buildBootstrap(ctx, dir); bootstrap <- built{bin, err} }()
	}
	if err := w.soak(ctx); err != nil {
		return res, err
	}
	if bootstrap != nil {
		b := <-bootstrap
		if b.err != nil {
			return res, fmt.Errorf("build the polltenant bootstrap: %w", b.err)
		}
		k, err := newKiller(ctx, w, b.bin)
		if err != nil {
			return res, fmt.Errorf("real-kill phase: %w", err)
		}
		w.killer = k
		defer k.close()
		if err := k.run(ctx); err != nil {
			return res, fmt.Errorf("real-kill phase: %w", err)
		}
		res.RealKills = k.landed
		res.RealKillsMissed = k.missed
		res.TakeoverSeconds = k.seconds
		res.LocksFreedSeconds = k.locksFreed
		res.KillTenants = len(w.killTenants)
	}
	w.stats.add("settle_cycles", w.stats.Settle)
	v, err := w.checkInvariants(ctx)
	if err != nil {
		return res, fmt.Errorf("check: %w", err)
	}
	if err := w.keybuzzRead(ctx, &v); err != nil {
		return res, fmt.Errorf("KeyBuzz's client: %w", err)
	}
	secrets := w.secretValues()
	sc := newScanner(secrets)
	v.SecretsIssued = sc.n
	if err := w.scanAll(ctx, &v, sc); err != nil {
		return res, err
	}
	res.Invariants = v
	res.Faults = w.stats.Faults
	res.Counters = w.stats.Counters
	res.Crashes = w.stats.Counters["crashes"]
	res.Seconds = time.Since(t0).Seconds()
	// The log scan covers everything printed and logged so far; the table
	// printed next holds only counts and 5-character prefixes.
	w.scanLogs(&res.Invariants, sc)
	res.Passed = res.Invariants.OK()
	table := res.Table()
	fmt.Fprintln(set.Out, table)
	out.record(table)
	if !res.Passed {
		w.print("FAIL: an invariant is violated (see the table)")
	}
	if set.MarkdownPath != "" {
		if err := res.writeMarkdown(set.MarkdownPath); err != nil {
			return res, err
		}
	}
	if set.JSONPath != "" {
		if err := res.writeJSON(set.JSONPath); err != nil {
			return res, err
		}
	}
	return res, nil
}
