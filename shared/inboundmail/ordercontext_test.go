package inboundmail_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// budgetOrders answers getOrder only when the test opens the budget.
type budgetOrders struct {
	mu      sync.Mutex
	open    bool
	retryAt time.Time
	calls   int
	targets []marketplace.SellerAccount
}

func (b *budgetOrders) GetOrder(_ context.Context, t marketplace.SellerAccount, orderID string) (spapi.Order, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	b.targets = append(b.targets, t)
	if !b.open {
		return spapi.Order{}, &sellerapi.NoBudgetError{RetryAt: b.retryAt}
	}
	o := spapi.Order{OrderID: orderID, CreatedTime: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
		Raw: json.RawMessage(`{"fulfillment":{"fulfillmentStatus":"SHIPPED"}}`)}
	o.SalesChannel.MarketplaceID = "A13V1IB3VIYZZH"
	var it spapi.OrderItem
	it.Product.Title, it.Product.ASIN, it.Product.SellerSKU = "Widget", "B0ABCDEF12", "W-1"
	o.OrderItems = []spapi.OrderItem{it}
	return o, nil
}

// connected is a store on a fresh database with one CONNECTED connection
// of a tenant of its own: the tenant and the connection's id.
func connected(t *testing.T) (*postgres.Store, *pgxpool.Pool, string, string) {
	t.Helper()
	pool, _ := testenv.Pool(t)
	tenant := testenv.ID("tenant")
	var conn string
	if err := pool.QueryRow(context.Background(), `SELECT keybuzz_dev.connection($1, 'CONNECTED', 'EU', 'A13V1IB3VIYZZH')`, tenant).Scan(&conn); err != nil {
		t.Fatal(err)
	}
	return postgres.New(pool), pool, tenant, conn
}

// TestOrderContextAfterTheTicket: the ticket exists before its order's
// context; an empty budget defers the context, which comes once the budget
// allows, once, as an internal SYSTEM message.
func TestOrderContextAfterTheTicket(t *testing.T) {
	ctx := context.Background()
	store, pool, tenant, conn := connected(t)
	now := time.Now()
	clock := func() time.Time { return now }
	res, err := testenv.IngestEvents(ctx, store, tenant, conn, []marketplace.InboundMessage{{ExternalID: "<m@x>", ThreadKey: "402-1", OrderID: "402-1",
		BuyerName: "Ana", Body: "hello", ReceivedAt: now}})
	if err != nil || res.TicketsCreated != 1 {
		t.Fatal(res, err)
	}
	var ticket string
	if err := pool.QueryRow(ctx, `SELECT "id" FROM "Ticket" WHERE "tenantId" = $1`, tenant).Scan(&ticket); err != nil {
		t.Fatal(err)
	}
	orders := &budgetOrders{retryAt: now.Add(2 * time.Second)}
	oc := inboundmail.NewOrderContexts(store, orders, inboundmail.WithClock(clock))

	if err := oc.Attach(ctx, tenant, conn, ticket, "402-1"); err != nil {
		t.Fatal(err)
	}
	count := func() (system int, status string) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM "TicketMessage" WHERE "ticketId" = $1 AND "senderType" = 'SYSTEM' AND "isInternal"),
  (SELECT "status" FROM keybuzz_amazon."TicketOrderContext" WHERE "ticketId" = $1)`, ticket).Scan(&system, &status); err != nil {
			t.Fatal(err)
		}
		return
	}
	if n, st := count(); n != 0 || st != "PENDING" || orders.calls != 1 {
		t.Fatalf("empty budget: %d system messages, %s, %d calls", n, st, orders.calls)
	}
	// Not due yet: no call.
	if done, err := oc.RetryDue(ctx, 5); err != nil || done != 0 || orders.calls != 1 {
		t.Fatalf("retry before the budget's time: %d %v, %d calls", done, err, orders.calls)
	}
	// The budget's time comes and a token is there.
	now = now.Add(3 * time.Second)
	orders.open = true
	if done, err := oc.RetryDue(ctx, 5); err != nil || done != 1 {
		t.Fatalf("retry: %d %v", done, err)
	}
	if n, st := count(); n != 1 || st != "DONE" {
		t.Fatalf("after the budget allowed: %d system messages, %s", n, st)
	}
	if orders.targets[1].ConnectionID != conn || orders.targets[1].MarketplaceID != "A13V1IB3VIYZZH" {
		t.Errorf("target %+v", orders.targets[1])
	}
	var body string
	if err := pool.QueryRow(ctx, `SELECT "body" FROM "TicketMessage" WHERE "ticketId" = $1 AND "senderType" = 'SYSTEM'`, ticket).Scan(&body); err != nil {
		t.Fatal(err)
	}
	if body != "Order 402-1 on Amazon.fr, status SHIPPED, placed 2026-11-30:\n- Widget (ASIN B0ABCDEF12, SKU W-1)" {
		t.Errorf("summary %q", body)
	}
	// A later mail about the order asks again: nothing more.
	if err := oc.Attach(ctx, tenant, conn, ticket, "402-1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := count(); n != 1 || orders.calls != 2 {
		t.Errorf("second attach: %d system messages, %d calls", n, orders.calls)
	}
}

// TestOrderContextWaitsForTheBudget: once the budget refused a token until
// a time, the connection's next contexts are requested due then, without a
// call; due contexts of a budget known to be empty are deferred to its time
// without a call; once it comes, they are fetched.
func TestOrderContextWaitsForTheBudget(t *testing.T) {
	ctx := context.Background()
	store, pool, tenant, conn := connected(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	clock := func() time.Time { return now }
	tickets := make([]string, 4)
	for i := range tickets {
		order := "402-" + string(rune('a'+i))
		if _, err := testenv.IngestEvents(ctx, store, tenant, conn, []marketplace.InboundMessage{{ExternalID: "<" + order + "@x>", ThreadKey: order, OrderID: order,
			Body: "hello", ReceivedAt: now}}); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(ctx, `SELECT "ticketId" FROM keybuzz_amazon."TicketThread" WHERE "tenantId" = $1 AND "threadKey" = $2`, tenant, order).Scan(&tickets[i]); err != nil {
			t.Fatal(err)
		}
	}
	orders := &budgetOrders{retryAt: now.Add(2 * time.Second)}
	oc := inboundmail.NewOrderContexts(store, orders, inboundmail.WithClock(clock))
	state := func() string {
		t.Helper()
		var s string
		if err := pool.QueryRow(ctx, `SELECT string_agg("status" || '@' || (EXTRACT(EPOCH FROM "nextAttemptAt" - $2::timestamptz) >= 2)::text, ' ' ORDER BY "orderId")
