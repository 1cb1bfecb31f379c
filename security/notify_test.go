package security

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// notifyWorld is the intake's view of two tenants, each with its seller and
// ORDER_CHANGE subscription; it records what gets stored and which seller
// token each getOrder used.
type notifyWorld struct {
	mu       sync.Mutex
	targets  map[string]marketplace.PushTarget // subscription -> connection
	orders   map[string]string                 // order -> seller
	ingested map[string][]string               // tenant -> order ids stored
	getOrder []string                          // seller of each getOrder
	outcomes []marketplace.Outcome
}

func (w *notifyWorld) ConnectionBySubscription(_ context.Context, sub string) (marketplace.PushTarget, bool, error) {
	t, ok := w.targets[sub]
	return t, ok, nil
}

func (w *notifyWorld) IngestNotification(_ context.Context, tenantID, _ string, msgs []marketplace.InboundMessage, rec marketplace.NotificationRecord) (marketplace.PageResult, marketplace.NotificationRecord, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range msgs {
		w.ingested[tenantID] = append(w.ingested[tenantID], m.OrderID)
	}
	rec.Outcome, rec.MessagesCreated = marketplace.OutcomeStored, len(msgs)
	w.outcomes = append(w.outcomes, rec.Outcome)
	return marketplace.PageResult{MessagesCreated: len(msgs)}, rec, nil
}

func (w *notifyWorld) RecordNotification(_ context.Context, r marketplace.NotificationRecord) error {
	w.mu.Lock()
	w.outcomes = append(w.outcomes, r.Outcome)
	w.mu.Unlock()
	return nil
}

// GetOrder answers like SP-API: a seller's token reads only its own orders.
func (w *notifyWorld) GetOrder(_ context.Context, t marketplace.SellerAccount, orderID string) (spapi.Order, error) {
	w.mu.Lock()
	w.getOrder = append(w.getOrder, t.SellingPartnerID)
	w.mu.Unlock()
	if w.orders[orderID] != t.SellingPartnerID {
		return spapi.Order{}, spapi.ErrNotFound
	}
	var o spapi.Order
	raw := `{"orderId":"` + orderID + `","orderItems":[{"orderItemId":"12345678901234","cancellation":{"cancellationRequest":{"requester":"BUYER","cancelReason":"x"}}}]}`
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		return o, err
	}
	return o, nil
}

// notification is events/ordernotify.json's body with its subscription,
// SellerId and order replaced.
func notification(t *testing.T, sub, seller, order string) string {
	t.Helper()
	raw, err := os.ReadFile("../events/ordernotify.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	body := ev.Records[0].Body
	for old, repl := range map[string]string{"5c2ab6a1-7f3e-4d9a-9b1c-0e8f2d4a6b71": sub, "A13YSNECFL0GHD": seller, "405-1234567-7654321": order} {
		body = strings.ReplaceAll(body, old, repl)
	}
	return body
}

// A notification names its seller in an unsigned field: routed by its
// subscription, one with a forged SellerId is dropped before any SP-API
// call; one naming another tenant's order is read with the subscription's
// own seller token, which cannot read it. Nothing reaches another tenant.
func TestForgedSellerIDNotification(t *testing.T) {
	w := &notifyWorld{
		targets: map[string]marketplace.PushTarget{
			"sub-a": {SellerAccount: marketplace.SellerAccount{ConnectionID: "conn-a", TenantID: "tenant-a", SellingPartnerID: "ASELLERAAAAA"}, Status: marketplace.StatusConnected, SubscriptionID: "sub-a"},
			"sub-b": {SellerAccount: marketplace.SellerAccount{ConnectionID: "conn-b", TenantID: "tenant-b", SellingPartnerID: "BSELLERBBBBB"}, Status: marketplace.StatusConnected, SubscriptionID: "sub-b"},
		},
		orders:   map[string]string{"405-0000000-000000A": "ASELLERAAAAA", "405-0000000-000000B": "BSELLERBBBBB"},
		ingested: map[string][]string{},
	}
	in := push.NewIntake(w, w, push.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	cases := []struct {
		name, sub, seller, order string
	}{
		{"A's subscription, B's SellerId and order", "sub-a", "BSELLERBBBBB", "405-0000000-000000B"},
		{"A's subscription, B's SellerId, A's order", "sub-a", "BSELLERBBBBB", "405-0000000-000000A"},
		{"B's subscription and SellerId, A's order", "sub-b", "BSELLERBBBBB", "405-0000000-000000A"},
		{"an unknown subscription, A's SellerId and order", "sub-x", "ASELLERAAAAA", "405-0000000-000000A"},
		// Near-matches of the subscription's seller never pass for it.
		{"A's subscription, A's SellerId in lower case, B's order", "sub-a", "aselleraaaaa", "405-0000000-000000B"},
		{"A's subscription, A's SellerId with a space, B's order", "sub-a", "ASELLERAAAAA ", "405-0000000-000000B"},
		{"A's subscription, an empty SellerId, B's order", "sub-a", "", "405-0000000-000000B"},
		{"B's subscription, A's SellerId, B's order", "sub-b", "ASELLERAAAAA", "405-0000000-000000B"},
	}
	for _, c := range cases {
		for receive := 1; receive <= 3; receive++ { // redelivered until the intake gives up on a not-found order
			_, _ = in.Handle(context.Background(), c.name, notification(t, c.sub, c.seller, c.order), receive)
		}
	}
	for _, seller := range w.getOrder {
		if seller != "BSELLERBBBBB" {
			t.Errorf("getOrder used seller %s's token", seller)
		}
	}
	if len(w.ingested["tenant-a"]) != 0 || len(w.ingested["tenant-b"]) != 0 {
		t.Errorf("forged notifications stored events: %v", w.ingested)
	}
	mismatch := 0
	for _, o := range w.outcomes {
		if o == marketplace.OutcomeSellerMismatch {
			mismatch++
		}
	}
	if mismatch == 0 {
		t.Errorf("no notification dropped for its SellerId: outcomes %v", w.outcomes)
	}
	// The control: a genuine notification is stored in its own tenant.
	if _, err := in.Handle(context.Background(), "genuine", notification(t, "sub-b", "BSELLERBBBBB", "405-0000000-000000B"), 1); err != nil {
		t.Fatal(err)
	}
	if got := w.ingested["tenant-b"]; len(got) != 1 || got[0] != "405-0000000-000000B" || len(w.ingested["tenant-a"]) != 0 {
		t.Errorf("the genuine notification: stored %v", w.ingested)
	}
}
