package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

// TestKeybuzzPrismaClient holds the connector's writes, made as a role with
// only the deployment's grants (docs/deploy.md), against KeyBuzz's
// own Prisma client (generated from tools/prisma/schema.prisma, Prisma 7
// with @prisma/adapter-pg, as KeyBuzz's backend runs it), on a database
// whose public schema Prisma built:
//
//  1. every write path of the connector's store runs (connect, a poll's
//     pages, a revoked seller, pushed events and a notification, a relay
//     mail with its order context, the app migration, a disconnect);
//  2. KeyBuzz's client reads every row of every model the connector shares,
//     every field: any value it does not accept (an enum label, a type)
//     fails the read;
//  3. KeyBuzz's client makes the writes KeyBuzz's own services make on
//     those tables (a PENDING connection and an OAuthState from its own
//     start, an agent's reply, the ticket RESOLVED, sync states and
//     external messages under its own connection ids, inbound connection
//     and address upserts, DISABLED by its own disconnect), and the
//     connector still works: it adopts KeyBuzz's PENDING connection, a new
//     buyer message joins the resolved ticket, polling goes on, KeyBuzz's
//     address is found, KeyBuzz's DISABLED stops ingestion and polling;
//  4. KeyBuzz's client reads everything again, and Prisma's drift check of
//     public against KeyBuzz's schema is empty.
func TestKeybuzzPrismaClient(t *testing.T) {
	ctx := context.Background()
	repo, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := devstack.GenerateKeybuzzClient(ctx, repo); err != nil {
		t.Fatalf("generate KeyBuzz's client: %v", err)
	}
	pool, dsn := testenv.Pool(t)
	// The connector runs as a role with only docs/deploy.md's grants on
	// KeyBuzz's tables, owning its own schema, as deployed.
	role := "kbamzn_" + devrand.Hex(4)
	if _, err := pool.Exec(ctx, deploymentRoleSQL(role)); err != nil {
		t.Fatalf("the deployment's role: %v", err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), fmt.Sprintf(`REASSIGN OWNED BY %[1]s TO CURRENT_USER; DROP OWNED BY %[1]s; DROP ROLE %[1]s`, role))
	})
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.User = role
	connectorPool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(connectorPool.Close)
	store := postgres.New(connectorPool)
	now := time.Now().UTC().Truncate(time.Millisecond)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	connect := func(tenant, seller string) string {
		t.Helper()
		c, err := store.BeginConnect(ctx, marketplace.Begin{TenantID: tenant, StateHash: "h-" + tenant + "-" + seller, ExpiresAt: now.Add(15 * time.Minute),
			BindingHash: "b", AppSource: marketplace.AppExternalTest})
		must("begin connect "+tenant, err)
		_, err = store.MarkConnected(ctx, c.ID, marketplace.Connected{DisplayName: "Amazon " + seller, Region: "eu", MarketplaceID: "A13V1IB3VIYZZH",
			SellingPartnerID: seller, VaultPath: "secret/keybuzz/tenants/" + tenant + "/amazon", AppSource: marketplace.AppExternalTest})
		must("mark connected "+tenant, err)
		return c.ID
	}
	msg := func(order, text string) marketplace.InboundMessage {
		return marketplace.InboundMessage{ExternalID: order + ":1:cancellation", ThreadKey: order, OrderID: order, MarketplaceID: "A13V1IB3VIYZZH",
			Language: "fr", Subject: "Cancellation request - order " + order, Body: text, ReceivedAt: now, Raw: []byte(`{"orderId":"` + order + `"}`)}
	}

	// 1. The connector's write paths.
	migrated := testenv.ID("tenant-app")
	connect(migrated, "AMIGRATED"+testenv.ID("s"))
	if marked, err := store.MarkAppMigration(ctx, marketplace.AppKeyBuzz, 100); err != nil || len(marked) != 1 {
		t.Fatalf("app migration: %v %v", marked, err)
	}
	tenant := testenv.ID("tenant")
	conn := connect(tenant, "ASELLER"+testenv.ID("s"))
	st, err := store.AcquirePoll(ctx, tenant, conn, "poller-1", time.Minute)
	if err != nil || !st.Leased {
		t.Fatalf("lease: %+v %v", st, err)
	}
	_, err = store.IngestPage(ctx, marketplace.InboundPage{ConnectionID: conn, TenantID: tenant, LeaseOwner: "poller-1", LeaseFor: time.Minute,
		Messages: []marketplace.InboundMessage{msg("402-0000001-0000001", "cancel 1")}, NextToken: "tok-2", WindowStart: now.Add(-time.Hour),
		MarketplaceIDs: []string{"A13V1IB3VIYZZH"}})
	must("first page", err)
	res, err := store.IngestPage(ctx, marketplace.InboundPage{ConnectionID: conn, TenantID: tenant, LeaseOwner: "poller-1",
		Messages: []marketplace.InboundMessage{msg("402-0000002-0000002", "cancel 2")}, Cursor: &now})
	must("last page", err)
	if len(res.TicketIDs) != 1 {
		t.Fatalf("last page created tickets %v, want one", res.TicketIDs)
	}
	resolved := res.TicketIDs[0]
	must("finish poll", store.FinishPoll(ctx, marketplace.PollOutcome{ConnectionID: conn, LeaseOwner: "poller-1", NextPollAt: now.Add(time.Minute)}))
	must("subscription", store.SaveSubscription(ctx, conn, "sub-"+conn, "dest-1"))
	pushed, err := testenv.IngestEvents(ctx, store, tenant, conn, []marketplace.InboundMessage{msg("402-0000003-0000003", "cancel 3")})
	must("pushed events", err)
	must("notification", store.RecordNotification(ctx, marketplace.NotificationRecord{NotificationID: "n-" + conn, NotificationType: "ORDER_CHANGE",
		SubscriptionID: "sub-" + conn, ConnectionID: conn, TenantID: tenant, OrderID: "402-0000003-0000003", Outcome: marketplace.OutcomeStored,
		EventTime: &now, MessagesCreated: pushed.MessagesCreated, Routed: true}))
	email := fmt.Sprintf("amazon.%s.fr.tok0000000000001@inbound.keybuzz.test", tenant)
	must("inbound addresses", store.EnsureInboundAddresses(ctx, tenant, []marketplace.InboundAddress{{TenantID: tenant, Country: "FR",
		MarketplaceID: "A13V1IB3VIYZZH", Token: "tok0000000000001", EmailAddress: email}}))
	addr, err := store.InboundAddressByEmail(ctx, email)
	must("address", err)
	mail := marketplace.InboundMessage{ExternalID: "<m1@marketplace.amazon.fr>", ThreadKey: "402-0000004-0000004", OrderID: "402-0000004-0000004",
		BuyerName: "Camille", BuyerEmail: "x1@marketplace.amazon.fr", Language: "fr", Subject: "Où est ma commande ?", Body: "Bonjour", ReceivedAt: now}
	mres, err := store.IngestMail(ctx, marketplace.ReceivedMail{SESMessageID: "ses-1", Recipient: email, Bucket: "b", ObjectKey: "raw/ses-1", Size: 10,
		TenantID: tenant, ConnectionID: conn, AddressID: addr.ID, MessageID: "m1@marketplace.amazon.fr", From: "x1@marketplace.amazon.fr",
		OrderID: "402-0000004-0000004", Kind: "BUYER_MESSAGE", ReceivedAt: now}, mail, nil)
	must("mail", err)
	if mres.TicketID == "" {
		t.Fatalf("mail: %+v", mres)
	}
	if _, err := store.RequestOrderContext(ctx, marketplace.OrderContext{TicketID: mres.TicketID, TenantID: tenant, ConnectionID: conn, OrderID: mail.OrderID}); err != nil {
		t.Fatal(err)
	}
	must("order context", store.CompleteOrderContext(ctx, marketplace.OrderContext{TicketID: mres.TicketID, TenantID: tenant, Context: []byte(`{"status":"Shipped"}`),
		Summary: "Order 402-0000004-0000004: Shipped"}))
	revoked := testenv.ID("tenant-revoked")
	rconn := connect(revoked, "AREVOKED"+testenv.ID("s"))
	if _, err := store.AcquirePoll(ctx, revoked, rconn, "poller-2", time.Minute); err != nil {
		t.Fatal(err)
	}
	must("revoked", store.FinishPoll(ctx, marketplace.PollOutcome{ConnectionID: rconn, LeaseOwner: "poller-2", Error: "lwa: invalid_grant",
		NextPollAt: now.Add(time.Minute), Status: marketplace.StatusNeedsReauth}))
	if c, _, err := store.ConnectionByTenant(ctx, revoked); err != nil || c.Status != marketplace.StatusNeedsReauth || c.ReauthReason != "revoked" {
		t.Fatalf("revoked connection: %+v %v", c, err)
	}
	gone := testenv.ID("tenant-gone")
	connect(gone, "AGONE"+testenv.ID("s"))
	if _, _, err := store.Disconnect(ctx, gone); err != nil {
		t.Fatal(err)
	}
	disabledByKeybuzz := testenv.ID("tenant-kbdisabled")
	dconn := connect(disabledByKeybuzz, "AKBOFF"+testenv.ID("s"))

	// 2. KeyBuzz's client reads everything the connector wrote.
	before := readAll(t, repo, dsn)
	for _, model := range []string{"tenant", "marketplaceConnection", "marketplaceSyncState", "externalMessage", "ticket", "ticketMessage",
		"inboundConnection", "inboundAddress"} {
		if before[model] == 0 {
			t.Errorf("KeyBuzz's client read no %s row: the flows above wrote some", model)
		}
	}
	var statuses []string
	rows, err := pool.Query(ctx, `SELECT DISTINCT "status"::text FROM public."MarketplaceConnection" ORDER BY 1`)
	must("statuses", err)
	for rows.Next() {
		var s string
		must("status", rows.Scan(&s))
		statuses = append(statuses, s)
	}
	if fmt.Sprint(statuses) != "[CONNECTED DISABLED ERROR]" {
		t.Errorf("statuses written %v, want KeyBuzz's CONNECTED, DISABLED and ERROR (re-authorization)", statuses)
	}

	// 3. KeyBuzz's own writes, then the connector again.
	pendingTenant := testenv.ID("tenant-kbpending")
	in, _ := json.Marshal(map[string]string{"tenantId": tenant, "pendingTenantId": pendingTenant, "ticketId": resolved, "disableTenantId": disabledByKeybuzz})
	outJSON, err := devstack.KeybuzzClient(ctx, repo, dsn, "write", in)
	must("KeyBuzz's writes", err)
	var out struct {
		PendingConnectionID string `json:"pendingConnectionId"`
		InboundAddressID    string `json:"inboundAddressId"`
		Disabled            int    `json:"disabled"`
	}
	must("KeyBuzz's writes' answer", json.Unmarshal(outJSON, &out))
	if out.Disabled != 1 {
		t.Fatalf("KeyBuzz disabled %d connections, want 1", out.Disabled)
	}

	// The connector adopts the connection KeyBuzz's start created.
	c, err := store.BeginConnect(ctx, marketplace.Begin{TenantID: pendingTenant, StateHash: "h-" + pendingTenant, ExpiresAt: now.Add(15 * time.Minute),
		BindingHash: "b", AppSource: marketplace.AppExternalTest})
	must("begin connect on KeyBuzz's PENDING connection", err)
	if c.ID != out.PendingConnectionID || c.Status != marketplace.StatusPending {
		t.Fatalf("start for a tenant KeyBuzz started: connection %s %s, want KeyBuzz's %s PENDING", c.ID, c.Status, out.PendingConnectionID)
	}
	_, err = store.MarkConnected(ctx, c.ID, marketplace.Connected{DisplayName: "Amazon P", Region: "eu", MarketplaceID: "A13V1IB3VIYZZH",
		SellingPartnerID: "APENDING" + testenv.ID("s"), VaultPath: "p", AppSource: marketplace.AppExternalTest})
	must("connect KeyBuzz's PENDING connection", err)
	if r, err := testenv.IngestEvents(ctx, store, pendingTenant, c.ID, []marketplace.InboundMessage{msg("402-0000005-0000005", "cancel 5")}); err != nil || r.TicketsCreated != 1 {
		t.Fatalf("events of the adopted connection: %+v %v", r, err)
	}
	// A buyer writes again on the ticket KeyBuzz's agent resolved: it joins it.
	again := msg("402-0000002-0000002", "encore")
	again.ExternalID = "<m2@marketplace.amazon.fr>"
	if r, err := testenv.IngestEvents(ctx, store, tenant, conn, []marketplace.InboundMessage{again}); err != nil || r.MessagesCreated != 1 || r.TicketsCreated != 0 {
		t.Fatalf("a message on the resolved ticket's thread: %+v %v", r, err)
	}
	// Polling goes on beside KeyBuzz's own sync state rows.
	if st, err := store.AcquirePoll(ctx, tenant, conn, "poller-3", time.Minute); err != nil || !st.Leased || st.Cursor == nil {
		t.Fatalf("poll after KeyBuzz's writes: %+v %v", st, err)
	}
	if _, err := store.IngestPage(ctx, marketplace.InboundPage{ConnectionID: conn, TenantID: tenant, LeaseOwner: "poller-3",
		Messages: []marketplace.InboundMessage{msg("402-0000006-0000006", "cancel 6")}, Cursor: &now}); err != nil {
		t.Fatal(err)
	}
	must("finish", store.FinishPoll(ctx, marketplace.PollOutcome{ConnectionID: conn, LeaseOwner: "poller-3", NextPollAt: now.Add(time.Minute)}))
	// KeyBuzz's inbound address is the connector's to read.
	addrs, err := store.InboundAddresses(ctx, tenant)
	must("addresses", err)
	found := false
	for _, a := range addrs {
		found = found || a.ID == out.InboundAddressID
	}
	if !found {
		t.Errorf("KeyBuzz's DE address %s not among the tenant's addresses %+v", out.InboundAddressID, addrs)
	}
	// KeyBuzz's DISABLED stops the connector.
	if c, _, err := store.ConnectionByTenant(ctx, disabledByKeybuzz); err != nil || c.Status != marketplace.StatusDisabled {
		t.Fatalf("connection KeyBuzz disabled: %+v %v", c, err)
	}
	if _, err := testenv.IngestEvents(ctx, store, disabledByKeybuzz, dconn, []marketplace.InboundMessage{msg("402-0000007-0000007", "x")}); !errors.Is(err, marketplace.ErrNotConnected) {
		t.Fatalf("events of a connection KeyBuzz disabled: %v, want ErrNotConnected", err)
	}
	jobs, _, err := store.ClaimDue(ctx, 1000, time.Minute, marketplace.ClaimCursor{})
	must("claim", err)
	for _, j := range jobs {
		if j.ConnectionID == dconn {
			t.Fatal("the fan-out claimed a connection KeyBuzz disabled")
		}
	}

	// 4. Everything again, and no drift.
	after := readAll(t, repo, dsn)
	for model, n := range before {
		if after[model] < n {
			t.Errorf("%s: %d rows after, %d before", model, after[model], n)
		}
	}
	t.Logf("KeyBuzz's client read %v", after)
	drift, err := devstack.KeybuzzDrift(ctx, repo, dsn)
	must("drift check", err)
	if drift != "" {
		t.Fatalf("Prisma's drift check of public:\n%s", drift)
	}
}

