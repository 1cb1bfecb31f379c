package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

// senderParallel is pollsender.NewSender's default number of calls in
// flight, which the fan-out uses; the ceiling gets the same.
const senderParallel = 12

// benchFanout: sc.Tenants CONNECTED due connections, one pollfanout run
// (poll.Fanout.Run as functions/pollfanout builds it: postgres.Store claims,
// pollsender.Sender) into a queue of its own on the emulator, against the
// emulator's ceiling (a bare parallel SendMessageBatch loop, no database)
// and a naive loop of one SendMessage per tenant.
func benchFanout(ctx context.Context, e *env) (section, error) {
	sec := section{Title: "Fan-out (pollfanout into the SQS emulator)"}
	sc := e.sc
	trace := newSQLTrace()
	store, _, err := e.freshStore(ctx, "fanout", fanoutPoolSize, nil, trace) // Lambda's pool size
	if err != nil {
		return sec, err
	}
	pool := poolOf(store)
	t0 := time.Now()
	if err := setupExec(ctx, pool, `
WITH g AS MATERIALIZED (SELECT g, keybuzz_amazon.cuid() AS id FROM generate_series(1, $1::int) g), mc AS (
    INSERT INTO public."MarketplaceConnection" ("id", "tenantId", "type", "status", "region", "marketplaceId", "createdAt", "updatedAt")
    SELECT id, 'bench-fanout-' || g, 'AMAZON', 'CONNECTED', 'EU', 'A13V1IB3VIYZZH', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC' FROM g
)
INSERT INTO keybuzz_amazon."Connection" ("connectionId", "tenantId", "sellingPartnerId", "sellerRegion", "connectedAt", "pollable", "nextPollAt")
SELECT id, 'bench-fanout-' || g, 'ASELLER' || g, 'EU', now() - interval '1 day', true, now() - interval '1 minute' - g * interval '1 millisecond'
FROM g`, sc.Tenants); err != nil {
		return sec, fmt.Errorf("seed connections: %w", err)
	}
	if err := setupExec(ctx, pool, `ANALYZE public."MarketplaceConnection"; ANALYZE keybuzz_amazon."Connection"`); err != nil {
		return sec, err
	}
	e.logf("fanout: %d connections seeded in %s", sc.Tenants, time.Since(t0).Round(time.Millisecond))

	// The same bodies the fan-out sends (ids of the same shape).
	var ids []struct{ tenant, conn string }
	rows, err := pool.Query(ctx, `SELECT "tenantId", "connectionId" FROM keybuzz_amazon."Connection" ORDER BY "nextPollAt"`)
	if err != nil {
		return sec, err
	}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return sec, err
		}
		ids = append(ids, struct{ tenant, conn string }{t, c})
	}
	if err := rows.Err(); err != nil {
		return sec, err
	}
	now := time.Now().UTC()
	bodies := make([]string, len(ids))
	for i, x := range ids {
		bodies[i] = pollqueue.Message{TenantID: x.tenant, ConnectionID: x.conn, EnqueuedAt: now}.Encode()
	}

	// One round of the ceiling and one of the fan-out, each into a fresh
	// queue, in the run's order (the baseline first in odd runs).
	// CPU of the emulator, PostgreSQL and this process while each side
	// ran: what bounds a side is the one that kept its cores busy.
	meter := newCPUMeter([][2]string{{"fauxqs", os.Getenv("AWS_ENDPOINT_URL_SQS")}, {"PostgreSQL", e.baseURL}, {"bench process (claims, sender, SDK)", "self"}})
	var ceilingCPU, runCPU cpuUse
	var (
		ceiling, fanout, naive float64
		n                      int
		naiveD                 time.Duration
		lastRun                poll.FanoutResult
		runTime                time.Duration
		counted                = &inflightSQS{api: e.sqs}
	)
	ceilingSide := func() error {
		q, err := e.freshQueue(ctx, "ceiling")
		if err != nil {
			return err
		}
		before := meter.sample()
		d, err := ceilingLoop(ctx, e.sqs, q, bodies)
		if err != nil {
			return fmt.Errorf("ceiling: %w", err)
		}
		ceilingCPU = meter.since(before, d)
		ceiling = rate(len(bodies), d)
		e.logf("fanout: ceiling: %d messages in %s (%.0f msg/s)", len(bodies), d.Round(time.Millisecond), ceiling)
		e.deleteQueue(ctx, q)

		q, err = e.freshQueue(ctx, "naive")
		if err != nil {
			return err
		}
		n = min(sc.NaiveSample, len(bodies))
		start := time.Now()
		for i := 0; i < n; i++ {
			if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(bodies[i])}); err != nil {
				return fmt.Errorf("naive: %w", err)
			}
		}
		naiveD = time.Since(start)
		naive = rate(n, naiveD)
		e.logf("fanout: naive: %d messages in %s (%.0f msg/s)", n, naiveD.Round(time.Millisecond), naive)
		e.deleteQueue(ctx, q)
		return nil
	}
	realSide := func() error {
		if err := resetClaims(ctx, pool); err != nil {
			return err
		}
		q, err := e.freshQueue(ctx, "fanout")
		if err != nil {
			return err
		}
		f := poll.NewFanout(store, pollsender.NewSender(counted, q), poll.WithLogger(e.quiet))
		trace.reset()
		before := meter.sample()
		start := time.Now()
		lastRun, err = f.Run(ctx)
		runTime = time.Since(start)
		runCPU = meter.since(before, runTime)
		if err != nil {
			return fmt.Errorf("fan-out run: %w", err)
		}
		if lastRun.Claimed != sc.Tenants || lastRun.Sent != sc.Tenants || lastRun.Failed != 0 {
			return fmt.Errorf("fan-out run: claimed %d, sent %d, failed %d of %d connections", lastRun.Claimed, lastRun.Sent, lastRun.Failed, sc.Tenants)
		}
		depth, err := e.queueDepth(ctx, q)
		if err != nil {
			return err
		}
		if depth != sc.Tenants {
			return fmt.Errorf("fan-out run: the queue holds %d messages, want %d", depth, sc.Tenants)
		}
		fanout = rate(lastRun.Sent, runTime)
		e.logf("fanout: pollfanout: %d messages in %s (%.0f msg/s)", lastRun.Sent, runTime.Round(time.Millisecond), fanout)
		e.deleteQueue(ctx, q)
		return nil
	}
	order, err := e.inOrder(ceilingSide, realSide)
	if err != nil {
		return sec, err
	}
	claimCalls, claimTotal := 0, time.Duration(0)
	if st, ok := trace.find(`"pollClaimedUntil" = $2`); ok {
		claimCalls, claimTotal = st.Calls, st.Total
	}

	// Evidence: the claim statement's plan for one chunk (rolled back).
	trace.reset()
	claimLat, chunks, err := timeClaims(ctx, store, sc.Tenants)
	if err != nil {
		return sec, err
	}
	claimStats := trace.table()
	plan := "(claim statement not recorded)"
	if st, ok := trace.find(`"pollClaimedUntil" = $2`); ok {
		if plan, err = explainFirstChunk(ctx, store, trace, st); err != nil {
			return sec, fmt.Errorf("explain claim: %w", err)
		}
	}

	var upd, hot int64
	var indexes int
	var relopts []string
	if err := pool.QueryRow(ctx, `SELECT s.n_tup_upd, s.n_tup_hot_upd,
       (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid), COALESCE(c.reloptions, '{}')
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.schemaname = 'keybuzz_amazon' AND s.relname = 'Connection'`).Scan(&upd, &hot, &indexes, &relopts); err != nil {
		return sec, err
	}
	fillfactor := "the default fillfactor (100; no reloptions on the table)"
	for _, o := range relopts {
		if v, ok := strings.CutPrefix(o, "fillfactor="); ok {
			fillfactor = "fillfactor " + v + " (pg_class.reloptions)"
		}
	}
	claimIndexed, err := columnIndexed(ctx, pool, `keybuzz_amazon."Connection"`, "pollClaimedUntil")
	if err != nil {
		return sec, err
	}
	indexedText := "is not in any index"
	if claimIndexed {
		indexedText = "is in an index (so its updates cannot be HOT)"
	}
	sec.Notes = append(sec.Notes, fmt.Sprintf(`Heap-only (HOT) updates of keybuzz_amazon."Connection" over this run (claims and
resets; pg_stat_user_tables, whose counters lag slightly): %d of %d updates
were HOT. The table has %d indexes and %s, read from the catalog;
"pollClaimedUntil", the column a claim sets, %s (pg_index).`, hot, upd, indexes, fillfactor, indexedText))

	rc, rn := ratio(fanout, ceiling), ratio(fanout, naive)
	peak := counted.peak.Load()
	sec.Results = append(sec.Results, Result{
		Name: "fanout_throughput", Value: fanout, Unit: "msg/s",
		Baselines: map[string]float64{"emulator_ceiling": ceiling, "naive_one_by_one": naive},
		Ratios:    map[string]float64{"emulator_ceiling": rc, "naive_one_by_one": rn},
		Goal:      "≥ 0.8 × emulator_ceiling and ≥ 10 × naive_one_by_one",
		checks:    []check{atLeast("ratio:emulator_ceiling", 0.8), atLeast("ratio:naive_one_by_one", 10)},
		miss:      "the claims and the sender cost more than a fifth of what the emulator alone takes, or batching and parallel calls gain less than tenfold",
		explain: func(m Result) string {
			var why []string
			if m.Ratios["emulator_ceiling"] < 0.8 {
				why = append(why, fmt.Sprintf(`Against the emulator's ceiling it reaches %.2f (median; spread %s–%s).
In the last run the fan-out's sender had at most %d SendMessageBatch calls in
flight (counted on its SQS client) against the ceiling loop's %d, and it
claimed with %d statements that took %.0f ms in all (pgx tracer), against a
run of %.0f ms: fauxqs, PostgreSQL and the Go process share %d cores, so
what the claims and the sender's own work cost is taken from the emulator.`,
					m.Ratios["emulator_ceiling"], num(m.RatioSpread["emulator_ceiling"][0]), num(m.RatioSpread["emulator_ceiling"][1]),
					peak, senderParallel, claimCalls, ms(claimTotal), ms(runTime), runtime.NumCPU()))
			}
			if m.Ratios["naive_one_by_one"] < 10 {
				reach := "so no sender can reach 10 × naive here"
				if ratio(ceiling, naive) >= 10 {
					reach = "so the emulator leaves room for 10 × naive and the gap is the fan-out's"
				}
				why = append(why, fmt.Sprintf(`Against the naive loop it reaches %.2f (median): the emulator's own
ceiling (bare parallel SendMessageBatch, no database) is %.2f × the naive loop
in the last run, %s; one SendMessage round trip cost %.2f ms on average in
that loop.`, m.Ratios["naive_one_by_one"], ratio(ceiling, naive), reach, 1000/max(naive, 1)))
			}
			return strings.Join(why, " ")
		},
	}, Result{
		Name: "fanout_run_time", Value: ms(runTime), Unit: "ms",
		Baselines: map[string]float64{"schedule_period": schedulePeriodMS}, Ratios: map[string]float64{"schedule_period": ratio(ms(runTime), schedulePeriodMS)},
		Goal: "report only",
	}, fanoutMillion(sc.Tenants, runTime, ceiling, rate(sc.Tenants, claimLat), cpuBound(runCPU, ceilingCPU)))
	sec.Notes = append(sec.Notes, fmt.Sprintf(`%d CONNECTED connections, all due, in a fresh database; one `+"`poll.Fanout.Run`"+`
as functions/pollfanout builds it (postgres.Store on a %d-connection pool
configured as postgres.Open, pollsender.NewSender with its default
parallelism, FanoutConfig defaults) into a fresh queue of the fauxqs
emulator: the run claimed %d with %d claim statements and sent %d (failed %d),
with at most %d SendMessageBatch calls in flight (counted on its SQS client),
and the queue held all of them afterwards. The ceiling sends the same %d
message bodies with a bare loop of SendMessageBatch (10 per call, %d calls in
flight, no database); the naive baseline sends %d of them with one SendMessage
per message, one after the other (its rate is what counts). Order in this
run: %s (odd runs measure the baselines first, even runs the fan-out). The
schedule period is MARKETPLACE_POLL_INTERVAL_SECONDS as config.Load reads
it here (%s).

%s

Claiming alone (ClaimDue in chunks of 1000 on the same database, no SQS):
%d connections in %s (%.0f claims/s), the table vacuumed first.%s Statements
recorded (pgx tracer on the store's pool):

%s
The first chunk's plan (EXPLAIN ANALYZE with the arguments the store sent,
rolled back):

%s`, sc.Tenants, fanoutPoolSize, lastRun.Claimed, claimCalls, lastRun.Sent, lastRun.Failed, peak, len(bodies), senderParallel, n, order,
		time.Duration(schedulePeriodMS)*time.Millisecond, cpuBound(runCPU, ceilingCPU),
		sc.Tenants, claimLat.Round(time.Millisecond), rate(sc.Tenants, claimLat), chunkTrend(chunks), claimStats, codeBlock(plan)))
	return sec, nil
}

