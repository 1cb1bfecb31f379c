package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

// Every session the connector's role opens, as a pooler would open it,
// carries the server-side limits of migration 0009.
func TestRoleSessionLimits(t *testing.T) {
	t.Parallel()
	_, url := testenv.Pool(t)
	pool, err := postgres.Open(context.Background(), url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for setting, want := range map[string]string{
		"idle_in_transaction_session_timeout": "15s",
		"lock_timeout":                        "5s",
		"statement_timeout":                   "20s",
	} {
		var got string
		if err := pool.QueryRow(context.Background(), "SHOW "+setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %s, want %s", setting, got, want)
		}
	}
}

// A container frozen inside a transaction holds a connection's row lock;
// another container's poll then fails fast as a transient error (so SQS
// retries it) instead of waiting behind it.
func TestLockWaitIsTransient(t *testing.T) {
	t.Parallel()
	store, pool, _ := newStore(t)
	ctx := context.Background()
	id := addConnections(t, pool, 1)[0]

	frozen, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if _, err := frozen.Exec(ctx, `SELECT 1 FROM keybuzz_amazon."Connection" WHERE "connectionId" = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = store.ReleaseClaims(ctx, []string{id})
	if !errors.Is(err, marketplace.ErrUnavailable) {
		t.Fatalf("blocked statement: %v, want ErrUnavailable (lock_timeout)", err)
	}
	if waited := time.Since(start); waited > 15*time.Second {
		t.Fatalf("waited %s for the lock; lock_timeout should end the wait at 5 s", waited)
	}
}
