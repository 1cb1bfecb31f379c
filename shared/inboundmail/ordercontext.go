package inboundmail

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// ContextStore keeps the order context of tickets ("TicketOrderContext").
type ContextStore interface {
	// RequestOrderContext records that ticketID wants orderID's context
	// (once; a ticket already DONE or PENDING keeps its row).
	RequestOrderContext(ctx context.Context, c marketplace.OrderContext) (bool, error)
	// CompleteOrderContext stores the context and adds it to the ticket as an
	// internal SYSTEM message.
	CompleteOrderContext(ctx context.Context, c marketplace.OrderContext) error
	// DeferOrderContexts leaves the tickets' PENDING contexts PENDING until
	// retryAt (FAILED when failed is set).
	DeferOrderContexts(ctx context.Context, ticketIDs []string, retryAt time.Time, lastError string, failed bool) error
	// DueOrderContexts lists PENDING contexts due by now.
	DueOrderContexts(ctx context.Context, now time.Time, limit int) ([]marketplace.OrderContext, error)
	// ConnectionByTenant is the tenant's Amazon connection.
	ConnectionByTenant(ctx context.Context, tenantID string) (marketplace.Connection, bool, error)
}

// OrderContexts adds order context to tickets after they exist: Attach
// tries once at once; an empty budget leaves it PENDING until the budget's
// retry time, and RetryDue (run after every mail batch) picks it up then.
// The ticket never waits for it. A connection's budget that refused a token
// until a time is not asked again before that time (the persisted budget
// said when it has one; other containers only spend it): meanwhile Attach
// only records the request, due then, and RetryDue defers what comes due
// to then, without reading the connection or the budget.
type OrderContexts struct {
	store   ContextStore
	orders  sellerapi.Orders
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration

	mu      sync.Mutex
	waiting map[string]time.Time // connection id -> when its getOrder budget has a token again
}

// NewOrderContexts builds the order-context step: orders read with the
// seller's token within the connection's getOrder budget (sellerapi.Gateway;
// without a token it fails with a *sellerapi.NoBudgetError or
// *sellerapi.ThrottledError) (options: WithLogger, WithClock).
func NewOrderContexts(store ContextStore, orders sellerapi.Orders, opts ...ContextsOption) *OrderContexts {
	o := apply(opts, ContextsOption.applyContexts)
	return &OrderContexts{store: store, orders: orders, log: o.log, now: o.now, timeout: 5 * time.Second, waiting: map[string]time.Time{}}
}

// Attach implements OrderContext.
func (o *OrderContexts) Attach(ctx context.Context, tenantID, connectionID, ticketID, orderID string) error {
	c := marketplace.OrderContext{TicketID: ticketID, TenantID: tenantID, ConnectionID: connectionID, OrderID: orderID}
	until, wait := o.waitingUntil(connectionID)
	if wait {
		c.NextAttemptAt = until // RetryDue fetches it then
	}
	fresh, err := o.store.RequestOrderContext(ctx, c)
	if err != nil || !fresh || wait {
		return err
	}
	return o.fetch(ctx, c)
}

// waitingUntil says until when connectionID's budget refused a token, if
// that time is still ahead.
func (o *OrderContexts) waitingUntil(connectionID string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	until, ok := o.waiting[connectionID]
	if ok && !o.now().Before(until) {
		delete(o.waiting, connectionID)
		return time.Time{}, false
	}
	return until, ok
}

// wait remembers that connectionID's budget has no token before until.
func (o *OrderContexts) wait(connectionID string, until time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if until.After(o.waiting[connectionID]) {
		o.waiting[connectionID] = until
	}
}

// RetryDue fetches the PENDING contexts whose retry time has come (at most
// limit) and says how many it completed.
func (o *OrderContexts) RetryDue(ctx context.Context, limit int) (int, error) {
	due, err := o.store.DueOrderContexts(ctx, o.now(), limit)
	if err != nil {
		return 0, err
	}
	// Contexts of a budget known to be empty are deferred together, to
	// when it has a token, in one statement per connection.
	type later struct {
		until   time.Time
		tickets []string
	}
	var deferred []*later
	byConn := map[string]*later{}
	done := 0
	for _, c := range due {
		if until, ok := o.waitingUntil(c.ConnectionID); ok {
			l := byConn[c.ConnectionID]
			if l == nil {
				l = &later{until: until}
				byConn[c.ConnectionID] = l
				deferred = append(deferred, l)
			}
			l.tickets = append(l.tickets, c.TicketID)
			continue
		}
		if err := o.fetch(ctx, c); err == nil {
			done++
		}
	}
	for _, l := range deferred {
		if err := o.store.DeferOrderContexts(ctx, l.tickets, l.until, "rate budget empty", false); err != nil {
			return done, err
		}
	}
	return done, nil
}

