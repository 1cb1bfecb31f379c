package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/shared/migrate"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

// env is the stack the benchmarks run against (the variables `stack run`
// exports), plus what they created, removed by close.
type env struct {
	sc       scale
	logf     func(string, ...any)
	baseURL  string // DATABASE_URL: the server's maintenance database
	sqs      *sqs.Client
	quiet    *slog.Logger     // the code under test logs warnings and errors only
	cleanup  []func()         // what one run created (close)
	finally  []func()         // what the runs share (closeAll)
	builds   map[string]built // cold start's binaries, built once
	buildDir string
	// channels overrides the scale's freshness channels (-fresh).
	channels []string
	// run is the number of the current run of a benchmark, from 1: the
	// order of its baselines and the real code alternates with it
	// (baselineFirst).
	run int
}

// baselineFirst is whether the current run measures its baselines before
// the real code: odd runs do, even runs measure the real code first, so
// neither side always gets the warmer (or the colder) machine.
func (e *env) baselineFirst() bool { return e.run%2 == 1 }

// inOrder runs the baseline and the real side in the current run's order
// (baselineFirst) and says which went first, for the report.
func (e *env) inOrder(baseline, real func() error) (string, error) {
	first, second, order := baseline, real, "baseline first, then the real code"
	if !e.baselineFirst() {
		first, second, order = real, baseline, "real code first, then the baseline"
	}
	if err := first(); err != nil {
		return order, err
	}
	return order, second()
}

// built is one bootstrap binary and its size in MB.
type built struct {
	path string
	mb   float64
}

// required lists the variables the benchmarks read; a missing one means
// the command is not running inside the stack.
var required = []string{"DATABASE_URL", "VAULT_ADDR", "VAULT_TOKEN", "AWS_ENDPOINT_URL_SQS", "AWS_REGION",
	"AUTH_JWT_HS256_SECRET", "AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE",
	"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SNS", "INBOUND_MAIL_DOMAIN", "INBOUND_MAIL_BUCKET"}

