package spapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// BuyerEvents on every order of the Orders v2026-01-01 model's examples
// ("examples" and x-amzn-api-sandbox answers of searchOrders and getOrder):
// exactly the buyer's cancellation request they hold (one, in the
// searchOrders example) becomes a message, with the buyer and the reason.
func TestBuyerEventsOnModelExamples(t *testing.T) {
	m, err := openapicheck.LoadModel("../../testdata/amazon-models/orders_2026-01-01.json")
	if err != nil {
		t.Fatal(err)
	}
	examples, err := m.Examples()
	if err != nil {
		t.Fatal(err)
	}
	var orders []spapi.Order
	bodies := 0
	for _, ex := range examples {
		if ex.Status != 200 {
			continue
		}
		var body struct {
			Orders []json.RawMessage `json:"orders"`
			Order  json.RawMessage   `json:"order"`
		}
		if err := json.Unmarshal(ex.Body, &body); err != nil {
			t.Fatal(err)
		}
		if body.Order != nil {
			body.Orders = append(body.Orders, body.Order)
		}
		for _, raw := range body.Orders {
			var o spapi.Order
			if err := json.Unmarshal(raw, &o); err != nil {
				t.Fatalf("%s %s: %v", ex.Operation, ex.Source, err)
			}
			o.Raw = raw
			orders = append(orders, o)
		}
		bodies++
	}
	if bodies != 8 || len(orders) != 8 {
		t.Fatalf("%d bodies, %d orders; want 8 of each", bodies, len(orders))
	}
	msgs := spapi.BuyerEvents(orders)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want the one buyer cancellation request: %+v", len(msgs), msgs)
	}
	got := msgs[0]
	if got.ExternalID != "123-4567890-1234567:12345678901234:cancellation" || got.ThreadKey != "123-4567890-1234567" ||
		got.BuyerEmail == "" || got.BuyerName == "" || got.MarketplaceID == "" || got.ReceivedAt.IsZero() ||
		!strings.Contains(got.Body, "Changed mind about purchase") || len(got.Raw) == 0 {
		t.Fatalf("message %+v", got)
	}
}
