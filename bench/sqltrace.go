package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// sqlTrace is a pgx.QueryTracer that records, per distinct statement of
// the code under test, how often it ran, how long it took in total (as the
// client sees it: round trip included), and the arguments of its last run,
// so the benchmark can EXPLAIN exactly what the store sent without copying
// its SQL.
type sqlTrace struct {
	mu    sync.Mutex
	stats map[string]*stmtStats
}

type stmtStats struct {
	SQL   string
	Calls int
	Total time.Duration
	Args  []any
}

type traceKey struct{}

type traceStart struct {
	sql string
	at  time.Time
}

func newSQLTrace() *sqlTrace { return &sqlTrace{stats: map[string]*stmtStats{}} }

func (t *sqlTrace) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	t.mu.Lock()
	s := t.stats[d.SQL]
	if s == nil {
		s = &stmtStats{SQL: d.SQL}
		t.stats[d.SQL] = s
	}
	s.Args = d.Args
	t.mu.Unlock()
	return context.WithValue(ctx, traceKey{}, traceStart{d.SQL, time.Now()})
}

func (t *sqlTrace) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	st, ok := ctx.Value(traceKey{}).(traceStart)
	if !ok {
		return
	}
	d := time.Since(st.at)
	t.mu.Lock()
	if s := t.stats[st.sql]; s != nil {
		s.Calls++
		s.Total += d
	}
	t.mu.Unlock()
}

// TraceBatchStart starts timing a pipelined batch: each of its statements
// is recorded as a statement of its own (TraceBatchQuery), timed from the
// batch's start or its previous statement's result, so a batch of n
// statements counts n, in one round trip.
func (t *sqlTrace) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return context.WithValue(ctx, batchKey{}, &batchClock{at: time.Now()})
}

type batchKey struct{}

type batchClock struct {
	mu sync.Mutex
	at time.Time
}

func (t *sqlTrace) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	bc, ok := ctx.Value(batchKey{}).(*batchClock)
	if !ok {
		return
	}
	bc.mu.Lock()
	now := time.Now()
	took := now.Sub(bc.at)
	bc.at = now
	bc.mu.Unlock()
	t.mu.Lock()
	s := t.stats[d.SQL]
	if s == nil {
		s = &stmtStats{SQL: d.SQL}
		t.stats[d.SQL] = s
	}
	s.Args = d.Args
	s.Calls++
	s.Total += took
	t.mu.Unlock()
}

func (t *sqlTrace) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// TraceCopyFromStart records a COPY as the statement "COPY <table>".
func (t *sqlTrace) TraceCopyFromStart(ctx context.Context, c *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	return t.TraceQueryStart(ctx, c, pgx.TraceQueryStartData{SQL: "COPY " + d.TableName.Sanitize() + " FROM STDIN"})
}

func (t *sqlTrace) TraceCopyFromEnd(ctx context.Context, c *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	t.TraceQueryEnd(ctx, c, pgx.TraceQueryEndData{})
}

// reset forgets what was recorded.
func (t *sqlTrace) reset() {
	t.mu.Lock()
	t.stats = map[string]*stmtStats{}
	t.mu.Unlock()
}

// find returns the recorded statement containing every fragment.
func (t *sqlTrace) find(fragments ...string) (stmtStats, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.stats {
		all := true
		for _, f := range fragments {
			all = all && strings.Contains(s.SQL, f)
		}
		if all {
			return *s, true
		}
	}
	return stmtStats{}, false
}

// calls is how many statements were recorded.
func (t *sqlTrace) calls() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.stats {
		n += s.Calls
	}
	return n
}

// meanMS is the mean time of the recorded statements, in ms.
func (t *sqlTrace) meanMS() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n int
	var total time.Duration
	for _, s := range t.stats {
		n += s.Calls
		total += s.Total
	}
	if n == 0 {
		return 0
	}
	return ms(total / time.Duration(n))
}

// list names the recorded statements, each by its first words, with its
// count when above one.
func (t *sqlTrace) list() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var parts []string
	for _, s := range t.stats {
		w := strings.Fields(s.SQL)
		name := strings.Join(w[:min(len(w), 4)], " ")
		if s.Calls > 1 {
			name = fmt.Sprintf("%s ×%d", name, s.Calls)
		}
		parts = append(parts, "`"+strings.ReplaceAll(name, "`", "'")+"`")
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// table renders the statements by total time, for the report.
func (t *sqlTrace) table() string {
	t.mu.Lock()
	list := make([]stmtStats, 0, len(t.stats))
	for _, s := range t.stats {
		list = append(list, *s)
	}
	t.mu.Unlock()
	slices.SortFunc(list, func(a, b stmtStats) int { return int(b.Total - a.Total) })
	var b strings.Builder
	b.WriteString("| statement | calls | total ms | mean ms |\n| --- | ---: | ---: | ---: |\n")
	for _, s := range list {
		mean := time.Duration(0)
		if s.Calls > 0 {
			mean = s.Total / time.Duration(s.Calls)
		}
		fmt.Fprintf(&b, "| `%s` | %d | %.0f | %.3f |\n", summarizeSQL(s.SQL), s.Calls, ms(s.Total), ms(mean))
	}
	return b.String()
}

// summarizeSQL is a statement's first 90 characters on one line.
func summarizeSQL(sql string) string {
	s := strings.Join(strings.Fields(sql), " ")
	if len(s) > 90 {
		s = s[:90] + "…"
	}
	return strings.ReplaceAll(s, "|", "\\|")
}

// openTracedPool opens a pool configured as postgres.Open configures it
// (exec protocol, no named prepared statements, 5 s connect timeout) with
// trace recording every statement.
func openTracedPool(ctx context.Context, url string, maxConns int32, trace *sqlTrace) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	if trace != nil {
		cfg.ConnConfig.Tracer = trace
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

// sqlParams are a recorded statement's parameters, $1 first: a call that
// chooses its own query execution mode passes it as the first argument
// (postgres.Store's page statement passes pgx.QueryExecModeCacheDescribe),
// and the tracer sees it among the arguments.
func sqlParams(args []any) []any {
	if len(args) > 0 {
		if _, ok := args[0].(pgx.QueryExecMode); ok {
			return args[1:]
		}
	}
	return args
}

// explainStmt EXPLAINs (ANALYZE, BUFFERS) a recorded statement with its last
// arguments, in a transaction it rolls back.
func explainStmt(ctx context.Context, pool *pgxpool.Pool, s stmtStats) (string, error) {
	return explain(ctx, pool, s.SQL, s.Args...)
}
