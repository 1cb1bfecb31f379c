// Command bench measures the connector at scale against the real services
// of the local stack (`make bench` runs it inside `stack run --profile
// test`): API, cold start, fan-out, ingestion, mail intake, rate-budget
// use, freshness (push, mail and poll), cost and replies. Every
// figure is a ratio against baselines measured in the same run on the same
// machine, because the machines here are shared and noisy; each benchmark
// runs several times (-runs) and the medians count.
//
//	go run ./bench [-scale full|small] [-runs 3] [-only api,coldstart,fanout,ingest,mail,budget,freshness,cost,replies]
//	               [-fresh poll,push,mail,poll_steady] [-fanout-tenants 100000]
//	               [-out BENCHMARKS.md] [-json bench/results.json]
//
// It prints a table and writes BENCHMARKS.md and bench/results.json. Each
// run of a benchmark works in its own freshly created and migrated database
// and its own SQS queue, dropped when the run ends, so it disturbs nobody.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	var o options
	flag.StringVar(&o.scale, "scale", "full", "full (the issue's sizes) or small (seconds, as in bench_test.go)")
	flag.StringVar(&o.only, "only", "", "comma-separated benchmarks to run ("+benchmarkNames()+"); empty: all")
	flag.StringVar(&o.fresh, "fresh", "", "comma-separated freshness channels to run ("+strings.Join(freshChannelNames, ", ")+"); empty: the scale's")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "markdown report to write; empty: none")
	flag.StringVar(&o.jsonOut, "json", "bench/results.json", "JSON results to write; empty: none")
	flag.IntVar(&o.fanoutTenants, "fanout-tenants", 0, "due connections one fan-out run claims and sends (0: the scale's: full 1000000, small 1000); below a million, the goal's million is projected linearly")
	flag.IntVar(&o.runs, "runs", 0, "runs of each benchmark, medians reported (0: the scale's: full 3, small 1)")
	flag.StringVar(&o.profileDir, "profile-dir", "", "write a CPU profile of each benchmark into this folder")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o.command = strings.TrimSpace("go run ./bench " + strings.Join(os.Args[1:], " "))
	if cmd := os.Getenv("BENCH_COMMAND"); cmd != "" {
		o.command = cmd
	}
	rep, err := run(ctx, o)
	if rep != nil {
		fmt.Println()
		fmt.Print(rep.table())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func benchmarkNames() string {
	names := make([]string, len(benchmarks))
	for i, b := range benchmarks {
		names[i] = b.name
	}
	return strings.Join(names, ", ")
}
