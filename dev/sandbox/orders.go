package sandbox

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"
)

const (
	historyDays  = 30
	timeLayout   = "2006-01-02T15:04:05Z"
	currencyEUR  = "EUR"
	cancelEveryN = 10 // about one order in ten carries a buyer cancellation request
)

var marketplaceInfo = map[string]struct{ name, tld string }{
	MarketplaceFR: {"Amazon.fr", "fr"},
	MarketplaceDE: {"Amazon.de", "de"},
	MarketplaceIT: {"Amazon.it", "it"},
	MarketplaceES: {"Amazon.es", "es"},
}

type order struct {
	id            string
	marketplaceID string
	created       time.Time
	updated       time.Time
	buyerName     string
	buyerEmail    string
	status        string // FulfillmentStatus
	fulfilledBy   string // MERCHANT | AMAZON
	items         []*orderItem
}

type orderItem struct {
	id, asin, sku, title string
	qty                  int
	unitPrice            int // cents
	cancel               *cancelRequest
}

type cancelRequest struct {
	reason string
	at     time.Time
}

// orderStore holds one seller's orders; guarded by Server.mu.
type orderStore struct {
	seller Seller
	rng    *rand.Rand
	orders []*order
	byID   map[string]*order
}

var (
	firstNames = []string{"Camille", "Louis", "Léa", "Hugo", "Lukas", "Anna", "Giulia", "Marco", "Lucía", "Pablo", "Chloé", "Jonas"}
	lastNames  = []string{"Martin", "Bernard", "Dubois", "Müller", "Schmidt", "Rossi", "Bianchi", "García", "López", "Moreau", "Weber", "Ricci"}
	products   = []struct{ title, sku string }{
		{"Mug en céramique 350 ml", "MUG-350"},
		{"Carnet A5 pointillé", "NB-A5-DOT"},
		{"Lampe de bureau LED", "LAMP-LED-01"},
		{"Coque silicone smartphone", "CASE-SIL-12"},
		{"Puzzle 1000 pièces", "PZL-1000"},
		{"Tapis de yoga 6 mm", "YOGA-6MM"},
		{"Gourde inox 750 ml", "BTL-750"},
		{"Casque audio Bluetooth", "HP-BT-22"},
	}
	cancelReasons = []string{
		"Changed mind about purchase",
		"Ordered by mistake",
		"Found a better price elsewhere",
		"Delivery date is too late",
		"Need to change the shipping address",
		"Need to change the payment method",
	}
	statuses = []string{"PENDING", "UNSHIPPED", "SHIPPED", "SHIPPED", "SHIPPED"}
)

// storeLocked returns the seller's orders, generating them on first use from
// the seller id and the anchor time. Caller holds s.mu.
func (s *Server) storeLocked(seller Seller) *orderStore {
	st := s.stores[seller.ID]
	if st != nil {
		return st
	}
	a, b := seedFor("orders-" + seller.ID)
	st = &orderStore{seller: seller, rng: rand.New(rand.NewPCG(a, b)), byID: map[string]*order{}}
	start := s.anchor.Add(-historyDays * 24 * time.Hour).Truncate(time.Second)
	latest := s.anchor.Add(-3 * time.Minute).Truncate(time.Second)
	for d := 0; d < historyDays; d++ {
		dayStart := start.Add(time.Duration(d) * 24 * time.Hour)
		n := 8 + st.rng.IntN(6)
		for i := 0; i < n; i++ {
			created := dayStart.Add(time.Duration(st.rng.Int64N(int64(24*time.Hour/time.Second))) * time.Second)
			if created.After(latest) {
				created = latest.Add(-time.Duration(st.rng.IntN(3600)) * time.Second)
			}
			updated := created.Add(time.Duration(st.rng.Int64N(int64(36*time.Hour/time.Second))) * time.Second)
			if updated.After(latest) {
				updated = latest
			}
			o := st.newOrder(st.pickMarketplace(), created)
			o.updated = updated
			if st.rng.IntN(cancelEveryN) == 0 {
				it := o.items[st.rng.IntN(len(o.items))]
				it.cancel = &cancelRequest{reason: cancelReasons[st.rng.IntN(len(cancelReasons))], at: updated}
				o.status = "UNSHIPPED"
			}
			st.add(o)
		}
	}
	s.stores[seller.ID] = st
	return st
}

func (st *orderStore) pickMarketplace() string {
	// Amazon.fr gets about half of the orders, the others share the rest.
	mps := st.seller.MarketplaceIDs
	if st.rng.IntN(2) == 0 || len(mps) == 1 {
		return mps[0]
	}
	return mps[1+st.rng.IntN(len(mps)-1)]
}

