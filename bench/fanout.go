package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

// senderParallel is pollqueue.NewSender's default number of calls in
// flight, which the fan-out uses; the ceiling gets the same.
const senderParallel = 12

// benchFanout: sc.Tenants CONNECTED due connections, one pollfanout run
// (poll.Fanout.Run as functions/pollfanout builds it: postgres.Store claims,
// pollqueue.Sender) into a queue of its own on the emulator, against the
// emulator's ceiling (a bare parallel SendMessageBatch loop, no database)
// and a naive loop of one SendMessage per tenant.
func benchFanout(ctx context.Context, e *env) (section, error) {
	sec := section{Title: "1. Fan-out (pollfanout into the SQS emulator)"}
	sc := e.sc
	trace := newSQLTrace()
	store, _, err := e.freshStore(ctx, "fanout", 2, nil, trace) // Lambda's pool size
	if err != nil {
		return sec, err
	}
	pool := store.Pool()
	t0 := time.Now()
	if _, err := pool.Exec(ctx, `
INSERT INTO "MarketplaceConnection" ("tenantId", "type", "status", "region", "marketplaceId", "sellingPartnerId", "connectedAt", "nextPollAt")
SELECT 'bench-fanout-' || g, 'AMAZON', 'CONNECTED', 'EU', 'A13V1IB3VIYZZH', 'ASELLER' || g, now() - interval '1 day',
       now() - interval '1 minute' - g * interval '1 millisecond'
FROM generate_series(1, $1) g`, sc.Tenants); err != nil {
		return sec, fmt.Errorf("seed connections: %w", err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE "MarketplaceConnection"`); err != nil {
		return sec, err
	}
	e.logf("fanout: %d connections seeded in %s", sc.Tenants, time.Since(t0).Round(time.Millisecond))

	// The same bodies the fan-out sends (ids of the same shape).
	var ids []struct{ tenant, conn string }
	rows, err := pool.Query(ctx, `SELECT "tenantId", "id" FROM "MarketplaceConnection" ORDER BY "nextPollAt"`)
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

	// Alternate ceiling and fan-out twice, each into a fresh queue, and
	// keep each side's better round.
	var ceiling, fanout float64
	var lastRun poll.FanoutResult
	var runTime time.Duration
	for round := 0; round < 2; round++ {
		q, err := e.freshQueue(ctx, "ceiling")
		if err != nil {
			return sec, err
		}
		d, err := ceilingLoop(ctx, e.sqs, q, bodies)
		if err != nil {
			return sec, fmt.Errorf("ceiling: %w", err)
		}
		ceiling = max(ceiling, rate(len(bodies), d))
		e.logf("fanout: ceiling round %d: %d messages in %s (%.0f msg/s)", round+1, len(bodies), d.Round(time.Millisecond), rate(len(bodies), d))
		e.deleteQueue(ctx, q)

		if _, err := pool.Exec(ctx, `UPDATE "MarketplaceConnection" SET "pollClaimedUntil" = NULL`); err != nil {
			return sec, err
		}
		q, err = e.freshQueue(ctx, "fanout")
		if err != nil {
			return sec, err
		}
		f := poll.NewFanout(store, pollqueue.NewSender(e.sqs, q, 0), poll.FanoutConfig{}, nil, e.quiet, nil)
		start := time.Now()
		res, err := f.Run(ctx)
		d = time.Since(start)
		if err != nil {
			return sec, fmt.Errorf("fan-out run: %w", err)
		}
		if res.Claimed != sc.Tenants || res.Sent != sc.Tenants || res.Failed != 0 {
			return sec, fmt.Errorf("fan-out run: claimed %d, sent %d, failed %d of %d connections", res.Claimed, res.Sent, res.Failed, sc.Tenants)
		}
		depth, err := e.queueDepth(ctx, q)
		if err != nil {
			return sec, err
		}
		if depth != sc.Tenants {
			return sec, fmt.Errorf("fan-out run: the queue holds %d messages, want %d", depth, sc.Tenants)
		}
		if r := rate(res.Sent, d); r > fanout {
			fanout, lastRun, runTime = r, res, d
		}
		e.logf("fanout: pollfanout round %d: %d messages in %s (%.0f msg/s)", round+1, res.Sent, d.Round(time.Millisecond), rate(res.Sent, d))
		e.deleteQueue(ctx, q)
	}

	q, err := e.freshQueue(ctx, "naive")
	if err != nil {
		return sec, err
	}
	n := min(sc.NaiveSample, len(bodies))
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(bodies[i])}); err != nil {
			return sec, fmt.Errorf("naive: %w", err)
		}
	}
	naiveD := time.Since(start)
	naive := rate(n, naiveD)
	e.logf("fanout: naive: %d messages in %s (%.0f msg/s)", n, naiveD.Round(time.Millisecond), naive)
	e.deleteQueue(ctx, q)

	// Evidence: the claim statement's plan for one chunk (rolled back).
	trace.reset()
	claimLat, err := timeClaims(ctx, store, sc.Tenants)
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
	if err := pool.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd, (SELECT count(*) FROM pg_indexes WHERE tablename = 'MarketplaceConnection')
FROM pg_stat_user_tables WHERE relname = 'MarketplaceConnection'`).Scan(&upd, &hot, &indexes); err != nil {
		return sec, err
	}
	sec.Notes = append(sec.Notes, fmt.Sprintf(`Heap-only (HOT) updates of "MarketplaceConnection" over the whole benchmark
(claims and resets, pg_stat_user_tables, counters lag slightly): %d of %d updates
were HOT. A non-HOT update writes a new entry into every index of the table
(%d indexes here), which is what the claim statement's Update node spends its
time on in the plan above. The claimed column is not indexed, so the updates
could be HOT if the pages had room: the table has the default fillfactor
(100), and freshly inserted rows fill their pages.`, hot, upd, indexes))

	rc, rn := ratio(fanout, ceiling), ratio(fanout, naive)
	sec.Results = append(sec.Results, Result{
		Name: "fanout_throughput", Value: fanout, Unit: "msg/s",
		Baselines: map[string]float64{"emulator_ceiling": ceiling, "naive_one_by_one": naive},
		Ratios:    map[string]float64{"emulator_ceiling": rc, "naive_one_by_one": rn},
		Goal:      "≥ 0.8 × emulator_ceiling and ≥ 10 × naive_one_by_one", Met: rc >= 0.8 && rn >= 10,
	}, Result{
		Name: "fanout_run_time", Value: ms(runTime), Unit: "ms",
		Baselines: map[string]float64{"schedule_period": 60_000}, Ratios: map[string]float64{"schedule_period": ratio(ms(runTime), 60_000)},
		Goal: "report only (well inside the 60 s period)", Met: true,
	})
	sec.Notes = append(sec.Notes, fmt.Sprintf(`%d CONNECTED connections, all due, in a fresh database; one `+"`poll.Fanout.Run`"+`
as functions/pollfanout builds it (postgres.Store on a 2-connection
postgres.Open pool, pollqueue.NewSender with its default %d calls in flight,
FanoutConfig defaults: claims of 1000) into a fresh queue of the fauxqs
emulator; the run claimed %d and sent %d (failed %d), and the queue held all of
them afterwards. The ceiling sends the same %d message bodies with a bare
loop of SendMessageBatch (10 per call, %d calls in flight, no database); the
naive baseline sends %d of them with one SendMessage per message, one after the
other (its rate is what counts). Ceiling and fan-out alternate twice, each
into a fresh queue, and each side's better round is kept.

Claiming alone (ClaimDue in chunks of 1000 on the same database, no SQS):
%d connections in %s (%.0f claims/s). Statements recorded (pgx tracer on the
store's pool):

%s
The first chunk's plan (EXPLAIN ANALYZE with the arguments the store sent,
rolled back):

%s`, sc.Tenants, senderParallel, lastRun.Claimed, lastRun.Sent, lastRun.Failed, len(bodies), senderParallel, n,
		sc.Tenants, claimLat.Round(time.Millisecond), rate(sc.Tenants, claimLat), claimStats, codeBlock(plan)))
	if rn < 10 {
		sec.Notes = append(sec.Notes, fmt.Sprintf(`**Below 10 × the naive loop (%.2f).** The emulator bounds it: on this
machine its own ceiling (bare parallel SendMessageBatch, no database) is
only %.2f × the naive one-by-one loop, so no sender can reach 10 × naive
here. fauxqs is a single Node.js process: one SendMessage round trip on
loopback costs about %.2f ms, and a batch of 10 with %d in flight saturates
its one event loop rather than the network. Against real SQS (a network
round trip of several ms per call, server-side parallelism) batching and
parallel calls multiply throughput far more; what would lift the figure
here is an emulator that scales with cores, not a change to the fan-out.`,
			rn, ratio(ceiling, naive), 1000/max(naive, 1), senderParallel))
	}
	if rc < 0.8 {
		sec.Notes = append(sec.Notes, fmt.Sprintf(`**Below 0.8 of the ceiling (%.2f).** The fan-out overlaps claiming with
sending, so it pays the claims only where the sender waits for them; run
with `+"`-profile-dir`"+` to see where the CPU goes (fauxqs is a Node process on
the same 2 cores, so every CPU-second the Go side and PostgreSQL spend is
taken from the emulator).`, rc))
	}
	return sec, nil
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
func timeClaims(ctx context.Context, store *postgres.Store, n int) (time.Duration, error) {
	if _, err := store.Pool().Exec(ctx, `UPDATE "MarketplaceConnection" SET "pollClaimedUntil" = NULL`); err != nil {
		return 0, err
	}
	start := time.Now()
	total := 0
	var cursor marketplace.ClaimCursor
	for {
		jobs, next, err := store.ClaimDue(ctx, 1000, time.Hour, cursor)
		if err != nil {
			return 0, err
		}
		cursor = next
		total += len(jobs)
		if len(jobs) < 1000 {
			break
		}
	}
	d := time.Since(start)
	if total != n {
		return 0, fmt.Errorf("claimed %d of %d", total, n)
	}
	return d, nil
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
	if _, err := store.Pool().Exec(ctx, `UPDATE "MarketplaceConnection" SET "pollClaimedUntil" = NULL`); err != nil {
		return "", err
	}
	return explainStmt(ctx, store.Pool(), first)
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
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+sql, args...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out, nil
}
