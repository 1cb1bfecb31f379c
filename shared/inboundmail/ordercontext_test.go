package inboundmail_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
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
		return spapi.Order{}, &poll.NoBudgetError{RetryAt: b.retryAt}
	}
	o := spapi.Order{OrderID: orderID, CreatedTime: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
		Raw: json.RawMessage(`{"fulfillment":{"fulfillmentStatus":"SHIPPED"}}`)}
	o.SalesChannel.MarketplaceID = "A13V1IB3VIYZZH"
	var it spapi.OrderItem
	it.Product.Title, it.Product.ASIN, it.Product.SellerSKU = "Widget", "B0ABCDEF12", "W-1"
	o.OrderItems = []spapi.OrderItem{it}
	return o, nil
}

// TestOrderContextAfterTheTicket: the ticket exists before its order's
// context; an empty budget defers the context, which comes once the budget
// allows, once, as an internal SYSTEM message.
func TestOrderContextAfterTheTicket(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Pool(t)
	now := time.Now()
	clock := func() time.Time { return now }
	store := postgres.New(pool)
	tenant := testenv.ID("tenant")
	var conn string
	if err := pool.QueryRow(ctx, `INSERT INTO "MarketplaceConnection" ("tenantId", "status", "region", "marketplaceId")
VALUES ($1, 'CONNECTED', 'EU', 'A13V1IB3VIYZZH') RETURNING "id"`, tenant).Scan(&conn); err != nil {
		t.Fatal(err)
	}
	res, err := store.Ingest(ctx, tenant, conn, []marketplace.InboundMessage{{ExternalID: "<m@x>", ThreadKey: "402-1", OrderID: "402-1",
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
  (SELECT "status" FROM "TicketOrderContext" WHERE "ticketId" = $1)`, ticket).Scan(&system, &status); err != nil {
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
