package migrations_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/migrations"
	"github.com/keybuzz/keybuzz-amazon/shared/migrate"
)

// keybuzzRows are rows KeyBuzz's own services write, including what the
// connector must never refuse: a sync state and an external message whose
// connectionId is no MarketplaceConnection (KeyBuzz's order sync and its
// inbound-email path), a second connection of the same tenant and type.
const keybuzzRows = `
INSERT INTO "Tenant" ("id", "slug", "name", "updatedAt") VALUES ('t1', 't1', 'Tenant 1', '2026-11-01 00:00:00');
INSERT INTO "MarketplaceConnection" ("id", "tenantId", "type", "status", "displayName", "region", "createdAt", "updatedAt") VALUES
  ('ckb1', 't1', 'AMAZON', 'CONNECTED', 'Amazon Seller', 'EU', '2026-11-01 08:00:00', '2026-11-30 10:05:00.250'),
  ('ckb2', 't1', 'AMAZON', 'PENDING', 'Amazon (pending)', 'EU', '2026-11-02 08:00:00', '2026-11-02 08:00:00');
INSERT INTO "MarketplaceSyncState" ("id", "connectionId", "tenantId", "type", "cursor", "updatedAt") VALUES
  ('s1', 'orders-sync-t1', 't1', 'AMAZON', '2026-11-30T10:00:00.000Z', '2026-11-30 10:00:00');
INSERT INTO "Ticket" ("id", "tenantId", "customerName", "channel", "subject", "updatedAt") VALUES
  ('tk1', 't1', 'Camille', 'AMAZON', 'Où est ma commande ?', '2026-11-30 10:00:00');
INSERT INTO "ExternalMessage" ("id", "tenantId", "connectionId", "type", "externalId", "receivedAt", "raw", "ticketId") VALUES
  ('e1', 't1', 'inbound-email', 'AMAZON', '<m1@amazon.fr>', '2026-11-30 10:00:00', '{}', 'tk1');
INSERT INTO "TicketMessage" ("id", "ticketId", "tenantId", "senderType", "body", "source") VALUES
  ('m1', 'tk1', 't1', 'CUSTOMER', 'Bonjour', 'EMAIL');
`

// TestMigrationsLeaveKeybuzzSchemaAlone: on KeyBuzz's database as Prisma
// builds it from KeyBuzz's schema, with KeyBuzz's rows in it, the
// connector's migrations apply, as a role that owns only the connector's
// schema and has only docs/deploy.md's grants on KeyBuzz's tables, and
// again as a no-op; `public` is the same before and after (pg_dump -s of
// it, and every row), every object they create is in keybuzz_amazon, and
// Prisma's drift check of `public` against KeyBuzz's schema is empty.
func TestMigrationsLeaveKeybuzzSchemaAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.KeybuzzDatabaseURL(t)
	admin := connect(t, dsn)
	if _, err := admin.Exec(ctx, keybuzzRows); err != nil {
		t.Fatalf("KeyBuzz's rows: %v", err)
	}
	role := "kbamzn_" + devrand.Hex(4)
	if _, err := admin.Exec(ctx, grantsSQL(role)); err != nil {
		t.Fatalf("the deployment's role and grants: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			c.Exec(context.Background(), fmt.Sprintf(`DROP OWNED BY %s CASCADE; DROP ROLE IF EXISTS %s`, role, role)) //nolint:errcheck
			c.Close(context.Background())
		}
	})

	schemaBefore, rowsBefore := dumpPublic(t, dsn), publicRows(t, admin)
	asRole := withUser(t, dsn, role)
	ran, err := migrate.Apply(ctx, asRole)
	if err != nil {
		t.Fatalf("migrations as %s: %v", role, err)
	}
	if want := migrationNames(t); strings.Join(ran, ",") != strings.Join(want, ",") {
		t.Fatalf("applied %v, want %v", ran, want)
	}
	again, err := migrate.Apply(ctx, asRole)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run: applied %v, %v; want nothing", again, err)
	}
	if after := dumpPublic(t, dsn); after != schemaBefore {
		t.Fatalf("public changed:\n%s", lineDiff(schemaBefore, after))
	}
	if after := publicRows(t, admin); after != rowsBefore {
		t.Fatalf("KeyBuzz's rows changed:\nbefore %s\nafter  %s", rowsBefore, after)
	}
	var outside []string
	rows, err := admin.Query(ctx, `
SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE pg_get_userbyid(c.relowner) = $1 AND n.nspname NOT IN ('keybuzz_amazon', 'pg_toast')
UNION ALL
SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE pg_get_userbyid(p.proowner) = $1 AND n.nspname <> 'keybuzz_amazon'`, role)
	if err != nil {
		t.Fatal(err)
	}
	if outside, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(outside) != 0 {
		t.Fatalf("objects created outside keybuzz_amazon: %v %v", outside, err)
	}
	if drift := keybuzzDrift(t, dsn); drift != "" {
		t.Fatalf("Prisma's drift check of public after the migrations:\n%s", drift)
	}
}

