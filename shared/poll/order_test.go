package poll_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// The gateway's GetOrder reads one order with the connection's
// credentials, within its own getOrder budget (not searchOrders'); a 429
// empties that budget, and polling through the same gateway keeps its own.
func TestGetOrderHasItsOwnBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.connect(1)
	id, err := e.SB.AddOrder(s.ID, "", true)
	if err != nil {
		t.Fatal(err)
	}
	sp := spapiClient(&http.Client{Timeout: 5 * time.Second})
	gw := e.gateway(credcache.New(e.Vault, credcache.WithClock(e.Clock.Now)), sp)
	src := poll.NewAmazonSource(gw, sp, poll.WithClock(e.Clock.Now))
	target := marketplace.SellerAccount{TenantID: s.TenantID, ConnectionID: s.ConnectionID, Region: "eu", SellingPartnerID: s.ID}
	ctx := context.Background()

	o, err := gw.GetOrder(ctx, target, id)
	// buyerEmail only for a seller-fulfilled order (the Orders model).
	if err != nil || o.OrderID != id || o.Buyer == nil || (o.Buyer.BuyerEmail != "") != e.SB.SellerFulfilled(s.ID, id) || len(spapi.BuyerEvents([]spapi.Order{o})) != 1 {
		t.Fatalf("order %+v, %v", o, err)
	}
	if _, err := gw.GetOrder(ctx, target, "402-0000000-0000000"); !errors.Is(err, spapi.ErrNotFound) {
		t.Fatalf("unknown order: %v", err)
	}
	e.SB.InjectFault(s.ID, sandbox.Fault{Kind: "429", Count: 1})
	var throttled *sellerapi.ThrottledError
	if _, err := gw.GetOrder(ctx, target, id); !errors.As(err, &throttled) {
		t.Fatalf("429: %v", err)
	}
	var nb *sellerapi.NoBudgetError
	if _, err := gw.GetOrder(ctx, target, id); !errors.As(err, &nb) || !nb.RetryAt.After(e.Clock.Now()) {
		t.Fatalf("after a 429 the getOrder budget waits: %v", err)
	}
	type budget struct {
		calls, throttled int
		rate             float64
		burst            int
	}
	got := map[string]budget{}
	rows, err := e.Pool.Query(ctx, `SELECT "operation", "callCount", "count429", "rate", "burst" FROM keybuzz_amazon."RateBudget" WHERE "connectionId" = $1`, s.ConnectionID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var op string
		var b budget
		if err := rows.Scan(&op, &b.calls, &b.throttled, &b.rate, &b.burst); err != nil {
			t.Fatal(err)
		}
		got[op] = b
	}
	if want := (budget{calls: 3, throttled: 1, rate: spapi.GetOrderRate, burst: spapi.GetOrderBurst}); len(got) != 1 || got[spapi.OpGetOrder] != want {
		t.Fatalf("budgets %+v, want only getOrder's %+v", got, want)
	}
	// Polling still has its whole searchOrders budget.
	if res, err := e.poller(src).PollResult(ctx, message(s)); err != nil || res.Cursor == nil {
		t.Fatalf("poll after getOrder's 429: %+v, %v", res, err)
	}
}
