// Package testenv gives integration tests the real services `make test`
// starts (cmd/stack): each test gets its own freshly migrated database, and
// a Vault client. A missing service fails the test; it never skips.
package testenv

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/migrations"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/migrate"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

// Env returns the variable or fails the test with a hint.
func Env(t testing.TB, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		t.Fatalf("%s is not set: run the tests with `make test`, which starts PostgreSQL, Vault, the SQS emulator and the Amazon sandbox", key)
	}
	return v
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// DatabaseURL creates a database for this test, dropped at the end, and
// returns its URL: KeyBuzz's `public` built by Prisma from its schema (with
// KeyBuzz's sign-up played for any tenant id: devstack.TenantSignupSQL),
// then the connector's migrations.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	base := Env(t, "DATABASE_URL")
	ctx := context.Background()
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(ctx, base) })
	if templateErr != nil {
		t.Fatalf("prepare template database: %v", templateErr)
	}
	return createDatabase(t, base, fmt.Sprintf(`TEMPLATE %q`, templateName))
}

// EmptyDatabaseURL creates an empty database for this test (no migration
// applied, no KeyBuzz schema), dropped at the end, and returns its URL.
func EmptyDatabaseURL(t testing.TB) string {
	t.Helper()
	return createDatabase(t, Env(t, "DATABASE_URL"), "")
}

func createDatabase(t testing.TB, base, options string) string {
	t.Helper()
	ctx := context.Background()
	name := "t_" + devrand.Hex(8)
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(base), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %q %s`, name, options)); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, name)) //nolint:errcheck
	})
	return devstack.WithDatabase(base, name)
}

var (
	keybuzzOnce sync.Once
	keybuzzName string
	keybuzzErr  error
)

// KeybuzzDatabaseURL creates a database for this test holding only
// KeyBuzz's `public`, built by Prisma from its schema (no sign-up fixture,
// no connector migration), dropped at the end: for tests of the
// migrations on KeyBuzz's database.
func KeybuzzDatabaseURL(t testing.TB) string {
	t.Helper()
	base := Env(t, "DATABASE_URL")
	ctx := context.Background()
	keybuzzOnce.Do(func() { keybuzzName, keybuzzErr = ensureKeybuzzTemplate(ctx, base) })
	if keybuzzErr != nil {
		t.Fatalf("prepare KeyBuzz database: %v", keybuzzErr)
	}
	return createDatabase(t, base, fmt.Sprintf(`TEMPLATE %q`, keybuzzName))
}

// Pool opens a pool on a fresh test database.
func Pool(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := DatabaseURL(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, dsn
}

// Vault returns a client with the stack's root token.
func Vault(t testing.TB) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = Env(t, "VAULT_ADDR")
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("vault client: %v", err)
	}
	c.SetToken(Env(t, "VAULT_TOKEN"))
	return c
}

// ID returns a random identifier with a prefix, for tenants and paths that
// must not collide between tests sharing Vault.
func ID(prefix string) string { return prefix + "-" + devrand.Hex(6) }

// ensureTemplate creates (once per migration set, across processes) a
// database holding the migrated schema, from which tests clone theirs.
func ensureTemplate(ctx context.Context, base string) (string, error) {
	h, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "tmpl_" + h
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer admin.Close(ctx)
	// Another test binary may be building it (Prisma takes seconds): wait
	// for it whatever the role's lock_timeout.
	if _, err := admin.Exec(ctx, `SET lock_timeout = 0; SET statement_timeout = 0`); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(727274)`); err != nil {
		return "", err
	}
	defer admin.Exec(ctx, `SELECT pg_advisory_unlock(727274)`) //nolint:errcheck
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_build"
	admin.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, building)) //nolint:errcheck
	if _, err := admin.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %q`, building)); err != nil {
		return "", err
	}
	repo, err := devstack.RepoRoot()
	if err != nil {
		return "", err
	}
	if err := devstack.KeybuzzDatabase(ctx, repo, devstack.WithDatabase(base, building), true); err != nil {
		return "", err
	}
	if _, err := migrate.Apply(ctx, devstack.WithDatabase(base, building)); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %q RENAME TO %q`, building, name)); err != nil {
		return "", err
	}
	return name, nil
}

// ensureKeybuzzTemplate creates (once per KeyBuzz schema, across
// processes) a database holding only KeyBuzz's public schema.
func ensureKeybuzzTemplate(ctx context.Context, base string) (string, error) {
	repo, err := devstack.RepoRoot()
	if err != nil {
		return "", err
	}
	h, err := devstack.KeybuzzSchemaHash(repo)
	if err != nil {
		return "", err
	}
	name := "kbtmpl_" + h
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer admin.Close(ctx)
	// Another test binary may be building it (Prisma takes seconds): wait
	// for it whatever the role's lock_timeout.
	if _, err := admin.Exec(ctx, `SET lock_timeout = 0; SET statement_timeout = 0`); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(727275)`); err != nil {
		return "", err
	}
	defer admin.Exec(ctx, `SELECT pg_advisory_unlock(727275)`) //nolint:errcheck
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_build"
	admin.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, building)) //nolint:errcheck
	if _, err := admin.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %q`, building)); err != nil {
		return "", err
	}
	if err := devstack.KeybuzzDatabase(ctx, repo, devstack.WithDatabase(base, building), false); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %q RENAME TO %q`, building, name)); err != nil {
		return "", err
	}
	return name, nil
}

func migrationsHash() (string, error) {
	entries, err := migrations.FS.ReadDir(".")
	if err != nil {
		return "", err
	}
	var all []byte
	if repo, err := devstack.RepoRoot(); err == nil {
		if h, err := devstack.KeybuzzSchemaHash(repo); err == nil {
			all = append(all, h...)
		}
	}
	all = append(all, devstack.TenantSignupSQL...)
	for _, e := range entries {
		b, err := migrations.FS.ReadFile(e.Name())
		if err != nil {
			return "", err
		}
		all = append(all, e.Name()...)
		all = append(all, b...)
	}
	return fmt.Sprintf("%x", sha256Sum(all))[:16], nil
}

func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return strings.SplitN(dsn, "@", 2)[0] + "@…"
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// IngestEvents stores msgs for the tenant's connection the way a pushed
// notification does (store.IngestNotification: guarded by the connection
// being CONNECTED, the notification recorded in the same transaction, under
// a made-up id), for tests that need messages stored without a channel.
// A connection not CONNECTED is marketplace.ErrNotConnected.
func IngestEvents(ctx context.Context, store *postgres.Store, tenantID, connectionID string, msgs []marketplace.InboundMessage) (marketplace.PageResult, error) {
	res, rec, err := store.IngestNotification(ctx, tenantID, connectionID, msgs, marketplace.NotificationRecord{
		NotificationID: "test:" + devrand.Hex(8), NotificationType: "ORDER_CHANGE", ConnectionID: connectionID, TenantID: tenantID, Routed: true})
	if err != nil {
		return res, err
	}
	if rec.Outcome == marketplace.OutcomeNotConnected {
		return res, fmt.Errorf("ingest events of %s: %w", connectionID, marketplace.ErrNotConnected)
	}
	return res, nil
}
