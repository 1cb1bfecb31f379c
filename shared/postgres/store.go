// Package postgres adapts PostgreSQL to the connector: every SQL statement
// the connector runs lives in this package, against the Prisma-named tables
// of package migrations.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// Store runs the connector's queries on a pool.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock of TTLs, leases and timestamps (default
// time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = func() time.Time { return now().UTC() }
		}
	}
}

// New returns a Store on pool. Its times are UTC: KeyBuzz's columns are
// timestamp(3) holding UTC.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool, now: func() time.Time { return time.Now().UTC() }}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Open connects a pool sized for Lambda (one container serves one request
// at a time: MaxConns 2) or larger for the local server, keeping up to two
// connections open. It uses the exec
// protocol without named prepared statements so that it works behind RDS
// Proxy or PgBouncer in transaction mode.
func Open(ctx context.Context, databaseURL string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", errors.New("invalid URL")) // never echo the URL: it may hold a password
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	// Dial in the background from the start: a Lambda's first connection is
	// made during init, overlapping the rest of it, not on the first event.
	cfg.MinConns = min(cfg.MaxConns, 2)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return pool, nil
}

// uniqueViolation reports whether err is a unique violation (23505) of
// constraint (a constraint's or a unique index's name).
func uniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}

// unavailable marks connection-level failures (database down, timeouts) as
// marketplace.ErrUnavailable so callers answer 503 / retry.
func unavailable(op string, err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !transientSQLState(pgErr.Code) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w", op, errors.Join(marketplace.ErrUnavailable, err))
}

// transientSQLState reports whether a server error goes away on a retry:
// the server-side limits the migrations set (statement_timeout 57014,
// lock_timeout 55P03, idle_in_transaction_session_timeout 25P03), a
// serialization failure or deadlock (40001, 40P01), a shutting-down or
// restarting server (57P01-57P03) and lost connections (class 08).
func transientSQLState(code string) bool {
	switch code {
	case "57014", "55P03", "25P03", "40001", "40P01", "57P01", "57P02", "57P03":
		return true
	}
	return strings.HasPrefix(code, "08")
}