// setupExec runs a statement of the benchmark's own setup (seeding, resets)
// on one of pool's connections without the database's statement_timeout
// (migrations set 20 s, the connector's longest statement; a million rows
// take longer), then restores it.
func setupExec(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) error {
	return pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
		if _, err := c.Exec(ctx, `SET statement_timeout = 0`); err != nil {
			return err
		}
		_, err := c.Exec(ctx, sql, args...)
		if _, rerr := c.Exec(ctx, `RESET statement_timeout`); err == nil {
			err = rerr
		}
		return err
	})
}

// million is the fleet the fan-out must serve inside one schedule period.
const million = 1_000_000

// fanoutMillion is the fan-out's time for a million due connections: the
// measured run when it had a million (-fanout-tenants 1000000), else the
// measured run scaled linearly to a million (claims in chunks and sends in
// batches: both grow with the count). Its goal is one schedule period; a
// miss says which of the two bounds it, from the ceiling's and the claims'
// own rates measured in the same run.
func fanoutMillion(tenants int, runTime time.Duration, ceiling, claimRate float64, cpu string) Result {
	scale := float64(million) / float64(max(tenants, 1))
	secs := math.Round(runTime.Seconds()*scale*10) / 10
	period := schedulePeriodMS / 1000
	how := "measured"
	if tenants != million {
		how = fmt.Sprintf("projected linearly from %d", tenants)
	}
	return Result{
		Name: "fanout_time_per_million", Value: secs, Unit: "s per 1M tenants",
		Baselines: map[string]float64{"schedule_period": period}, Ratios: map[string]float64{"schedule_period": ratio(secs, period)},
		Goal:   fmt.Sprintf("≤ 1 × schedule_period (1,000,000 due connections fanned out inside one period; %s)", how),
		checks: []check{atMost("ratio:schedule_period", 1)},
		miss:   "a million due connections take longer than one schedule period to claim and send",
		explain: func(m Result) string {
			ceil1M, claim1M := float64(million)/max(ceiling, 1), float64(million)/max(claimRate, 1)
			bound := fmt.Sprintf("the emulator: its own ceiling alone (bare SendMessageBatch, no database) would need %.0f s for a million, more than the period, so no sender reaches the goal on this emulator", ceil1M)
			switch {
			case ceil1M <= period && claim1M > period:
				bound = fmt.Sprintf("the claims: claiming alone (no SQS) would need %.0f s for a million", claim1M)
			case ceil1M <= period:
				bound = fmt.Sprintf("neither alone: the emulator's ceiling would need %.0f s and the claims alone %.0f s for a million; together, on the same cores, they exceed the period", ceil1M, claim1M)
			}
			return fmt.Sprintf("A million would take %s s (%s), %.2f × the %s s period. Bound by %s. %s",
				num(m.Value), how, m.Ratios["schedule_period"], num(period), bound, cpu)
		},
	}
}