func (st *orderStore) newOrder(marketplaceID string, created time.Time) *order {
	r := st.rng
	var id string
	for {
		id = fmt.Sprintf("%03d-%07d-%07d", 402+r.IntN(7), r.IntN(10_000_000), r.IntN(10_000_000))
		if st.byID[id] == nil {
			break
		}
	}
	const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	local := make([]byte, 14)
	for i := range local {
		local[i] = alnum[r.IntN(len(alnum))]
	}
	fulfilledBy := "MERCHANT"
	if r.IntN(3) == 0 {
		fulfilledBy = "AMAZON"
	}
	o := &order{
		id:            id,
		marketplaceID: marketplaceID,
		created:       created,
		updated:       created,
		buyerName:     firstNames[r.IntN(len(firstNames))] + " " + lastNames[r.IntN(len(lastNames))],
		buyerEmail:    string(local) + "@marketplace.amazon." + marketplaceInfo[marketplaceID].tld,
		status:        statuses[r.IntN(len(statuses))],
		fulfilledBy:   fulfilledBy,
	}
	nItems := 1 + r.IntN(3)
	for i := 0; i < nItems; i++ {
		p := products[r.IntN(len(products))]
		asin := make([]byte, 9)
		for j := range asin {
			asin[j] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[r.IntN(36)]
		}
		o.items = append(o.items, &orderItem{
			id:        fmt.Sprintf("%014d", r.Int64N(100_000_000_000_000)),
			asin:      "B0" + string(asin[:8]),
			sku:       p.sku,
			title:     p.title,
			qty:       1 + r.IntN(3),
			unitPrice: 499 + r.IntN(9500),
		})
	}
	return o
}

func (st *orderStore) add(o *order) {
	st.orders = append(st.orders, o)
	st.byID[o.id] = o
}