// deploymentRoleSQL makes role what docs/deploy.md makes the connector's
// role: the owner of keybuzz_amazon (here already migrated, so its objects
// are handed over) with SELECT, INSERT, UPDATE on the KeyBuzz tables the
// connector shares and nothing else in public.
func deploymentRoleSQL(role string) string {
	return fmt.Sprintf(`
CREATE ROLE %[1]s LOGIN;
GRANT USAGE ON SCHEMA public TO %[1]s;
GRANT SELECT, INSERT, UPDATE ON public."MarketplaceConnection", public."MarketplaceSyncState",
    public."ExternalMessage", public."Ticket", public."TicketMessage", public."TicketEvent",
    public."MarketplaceOutboundMessage", public."inbound_connections", public."inbound_addresses" TO %[1]s;
ALTER SCHEMA keybuzz_amazon OWNER TO %[1]s;
DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'keybuzz_amazon' AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE keybuzz_amazon.%%I OWNER TO %[1]s', r.relname);
    END LOOP;
END $$;
ALTER FUNCTION keybuzz_amazon.cuid() OWNER TO %[1]s;
`, role)
}

// readAll reads every row of every shared model with KeyBuzz's client and
// returns the counts.
func readAll(t *testing.T, repo, dsn string) map[string]int {
	t.Helper()
	b, err := devstack.KeybuzzClient(context.Background(), repo, dsn, "read", nil)
	if err != nil {
		t.Fatalf("KeyBuzz's client reading every row: %v", err)
	}
	var r struct{ Counts map[string]int }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return r.Counts
}
