package migrations_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/migrations"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/migrate"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

func TestFreshSchemaHoldsTheContract(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	pool, _ := testenv.Pool(t)
	problems, err := checkSchema(context.Background(), pool, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestSchemaCheckCatchesDrift proves the check can fail: each drift, made
// in a transaction rolled back afterwards, is reported.
func TestSchemaCheckCatchesDrift(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	pool, _ := testenv.Pool(t)
	ctx := context.Background()
	cases := []struct{ name, sql, want string }{
		{"renamed column", `ALTER TABLE "ExternalMessage" RENAME COLUMN "buyerName" TO "authorName"`, `ExternalMessage.buyerName: missing`},
		{"dropped column", `ALTER TABLE "TicketMessage" DROP COLUMN "isInternal"`, `TicketMessage.isInternal: missing`},
		{"retyped column", `ALTER TABLE "MarketplaceSyncState" ALTER COLUMN "cursor" TYPE timestamptz USING NULL`, `MarketplaceSyncState.cursor: type timestamp with time zone, want text`},
		{"time zone added", `ALTER TABLE "Ticket" ALTER COLUMN "createdAt" TYPE timestamptz(3)`, `Ticket.createdAt: type timestamp(3) with time zone`},
		{"enum to text", `ALTER TABLE "Ticket" ALTER COLUMN "channel" TYPE text`, `Ticket.channel: type text, want enum "TicketChannel"`},
		{"optional made required", `ALTER TABLE "ExternalMessage" ALTER COLUMN "threadId" SET NOT NULL`, `ExternalMessage.threadId: required`},
		{"required made optional", `ALTER TABLE "ExternalMessage" ALTER COLUMN "raw" DROP NOT NULL`, `ExternalMessage.raw: nullable`},
		{"new required column", `ALTER TABLE "Ticket" ADD COLUMN "orderId" text NOT NULL DEFAULT 'x'; ALTER TABLE "Ticket" ALTER COLUMN "orderId" DROP DEFAULT`, `Ticket.orderId: the connector's column is required`},
		{"default dropped", `ALTER TABLE "TicketMessage" ALTER COLUMN "sentAt" DROP DEFAULT`, `TicketMessage.sentAt: no default`},
		{"unique dropped", `ALTER TABLE "ExternalMessage" DROP CONSTRAINT "ExternalMessage_type_connectionId_externalId_key"`, `ExternalMessage: unique (type, connectionId, externalId) missing`},
		{"enum label renamed", `ALTER TYPE "MarketplaceConnectionStatus" RENAME VALUE 'DISABLED' TO 'DISCONNECTED'`, `enum MarketplaceConnectionStatus: label DISABLED missing`},
		{"table renamed", `ALTER TABLE "inbound_addresses" RENAME TO "InboundAddress"`, `InboundAddress: table "inbound_addresses" missing`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx) //nolint:errcheck
			if _, err := tx.Exec(ctx, tc.sql); err != nil {
				t.Fatalf("drift: %v", err)
			}
			problems, err := checkSchema(ctx, tx, c)
			if err != nil {
				t.Fatal(err)
			}
			if !containsProblem(problems, tc.want) {
				t.Fatalf("drift not reported: want %q in %q", tc.want, problems)
			}
		})
	}
}

func containsProblem(problems []string, want string) bool {
	for _, p := range problems {
		if strings.Contains(p, want) {
			return true
		}
	}
	return false
}

// wave1 is the schema before the contract: migrations 0001-0003.
func wave1(t *testing.T) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	for _, name := range []string{"0001_init.sql", "0002_polling.sql", "0003_fanout_hot_updates.sql"} {
		b, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = &fstest.MapFile{Data: b}
	}
	return out
}