// AddOrder records a new order placed now on the seller's marketplace
// (Amazon.fr when marketplaceID is empty), optionally with a buyer
// cancellation request on its first item.
func (s *Server) AddOrder(sellerID, marketplaceID string, withCancellation bool) (string, error) {
	seller, ok := s.seller(sellerID)
	if !ok {
		return "", fmt.Errorf("add order: unknown seller %q", sellerID)
	}
	if marketplaceID == "" {
		marketplaceID = seller.MarketplaceIDs[0]
	}
	if !slices.Contains(seller.MarketplaceIDs, marketplaceID) {
		return "", fmt.Errorf("add order: seller %s does not sell on %s", sellerID, marketplaceID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.storeLocked(seller)
	now := s.now().Truncate(time.Second)
	o := st.newOrder(marketplaceID, now)
	if withCancellation {
		o.items[0].cancel = &cancelRequest{reason: cancelReasons[st.rng.IntN(len(cancelReasons))], at: now}
		o.status = "UNSHIPPED"
	}
	st.add(o)
	if withCancellation {
		s.publishLocked(seller, o, "BuyerRequestedChange", now)
	}
	return o.id, nil
}

// AddCancellationRequest records that the buyer asks to cancel the first
// item of the order without a request yet; the order's lastUpdatedTime
// becomes now.
func (s *Server) AddCancellationRequest(sellerID, orderID, reason string) (Event, error) {
	seller, ok := s.seller(sellerID)
	if !ok {
		return Event{}, fmt.Errorf("add cancellation request: unknown seller %q", sellerID)
	}
	if strings.TrimSpace(reason) == "" {
		reason = "Ordered by mistake"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.storeLocked(seller)
	o := st.byID[orderID]
	if o == nil {
		return Event{}, fmt.Errorf("add cancellation request: seller %s has no order %q", sellerID, orderID)
	}
	now := s.now().Truncate(time.Second)
	for _, it := range o.items {
		if it.cancel == nil {
			it.cancel = &cancelRequest{reason: reason, at: now}
			if o.updated.Before(now) {
				o.updated = now
			}
			s.publishLocked(seller, o, "BuyerRequestedChange", now)
			return Event{SellerID: sellerID, OrderID: o.id, OrderItemID: it.id, Reason: reason, At: now}, nil
		}
	}
	return Event{}, fmt.Errorf("add cancellation request: every item of order %s already has one", orderID)
}

// BuyerEvents is the ground truth: every buyer cancellation request of the
// seller that exists at the sandbox's current time, oldest first.
func (s *Server) BuyerEvents(sellerID string) []Event {
	seller, ok := s.seller(sellerID)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []Event
	for _, o := range s.storeLocked(seller).orders {
		for _, it := range o.items {
			if it.cancel != nil && !it.cancel.at.After(now) {
				out = append(out, Event{SellerID: sellerID, OrderID: o.id, OrderItemID: it.id, Reason: it.cancel.reason, At: it.cancel.at})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		if out[i].OrderID != out[j].OrderID {
			return out[i].OrderID < out[j].OrderID
		}
		return out[i].OrderItemID < out[j].OrderItemID
	})
	return out
}

// JSON shapes of the Orders v2026-01-01 model (only what the sandbox fills).
type (
	jsonMoney struct {
		Amount       string `json:"amount"`
		CurrencyCode string `json:"currencyCode"`
	}
	jsonOrder struct {
		OrderID         string           `json:"orderId"`
		CreatedTime     string           `json:"createdTime"`
		LastUpdatedTime string           `json:"lastUpdatedTime"`
		SalesChannel    jsonSalesChannel `json:"salesChannel"`
		Buyer           *jsonBuyer       `json:"buyer,omitempty"`
		Proceeds        *jsonProceeds    `json:"proceeds,omitempty"`
		Fulfillment     *jsonFulfillment `json:"fulfillment,omitempty"`
		OrderItems      []jsonOrderItem  `json:"orderItems"`
	}
	jsonSalesChannel struct {
		ChannelName     string `json:"channelName"`
		MarketplaceID   string `json:"marketplaceId"`
		MarketplaceName string `json:"marketplaceName"`
	}
	jsonBuyer struct {
		BuyerName  string `json:"buyerName"`
		BuyerEmail string `json:"buyerEmail,omitempty"`
	}
	jsonProceeds struct {
		GrandTotal jsonMoney `json:"grandTotal"`
	}
	jsonFulfillment struct {
		FulfillmentStatus string `json:"fulfillmentStatus"`
		FulfilledBy       string `json:"fulfilledBy"`
	}
	jsonOrderItem struct {
		OrderItemID     string            `json:"orderItemId"`
		QuantityOrdered int               `json:"quantityOrdered"`
		Product         jsonProduct       `json:"product"`
		Cancellation    *jsonCancellation `json:"cancellation,omitempty"`
	}
	jsonProduct struct {
		ASIN      string    `json:"asin"`
		Title     string    `json:"title"`
		SellerSKU string    `json:"sellerSku"`
		Price     jsonPrice `json:"price"`
	}
	jsonPrice struct {
		UnitPrice jsonMoney `json:"unitPrice"`
	}
	jsonCancellation struct {
		CancellationRequest *jsonCancellationRequest `json:"cancellationRequest,omitempty"`
	}
	jsonCancellationRequest struct {
		Requester    string `json:"requester"`
		CancelReason string `json:"cancelReason"`
	}
)

func money(cents int) jsonMoney {
	return jsonMoney{Amount: fmt.Sprintf("%d.%02d", cents/100, cents%100), CurrencyCode: currencyEUR}
}

// toJSON renders the order with the datasets asked for in includedData.
// BUYER adds buyer, PROCEEDS the grand total, FULFILLMENT the status and
// CANCELLATION the items' cancellation requests.
func (o *order) toJSON(included map[string]bool) jsonOrder {
	return o.toJSONAsOf(included, time.Time{})
}

// toJSONAsOf is toJSON as a read lagging at asOf sees the order: without
// the cancellation requests made after it (zero: every one).
func (o *order) toJSONAsOf(included map[string]bool, asOf time.Time) jsonOrder {
	j := jsonOrder{
		OrderID:         o.id,
		CreatedTime:     o.created.UTC().Format(timeLayout),
		LastUpdatedTime: o.updated.UTC().Format(timeLayout),
		SalesChannel: jsonSalesChannel{
			ChannelName:     "AMAZON",
			MarketplaceID:   o.marketplaceID,
			MarketplaceName: marketplaceInfo[o.marketplaceID].name,
		},
	}
	if included["BUYER"] {
		j.Buyer = &jsonBuyer{BuyerName: o.buyerName}
		if o.fulfilledBy != "AMAZON" {
			// The model gives buyerEmail for seller-fulfilled orders only.
			j.Buyer.BuyerEmail = o.buyerEmail
		}
	}
	if included["FULFILLMENT"] {
		j.Fulfillment = &jsonFulfillment{FulfillmentStatus: o.status, FulfilledBy: o.fulfilledBy}
	}
	total := 0
	for _, it := range o.items {
		total += it.unitPrice * it.qty
		ji := jsonOrderItem{
			OrderItemID:     it.id,
			QuantityOrdered: it.qty,
			Product: jsonProduct{
				ASIN: it.asin, Title: it.title, SellerSKU: it.sku,
				Price: jsonPrice{UnitPrice: money(it.unitPrice)},
			},
		}
		if included["CANCELLATION"] && it.cancel != nil && (asOf.IsZero() || !it.cancel.at.After(asOf)) {
			ji.Cancellation = &jsonCancellation{CancellationRequest: &jsonCancellationRequest{
				Requester: "BUYER", CancelReason: it.cancel.reason,
			}}
		}
		j.OrderItems = append(j.OrderItems, ji)
	}
	if included["PROCEEDS"] {
		j.Proceeds = &jsonProceeds{GrandTotal: money(total)}
	}
	return j
}