// cpuBound says who kept the cores busy during the fan-out run and the
// ceiling (last run), from /proc: fauxqs runs its JavaScript on one
// thread, so one core of it is the most the emulator can give.
func cpuBound(run, ceiling cpuUse) string {
	if len(run.names) == 0 {
		return ""
	}
	who, cores := run.busiest()
	s := fmt.Sprintf("CPU while the fan-out ran (last run; /proc, the process behind each server's port and its children): %s; while the ceiling ran: %s.", run.text(), ceiling.text())
	if f := run.cores("fauxqs"); f >= 0.85 {
		s += fmt.Sprintf(" fauxqs (Node.js: its JavaScript on one thread) kept %.2f of a core busy, so the emulator's single thread is the bound on this machine; AWS's SQS has no such ceiling (docs/scale.md).", f)
	} else if who != "" {
		s += fmt.Sprintf(" The busiest was %s (%.2f cores) on a %d-core machine shared with the other sessions' work.", who, cores, runtime.NumCPU())
	}
	return s
}

// fanoutPoolSize is the pool the fan-out's store gets: boot.LambdaMaxConns.
const fanoutPoolSize = boot.LambdaMaxConns

// schedulePeriodMS is the poll schedule's period as the configuration
// reads it (MARKETPLACE_POLL_INTERVAL_SECONDS, its default when unset).
var schedulePeriodMS = func() float64 {
	cfg, _ := config.Load(os.Getenv) // PollInterval is set whatever else fails
	return float64(cfg.PollInterval.Milliseconds())
}()