func (o *OrderContexts) fetch(ctx context.Context, c marketplace.OrderContext) error {
	conn, ok, err := o.store.ConnectionByTenant(ctx, c.TenantID)
	if err != nil {
		return err
	}
	if !ok || conn.ID != c.ConnectionID || conn.Status != marketplace.StatusConnected {
		return o.store.DeferOrderContexts(ctx, []string{c.TicketID}, o.now(), "connection not CONNECTED", true)
	}
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	order, err := o.orders.GetOrder(cctx, conn.SellerAccount(), c.OrderID)
	cancel()
	var nb *sellerapi.NoBudgetError
	var th *sellerapi.ThrottledError
	switch {
	case errors.As(err, &nb):
		o.wait(c.ConnectionID, nb.RetryAt)
		return o.store.DeferOrderContexts(ctx, []string{c.TicketID}, nb.RetryAt, "rate budget empty", false)
	case errors.As(err, &th):
		o.wait(c.ConnectionID, th.RetryAt)
		return o.store.DeferOrderContexts(ctx, []string{c.TicketID}, th.RetryAt, "throttled", false)
	case errors.Is(err, spapi.ErrNotFound):
		return o.store.DeferOrderContexts(ctx, []string{c.TicketID}, o.now(), "order not found", true)
	case err != nil:
		// Transient (Vault, LWA, network): try again in a minute.
		_ = o.store.DeferOrderContexts(ctx, []string{c.TicketID}, o.now().Add(time.Minute), truncate(err.Error(), 300), false)
		return err
	}
	c.Context, c.Summary = describe(order)
	if err := o.store.CompleteOrderContext(ctx, c); err != nil {
		return err
	}
	o.log.InfoContext(ctx, "order context added", "ticket_id", c.TicketID, "order_id", c.OrderID)
	return nil
}

// orderView is what the ticket keeps of an order.
type orderView struct {
	OrderID       string     `json:"orderId"`
	Status        string     `json:"status,omitempty"`
	MarketplaceID string     `json:"marketplaceId,omitempty"`
	Marketplace   string     `json:"marketplace,omitempty"`
	CreatedTime   time.Time  `json:"createdTime"`
	Items         []itemView `json:"items"`
}

type itemView struct {
	Title string `json:"title,omitempty"`
	ASIN  string `json:"asin,omitempty"`
	SKU   string `json:"sellerSku,omitempty"`
}

// describe reduces an order to its context (JSON) and a one-paragraph
// summary for the ticket.
func describe(o spapi.Order) (json.RawMessage, string) {
	v := orderView{OrderID: o.OrderID, MarketplaceID: o.SalesChannel.MarketplaceID, CreatedTime: o.CreatedTime}
	var raw struct {
		Fulfillment struct {
			FulfillmentStatus string `json:"fulfillmentStatus"`
		} `json:"fulfillment"`
	}
	if len(o.Raw) > 0 {
		_ = json.Unmarshal(o.Raw, &raw)
	}
	v.Status = raw.Fulfillment.FulfillmentStatus
	if mp, err := amazon.LookupMarketplace(v.MarketplaceID); err == nil {
		v.Marketplace = mp.Name
	}
	var lines []string
	for _, it := range o.OrderItems {
		v.Items = append(v.Items, itemView{Title: it.Product.Title, ASIN: it.Product.ASIN, SKU: it.Product.SellerSKU})
		lines = append(lines, fmt.Sprintf("- %s (ASIN %s, SKU %s)", it.Product.Title, it.Product.ASIN, it.Product.SellerSKU))
	}
	b, _ := json.Marshal(v)
	summary := fmt.Sprintf("Order %s on %s, status %s, placed %s:\n%s", v.OrderID, cmp.Or(v.Marketplace, v.MarketplaceID, "Amazon"),
		cmp.Or(v.Status, "unknown"), v.CreatedTime.UTC().Format("2006-01-02"), strings.Join(lines, "\n"))
	return b, summary
}