FROM keybuzz_amazon."TicketOrderContext" WHERE "tenantId" = $1`, tenant, now).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	steps := []struct {
		name      string
		run       func() error
		wantCalls int
		wantState string // per order: status @ whether due 2 s or more after the step's now
	}{
		{"first attach: the budget is empty", func() error { return oc.Attach(ctx, tenant, conn, tickets[0], "402-a") }, 1, "PENDING@true"},
		{"next attaches: no call, due at the budget's time", func() error {
			if err := oc.Attach(ctx, tenant, conn, tickets[1], "402-b"); err != nil {
				return err
			}
			return oc.Attach(ctx, tenant, conn, tickets[2], "402-c")
		}, 1, "PENDING@true PENDING@true PENDING@true"},
		{"retry before the budget's time: nothing due", func() error { _, err := oc.RetryDue(ctx, 5); return err }, 1, "PENDING@true PENDING@true PENDING@true"},
		{"the time comes, still empty: one call, the rest deferred without one", func() error {
			now = now.Add(3 * time.Second)
			orders.retryAt = now.Add(2 * time.Second)
			_, err := oc.RetryDue(ctx, 5)
			return err
		}, 2, "PENDING@true PENDING@true PENDING@true"},
		{"the time comes with tokens: all fetched", func() error {
			now = now.Add(3 * time.Second)
			orders.open = true
			if err := oc.Attach(ctx, tenant, conn, tickets[3], "402-d"); err != nil {
				return err
			}
			_, err := oc.RetryDue(ctx, 5)
			return err
		}, 6, "DONE@false DONE@false DONE@false DONE@false"},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := state(); orders.calls != s.wantCalls || got != s.wantState {
			t.Errorf("%s: %d calls, contexts %q; want %d, %q", s.name, orders.calls, got, s.wantCalls, s.wantState)
		}
	}
}