// wave1Rows is data as the code of that schema wrote it: a connected seller in the
// middle of nothing, a disconnected one, a revoked one part-way through a
// window; two tickets (one buyer unnamed), their messages (one without raw).
const wave1Rows = `
INSERT INTO "MarketplaceConnection" ("id", "tenantId", "status", "displayName", "region", "marketplaceId", "sellingPartnerId", "vaultPath", "lastSyncAt", "connectedAt", "createdAt", "updatedAt") VALUES
  ('c1', 't1', 'CONNECTED', 'Amazon Seller A1', 'eu', 'A13V1IB3VIYZZH', 'A1', 'keybuzz/tenants/t1/amazon', '2026-11-30 10:05:00.250+00', '2026-11-01 08:00:00+00', '2026-11-01 07:59:00+00', '2026-11-30 10:05:00.250+00'),
  ('c2', 't2', 'DISCONNECTED', NULL, 'na', NULL, NULL, NULL, NULL, NULL, '2026-11-02 00:00:00+00', '2026-11-02 00:00:00+00'),
  ('c3', 't3', 'NEEDS_REAUTH', 'Amazon Seller A3', 'eu', 'A1PA6795UKMFR9', 'A3', 'keybuzz/tenants/t3/amazon', NULL, NULL, '2026-11-03 00:00:00+00', '2026-11-03 00:00:00+00');
INSERT INTO "MarketplaceSyncState" ("id", "connectionId", "tenantId", "cursor", "paginationToken", "lastSyncAt", "lastSuccessAt", "pollCount") VALUES
  ('s1', 'c1', 't1', '2026-11-30 10:00:00.123+00', NULL, '2026-11-30 10:05:00.250+00', '2026-11-30 10:05:00.250+00', 42),
  ('s3', 'c3', 't3', '2026-11-29 00:00:00+00', 'tok-abc', '2026-11-29 01:00:00+00', NULL, 7);
INSERT INTO "Ticket" ("id", "tenantId", "externalThreadId", "orderId", "subject", "customerName", "customerEmail", "lastMessageAt", "createdAt", "updatedAt") VALUES
  ('k1', 't1', '402-1', '402-1', 'Cancellation request - order 402-1', 'Jean Dupont', 'abc@marketplace.amazon.fr', '2026-11-30 09:00:00+00', '2026-11-30 09:00:01+00', '2026-11-30 09:00:01+00'),
  ('k2', 't1', '402-2', '402-2', 'Cancellation request - order 402-2', NULL, NULL, '2026-11-30 09:30:00+00', '2026-11-30 09:30:01+00', '2026-11-30 09:30:01+00');
INSERT INTO "ExternalMessage" ("id", "tenantId", "connectionId", "type", "externalId", "threadId", "orderId", "marketplaceId", "authorName", "authorEmail", "subject", "body", "receivedAt", "raw", "ticketId", "createdAt") VALUES
  ('e1', 't1', 'c1', 'AMAZON', '402-1:1:cancellation', '402-1', '402-1', 'A13V1IB3VIYZZH', 'Jean Dupont', 'abc@marketplace.amazon.fr', 's1', 'body 1', '2026-11-30 09:00:00+00', '{"orderId": "402-1"}', 'k1', '2026-11-30 09:00:01+00'),
  ('e2', 't1', 'c1', 'AMAZON', '402-2:1:cancellation', '402-2', '402-2', 'A1PA6795UKMFR9', NULL, NULL, 's2', 'body 2', '2026-11-30 09:30:00+00', NULL, 'k2', '2026-11-30 09:30:01+00');
INSERT INTO "TicketMessage" ("id", "ticketId", "tenantId", "externalMessageId", "authorName", "authorEmail", "body", "receivedAt", "createdAt") VALUES
  ('m1', 'k1', 't1', 'e1', 'Jean Dupont', 'abc@marketplace.amazon.fr', 'body 1', '2026-11-30 09:00:00+00', '2026-11-30 09:00:01+00'),
  ('m2', 'k2', 't1', 'e2', NULL, NULL, 'body 2', '2026-11-30 09:30:00+00', '2026-11-30 09:30:01+00');
`