// TestDriftCheckCatchesDrift proves the checks above can fail: a column
// (and a CHECK) added to one of KeyBuzz's tables shows in Prisma's drift
// check and in the dump of public.
func TestDriftCheckCatchesDrift(t *testing.T) {
	t.Parallel()
	dsn := testenv.KeybuzzDatabaseURL(t)
	admin := connect(t, dsn)
	before := dumpPublic(t, dsn)
	// A CHECK constraint too: Prisma's introspection reads constraint types
	// as PostgreSQL's "char", which the schema engine shim must hand over.
	if _, err := admin.Exec(context.Background(), `ALTER TABLE "MarketplaceConnection" ADD COLUMN "nextPollAt" timestamptz;
ALTER TABLE "MarketplaceConnection" ADD CONSTRAINT "MarketplaceConnection_region_check" CHECK ("region" IN ('EU', 'NA', 'FE'))`); err != nil {
		t.Fatal(err)
	}
	if drift := keybuzzDrift(t, dsn); !strings.Contains(drift, `DROP COLUMN "nextPollAt"`) {
		t.Fatalf("drift check after adding a column: %q, want it dropped", drift)
	}
	if dumpPublic(t, dsn) == before {
		t.Fatal("pg_dump of public did not change after adding a column")
	}
}

// grantsSQL creates the connector's role as docs/deploy.md says: it owns
// the schema keybuzz_amazon and may read and write (never alter or delete
// from) the KeyBuzz tables the connector shares.
func grantsSQL(role string) string {
	return fmt.Sprintf(`
CREATE ROLE %[1]s LOGIN;
CREATE SCHEMA keybuzz_amazon AUTHORIZATION %[1]s;
GRANT USAGE ON SCHEMA public TO %[1]s;
GRANT SELECT, INSERT, UPDATE ON "MarketplaceConnection", "MarketplaceSyncState", "ExternalMessage", "Ticket", "TicketMessage",
    "TicketEvent", "MarketplaceOutboundMessage", "inbound_connections", "inbound_addresses" TO %[1]s;
`, role)
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func withUser(t *testing.T, dsn, user string) string {
	t.Helper()
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", user, c.Host, c.Port, c.Database)
}

func migrationNames(t *testing.T) []string {
	t.Helper()
	entries, err := migrations.FS.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// dumpPublic is pg_dump's schema-only dump of public.
func dumpPublic(t *testing.T, dsn string) string {
	t.Helper()
	bin := "pg_dump"
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump"); len(m) > 0 {
		sort.Strings(m)
		bin = m[len(m)-1]
	}
	out, err := exec.Command(bin, "--schema-only", "--schema=public", "--no-owner", "--no-privileges", dsn).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	// pg_dump's \restrict lines carry a random key per run.
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, `\restrict `) && !strings.HasPrefix(l, `\unrestrict `) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// publicRows is every row of every table of public, as text, table by table.
func publicRows(t *testing.T, c *pgx.Conn) string {
	t.Helper()
	ctx := context.Background()
	rows, err := c.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tb := range tables {
		var s *string
		if err := c.QueryRow(ctx, fmt.Sprintf(`SELECT string_agg(r::text, ';' ORDER BY r::text) FROM public.%q r`, tb)).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if s != nil {
			fmt.Fprintf(&b, "%s: %s\n", tb, *s)
		}
	}
	return b.String()
}

func keybuzzDrift(t *testing.T, dsn string) string {
	t.Helper()
	repo, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	drift, err := devstack.KeybuzzDrift(context.Background(), repo, dsn)
	if err != nil {
		t.Fatal(err)
	}
	return drift
}

func lineDiff(a, b string) string {
	in := map[string]bool{}
	for _, l := range strings.Split(a, "\n") {
		in[l] = true
	}
	var out []string
	for _, l := range strings.Split(b, "\n") {
		if !in[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