// inflightSQS counts the SendMessageBatch calls in flight through it.
type inflightSQS struct {
	api       pollsender.BatchAPI
	now, peak atomic.Int64
}

func (c *inflightSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	n := c.now.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	defer c.now.Add(-1)
	return c.api.SendMessageBatch(ctx, in, opts...)
}

// columnIndexed is whether any index of table covers column.
func columnIndexed(ctx context.Context, pool interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, table, column string) (bool, error) {
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = $1::text::regclass AND a.attname = $2`, table, column).Scan(&n)
	return n > 0, err
}

// ceilingLoop sends bodies in batches of 10 with senderParallel calls in
// flight: the most the emulator takes on this machine.
func ceilingLoop(ctx context.Context, client *sqs.Client, queueURL string, bodies []string) (time.Duration, error) {
	batches := make(chan []string, senderParallel)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		lastErr error
	)
	start := time.Now()
	for range senderParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				entries := make([]types.SendMessageBatchRequestEntry, len(b))
				for i, body := range b {
					entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(body)}
				}
				out, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
				if err == nil && len(out.Failed) > 0 {
					err = fmt.Errorf("%d entries failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
				}
				if err != nil {
					mu.Lock()
					lastErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < len(bodies); i += 10 {
		batches <- bodies[i:min(i+10, len(bodies))]
	}
	close(batches)
	wg.Wait()
	return time.Since(start), lastErr
}

// timeClaims resets the claims and times claiming every connection with
// the store's ClaimDue in the fan-out's chunks, without SQS.
func timeClaims(ctx context.Context, store *postgres.Store, n int) (time.Duration, []time.Duration, error) {
	if err := resetClaims(ctx, poolOf(store)); err != nil {
		return 0, nil, err
	}
	start := time.Now()
	total := 0
	var chunks []time.Duration
	var cursor marketplace.ClaimCursor
	for {
		t0 := time.Now()
		jobs, next, err := store.ClaimDue(ctx, 1000, time.Hour, cursor)
		if err != nil {
			return 0, nil, err
		}
		chunks = append(chunks, time.Since(t0))
		cursor = next
		total += len(jobs)
		if len(jobs) < 1000 {
			break
		}
	}
	d := time.Since(start)
	if total != n {
		return 0, nil, fmt.Errorf("claimed %d of %d", total, n)
	}
	return d, chunks, nil
}

// resetClaims makes every connection due again (drops the claims a run
// made), then vacuums the table, as autovacuum would between two ticks, so
// a claim run does not walk the reset's dead row versions.
func resetClaims(ctx context.Context, pool *pgxpool.Pool) error {
	if err := setupExec(ctx, pool, `UPDATE keybuzz_amazon."Connection" SET "pollClaimedUntil" = NULL WHERE "pollClaimedUntil" IS NOT NULL`); err != nil {
		return err
	}
	return setupExec(ctx, pool, `VACUUM (ANALYZE) keybuzz_amazon."Connection"`)
}

// chunkTrend says how a claim chunk's time moves through the run: the
// mean of the first and of the last tenth of the chunks.
func chunkTrend(chunks []time.Duration) string {
	if len(chunks) < 10 {
		return ""
	}
	mean := func(ds []time.Duration) float64 {
		var t time.Duration
		for _, d := range ds {
			t += d
		}
		return ms(t) / float64(max(len(ds), 1))
	}
	k := len(chunks) / 10
	return fmt.Sprintf(" A chunk took %.2f ms on average in the first tenth of the run and %.2f ms in the last tenth.", mean(chunks[:k]), mean(chunks[len(chunks)-k:]))
}

// explainFirstChunk runs the store's first ClaimDue once more to record its
// arguments, drops the claims it made, and EXPLAINs that statement with
// them.
func explainFirstChunk(ctx context.Context, store *postgres.Store, trace *sqlTrace, st stmtStats) (string, error) {
	trace.reset()
	if _, _, err := store.ClaimDue(ctx, 1000, time.Hour, marketplace.ClaimCursor{}); err != nil {
		return "", err
	}
	first, ok := trace.find(st.SQL)
	if !ok {
		return "", fmt.Errorf("first chunk not recorded")
	}
	if err := setupExec(ctx, poolOf(store), `UPDATE keybuzz_amazon."Connection" SET "pollClaimedUntil" = NULL WHERE "pollClaimedUntil" IS NOT NULL`); err != nil {
		return "", err
	}
	return explainStmt(ctx, poolOf(store), first)
}

// explain runs EXPLAIN (ANALYZE, BUFFERS) of sql in a transaction it rolls
// back, and returns the plan.
func explain(ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}, sql string, args ...any) (string, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	return explainIn(ctx, tx, sql, args...)
}

// explainIn runs EXPLAIN (ANALYZE, BUFFERS) of sql inside tx and returns
// the plan, the run's ids (cuids, 25 characters of hex after "c") printed
// as '<id>': they say nothing about the plan and read like commit hashes
// in the report.
func explainIn(ctx context.Context, tx pgx.Tx, sql string, args ...any) (string, error) {
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+sql, args...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	return runID.ReplaceAllString(strings.Join(lines, "\n")+"\n", "'<id>'"), nil
}

// runID is a quoted cuid literal, as a plan prints a parameter's value.
var runID = regexp.MustCompile(`'c[0-9a-f]{24}'`)
