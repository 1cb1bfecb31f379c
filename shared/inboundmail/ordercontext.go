package inboundmail

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// Orders reads one order with the seller's token within the connection's
// getOrder budget; without a token it fails with a *poll.NoBudgetError or
// *poll.ThrottledError (push.SellerOrders is one).
type Orders interface {
	GetOrder(ctx context.Context, acct marketplace.SellerAccount, orderID string) (spapi.Order, error)
}

// ContextStore keeps the order context of tickets ("TicketOrderContext").
type ContextStore interface {
	// RequestOrderContext records that ticketID wants orderID's context
	// (once; a ticket already DONE or PENDING keeps its row).
	RequestOrderContext(ctx context.Context, c marketplace.OrderContext) (bool, error)
	// CompleteOrderContext stores the context and adds it to the ticket as an
	// internal SYSTEM message.
	CompleteOrderContext(ctx context.Context, c marketplace.OrderContext) error
	// DeferOrderContext leaves the context PENDING until retryAt (FAILED when
	// failed is set).
	DeferOrderContext(ctx context.Context, ticketID string, retryAt time.Time, lastError string, failed bool) error
	// DueOrderContexts lists PENDING contexts due by now.
	DueOrderContexts(ctx context.Context, now time.Time, limit int) ([]marketplace.OrderContext, error)
	// ConnectionByTenant is the tenant's Amazon connection.
	ConnectionByTenant(ctx context.Context, tenantID string) (marketplace.Connection, bool, error)
}

// OrderContexts adds order context to tickets after they exist: Attach
// tries once at once; an empty budget leaves it PENDING until the budget's
// retry time, and RetryDue (run after every mail batch) picks it up then.
// The ticket never waits for it.
type OrderContexts struct {
	store   ContextStore
	orders  Orders
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
}

// NewOrderContexts builds the order-context step (options: WithLogger,
// WithClock).
func NewOrderContexts(store ContextStore, orders Orders, opts ...Option) *OrderContexts {
	o := apply(opts)
	return &OrderContexts{store: store, orders: orders, log: o.log, now: o.now, timeout: 5 * time.Second}
}

// Attach implements OrderContext.
func (o *OrderContexts) Attach(ctx context.Context, tenantID, connectionID, ticketID, orderID string) error {
	c := marketplace.OrderContext{TicketID: ticketID, TenantID: tenantID, ConnectionID: connectionID, OrderID: orderID}
	fresh, err := o.store.RequestOrderContext(ctx, c)
	if err != nil || !fresh {
		return err
	}
	return o.fetch(ctx, c)
}

// RetryDue fetches the PENDING contexts whose retry time has come (at most
// limit) and says how many it completed.
func (o *OrderContexts) RetryDue(ctx context.Context, limit int) (int, error) {
	due, err := o.store.DueOrderContexts(ctx, o.now(), limit)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, c := range due {
		if err := o.fetch(ctx, c); err == nil {
			done++
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
		return o.store.DeferOrderContext(ctx, c.TicketID, o.now(), "connection not CONNECTED", true)
	}
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	order, err := o.orders.GetOrder(cctx, conn.SellerAccount(), c.OrderID)
	cancel()
	var nb *poll.NoBudgetError
	var th *poll.ThrottledError
	switch {
	case errors.As(err, &nb):
		return o.store.DeferOrderContext(ctx, c.TicketID, nb.RetryAt, "rate budget empty", false)
	case errors.As(err, &th):
		return o.store.DeferOrderContext(ctx, c.TicketID, th.RetryAt, "throttled", false)
	case errors.Is(err, spapi.ErrNotFound):
		return o.store.DeferOrderContext(ctx, c.TicketID, o.now(), "order not found", true)
	case err != nil:
		// Transient (Vault, LWA, network): try again in a minute.
		_ = o.store.DeferOrderContext(ctx, c.TicketID, o.now().Add(time.Minute), truncate(err.Error(), 300), false)
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