// connectIn opens a connection whose session runs in a time zone far from
// UTC, so a conversion that leaned on the session's TimeZone would show.
func connectIn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["timezone"] = "Asia/Tokyo"
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestWave1DatabaseMigratesToTheContract(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	ctx := context.Background()
	dsn := testenv.EmptyDatabaseURL(t)
	conn := connectIn(t, dsn)
	if _, err := migrate.ApplyConn(ctx, conn, wave1(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, wave1Rows); err != nil {
		t.Fatalf("rows before the contract: %v", err)
	}
	ran, err := migrate.ApplyConn(ctx, conn, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if len(ran) == 0 || ran[0] != "0004_keybuzz_contract.sql" {
		t.Fatalf("applied %v after 0001-0003", ran)
	}
	problems, err := checkSchema(ctx, conn, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}

	// Every row is there, its values carried into the contract's columns.
	utc := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04:05.999", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	rowsOf := func(sql string) [][]any {
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return out
	}
	checks := []struct {
		name string
		sql  string
		want [][]any
	}{
		{"connections", `SELECT "id", "status"::text, "region", "marketplaceId", "lastSyncAt", "createdAt", "type"::text FROM "MarketplaceConnection" ORDER BY "id"`, [][]any{
			{"c1", "CONNECTED", "EU", "A13V1IB3VIYZZH", utc("2026-11-30 10:05:00.25"), utc("2026-11-01 07:59:00"), "AMAZON"},
			{"c2", "DISABLED", "NA", nil, nil, utc("2026-11-02 00:00:00"), "AMAZON"},
			{"c3", "NEEDS_REAUTH", "EU", "A1PA6795UKMFR9", nil, utc("2026-11-03 00:00:00"), "AMAZON"},
		}},
		{"sync states", `SELECT "id", "type"::text, "cursor", "cursorAt" AT TIME ZONE 'UTC', "paginationToken", "lastPolledAt", "lastSuccessAt", "pollCount" FROM "MarketplaceSyncState" ORDER BY "id"`, [][]any{
			{"s1", "AMAZON", "2026-11-30T10:00:00.123Z", utc("2026-11-30 10:00:00.123"), nil, utc("2026-11-30 10:05:00.25"), utc("2026-11-30 10:05:00.25"), int64(42)},
			{"s3", "AMAZON", "tok-abc", utc("2026-11-29 00:00:00"), "tok-abc", utc("2026-11-29 01:00:00"), nil, int64(7)},
		}},
		{"tickets", `SELECT "id", "tenantId", "customerName", "customerEmail", "externalId", "channel"::text, "status"::text, "priority"::text, "subject", "createdAt" FROM "Ticket" ORDER BY "id"`, [][]any{
			{"k1", "t1", "Jean Dupont", "abc@marketplace.amazon.fr", "402-1", "AMAZON", "OPEN", "NORMAL", "Cancellation request - order 402-1", utc("2026-11-30 09:00:01")},
			{"k2", "t1", "Amazon Buyer", nil, "402-2", "AMAZON", "OPEN", "NORMAL", "Cancellation request - order 402-2", utc("2026-11-30 09:30:01")},
		}},
		{"threads", `SELECT "tenantId", "threadKey", "ticketId", "orderId", "lastMessageAt" AT TIME ZONE 'UTC' FROM "TicketThread" ORDER BY "ticketId"`, [][]any{
			{"t1", "402-1", "k1", "402-1", utc("2026-11-30 09:00:00")},
			{"t1", "402-2", "k2", "402-2", utc("2026-11-30 09:30:00")},
		}},
		{"external messages", `SELECT "id", "type"::text, "externalId", "threadId", "orderId", "buyerName", "buyerEmail", "language", "receivedAt", "raw"::text, "ticketId", "ticketMessageId", "body", "createdAt" FROM "ExternalMessage" ORDER BY "id"`, [][]any{
			{"e1", "AMAZON", "402-1:1:cancellation", "402-1", "402-1", "Jean Dupont", "abc@marketplace.amazon.fr", "fr", utc("2026-11-30 09:00:00"), `{"orderId": "402-1"}`, "k1", "m1", "body 1", utc("2026-11-30 09:00:01")},
			{"e2", "AMAZON", "402-2:1:cancellation", "402-2", "402-2", nil, nil, "de", utc("2026-11-30 09:30:00"), `{}`, "k2", "m2", "body 2", utc("2026-11-30 09:30:01")},
		}},
		{"ticket messages", `SELECT "id", "ticketId", "tenantId", "senderType"::text, "senderName", "sentAt", "body", "isInternal", "source"::text FROM "TicketMessage" ORDER BY "id"`, [][]any{
			{"m1", "k1", "t1", "CUSTOMER", "Jean Dupont", utc("2026-11-30 09:00:00"), "body 1", false, "MARKETPLACE"},
			{"m2", "k2", "t1", "CUSTOMER", "Amazon Buyer", utc("2026-11-30 09:30:00"), "body 2", false, "MARKETPLACE"},
		}},
	}
	for _, ch := range checks {
		got := rowsOf(ch.sql)
		if !sameRows(got, ch.want) {
			t.Errorf("%s after the upgrade:\n got %v\nwant %v", ch.name, got, ch.want)
		}
	}

	// The ingestion path continues a thread stored before: a new event on order
	// 402-1 joins ticket k1, a new order opens a ticket.
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "Asia/Tokyo"
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	at := utc("2026-12-01 12:00:00")
	store := postgres.New(pool, postgres.WithClock(func() time.Time { return at.Add(time.Minute).In(time.FixedZone("x", -5*3600)) }))
	res, err := store.Ingest(ctx, "t1", "c1", []marketplace.InboundMessage{
		{ExternalID: "402-1:2:cancellation", ThreadKey: "402-1", OrderID: "402-1", Language: "fr", Body: "body 3", ReceivedAt: at.In(time.FixedZone("y", 3600))},
		{ExternalID: "402-3:1:cancellation", ThreadKey: "402-3", OrderID: "402-3", Language: "fr", Subject: "s4", Body: "body 4", ReceivedAt: at},
	})
	if err != nil || res.MessagesCreated != 2 || res.TicketsCreated != 1 {
		t.Fatalf("ingest after the upgrade: %+v %v", res, err)
	}
	got := rowsOf(`SELECT e."externalId", e."ticketId" = 'k1', e."receivedAt", e."createdAt", tm."sentAt", t."createdAt"
		FROM "ExternalMessage" e JOIN "TicketMessage" tm ON tm."id" = e."ticketMessageId" JOIN "Ticket" t ON t."id" = e."ticketId"
		WHERE e."externalId" IN ('402-1:2:cancellation', '402-3:1:cancellation') ORDER BY 1`)
	want := [][]any{
		{"402-1:2:cancellation", true, at, at.Add(time.Minute), at, utc("2026-11-30 09:00:01")},
		{"402-3:1:cancellation", false, at, at.Add(time.Minute), at, at.Add(time.Minute)},
	}
	if !sameRows(got, want) {
		t.Errorf("ingested after the upgrade:\n got %v\nwant %v", got, want)
	}
}

func sameRows(got, want [][]any) bool {
	g, _ := json.Marshal(normalize(got))
	w, _ := json.Marshal(normalize(want))
	return string(g) == string(w)
}

// normalize makes times comparable as instants.
func normalize(rows [][]any) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = make([]any, len(r))
		for j, v := range r {
			if tv, ok := v.(time.Time); ok {
				v = tv.UTC().Format(time.RFC3339Nano)
			}
			out[i][j] = v
		}
	}
	return out
}