func newEnv(ctx context.Context, sc scale, logf func(string, ...any)) (*env, error) {
	var missing []string
	for _, k := range required {
		if os.Getenv(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s not set: run `make bench` (it starts PostgreSQL, Vault, the SQS emulator and the Amazon sandbox)", strings.Join(missing, ", "))
	}
	client, err := pollsender.NewClient(ctx)
	if err != nil {
		return nil, err
	}
	return &env{
		sc: sc, logf: logf, baseURL: os.Getenv("DATABASE_URL"), sqs: client,
		builds: map[string]built{},
		quiet:  slog.New(slog.NewTextHandler(warnWriter{}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, nil
}

// close removes what the current run created.
func (e *env) close() {
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
	e.cleanup = nil
}

// closeAll removes everything, the runs' shared things too.
func (e *env) closeAll() {
	e.close()
	for i := len(e.finally) - 1; i >= 0; i-- {
		e.finally[i]()
	}
	e.finally = nil
}

// freshDB creates and migrates a database of its own on the stack's
// server, dropped by close, and returns its URL.
func (e *env) freshDB(ctx context.Context, label string) (string, error) {
	name := "bench_" + label + "_" + devrand.Hex(4)
	admin, err := pgx.Connect(ctx, e.baseURL)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %q`, name)); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	e.cleanup = append(e.cleanup, func() {
		c, err := pgx.Connect(context.Background(), e.baseURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, name))
	})
	u := devstack.WithDatabase(e.baseURL, name)
	repo, err := devstack.RepoRoot()
	if err != nil {
		return "", err
	}
	// KeyBuzz's database as tests have it (devstack.KeybuzzDatabase), then
	// the connector's migrations.
	if err := devstack.KeybuzzDatabase(ctx, repo, u, true); err != nil {
		return "", fmt.Errorf("KeyBuzz's schema in %s: %w", name, err)
	}
	if _, err := migrate.Apply(ctx, u); err != nil {
		return "", fmt.Errorf("migrate %s: %w", name, err)
	}
	return u, nil
}

// freshStore opens the connector's own pool (postgres.Open: exec protocol,
// as in Lambda) on a fresh database.
//
// Its pool is postgres.Open's configuration plus trace (nil: none), which
// records the statements the store sends; now is its clock (nil: the real
// one).
func (e *env) freshStore(ctx context.Context, label string, maxConns int32, now func() time.Time, trace *sqlTrace) (*postgres.Store, string, error) {
	u, err := e.freshDB(ctx, label)
	if err != nil {
		return nil, "", err
	}
	pool, err := openTracedPool(ctx, u, maxConns, trace)
	if err != nil {
		return nil, "", err
	}
	e.cleanup = append(e.cleanup, pool.Close)
	var opts []postgres.Option
	if now != nil {
		opts = append(opts, postgres.WithClock(now))
	}
	store := postgres.New(pool, opts...)
	pools.Store(store, pool)
	return store, u, nil
}

// pools holds the pool of each store freshStore made: the benchmarks read
// and reset the database beside the store (the store keeps its pool to
// itself).
var pools sync.Map // *postgres.Store -> *pgxpool.Pool

// poolOf is the pool under a store freshStore made.
func poolOf(store *postgres.Store) *pgxpool.Pool {
	p, ok := pools.Load(store)
	if !ok {
		panic("bench: a store freshStore did not make")
	}
	return p.(*pgxpool.Pool)
}

// pool opens a plain pgx pool (for baselines) on url.
func (e *env) pool(ctx context.Context, u string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = maxConns
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	e.cleanup = append(e.cleanup, p.Close)
	return p, nil
}

// freshQueue creates an SQS queue of its own on the emulator, deleted by
// close; visibility is its VisibilityTimeout in seconds (0: the emulator's
// default).
func (e *env) freshQueue(ctx context.Context, label string, visibility ...int) (string, error) {
	in := &sqs.CreateQueueInput{QueueName: aws.String("bench-" + label + "-" + devrand.Hex(4))}
	if len(visibility) > 0 && visibility[0] > 0 {
		in.Attributes = map[string]string{"VisibilityTimeout": fmt.Sprint(visibility[0])}
	}
	out, err := e.sqs.CreateQueue(ctx, in)
	if err != nil {
		return "", fmt.Errorf("create queue: %w", err)
	}
	u := aws.ToString(out.QueueUrl)
	e.cleanup = append(e.cleanup, func() {
		_, _ = e.sqs.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(u)})
	})
	return u, nil
}

// freshQueueARN creates a queue as freshQueue does and returns its URL and
// ARN.
func (e *env) freshQueueARN(ctx context.Context, label string, visibility ...int) (string, string, error) {
	u, err := e.freshQueue(ctx, label, visibility...)
	if err != nil {
		return "", "", err
	}
	out, err := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", "", fmt.Errorf("queue ARN: %w", err)
	}
	return u, out.Attributes[string(types.QueueAttributeNameQueueArn)], nil
}

// queueDepth is the emulator's count of visible messages.
func (e *env) queueDepth(ctx context.Context, queueURL string) (int, error) {
	out, err := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		return 0, err
	}
	var n int
	_, err = fmt.Sscan(out.Attributes["ApproximateNumberOfMessages"], &n)
	return n, err
}

// warnWriter sends the code under test's warnings to stderr, prefixed.
type warnWriter struct{}

func (warnWriter) Write(p []byte) (int, error) {
	return io.WriteString(os.Stderr, "bench: [code under test] "+string(p))
}

// deleteQueue drops a queue as soon as its benchmark is done with it, so
// the emulator does not hold hundreds of thousands of messages.
func (e *env) deleteQueue(ctx context.Context, queueURL string) {
	_, _ = e.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(queueURL)})
}
