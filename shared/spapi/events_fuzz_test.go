package spapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// FuzzBuyerEvents: orders decoded the way spapi decodes a page (one
// json.Unmarshal per order), then normalised. No panic; every buyer
// cancellation request gives exactly one whole message: a non-empty order
// id and item id in the deterministic external id, the order as thread,
// a body, the raw order.
func FuzzBuyerEvents(f *testing.F) {
	f.Add(`[{"orderId":"402-1","lastUpdatedTime":"2026-11-20T10:00:00Z","salesChannel":{"marketplaceId":"A13V1IB3VIYZZH"},` +
		`"buyer":{"buyerName":"Jo","buyerEmail":"x@marketplace.amazon.fr"},"orderItems":[{"orderItemId":"1","product":{"title":"Mug \"XL\""},` +
		`"cancellation":{"cancellationRequest":{"requester":"BUYER","cancelReason":"Ordered by mistake"}}}]}]`)
	f.Add(`[{"orderId":"402-2","createdTime":"2026-11-20T10:00:00Z","orderItems":[{"orderItemId":"1","cancellation":{"cancellationRequest":{"requester":"SELLER"}}},` +
		`{"orderItemId":"2","cancellation":{"cancellationRequest":{"requester":"buyer","cancelReason":""}}}]}]`)
	f.Add(`[{"orderId":"402-3","orderItems":[{"orderItemId":"1"},{"orderItemId":"2","cancellation":{}}]}]`)
	f.Add(`[{"orderId":"402-4","orderItems":[{"orderItemId":"1","cancellation":{"cancellationRequest":{"requester":"BUYER"}}},` +
		`{"orderItemId":"1","cancellation":{"cancellationRequest":{"requester":"BUYER"}}}]}]`)
	f.Add(`[null]`)
	f.Add(`[{"orderId":"a:b","orderItems":[{"orderItemId":"c","cancellation":{"cancellationRequest":{"requester":"BUYER"}}}]}]`)
	f.Fuzz(func(t *testing.T, body string) {
		var raws []json.RawMessage
		if json.Unmarshal([]byte(body), &raws) != nil {
			return
		}
		var orders []spapi.Order
		for _, raw := range raws {
			var o spapi.Order
			if json.Unmarshal(raw, &o) != nil {
				return // spapi rejects the whole page
			}
			o.Raw = raw
			orders = append(orders, o)
		}
		want := 0
		for _, o := range orders {
			for _, it := range o.OrderItems {
				if it.Cancellation != nil && it.Cancellation.CancellationRequest != nil &&
					strings.EqualFold(it.Cancellation.CancellationRequest.Requester, "BUYER") {
					want++
				}
			}
		}
		for _, o := range orders {
			for _, it := range o.OrderItems {
				if o.OrderID == "" || it.OrderItemID == "" {
					return // a known finding: TestBuyerEventsWithoutIDs
				}
			}
		}
		msgs := spapi.BuyerEvents(orders)
		if len(msgs) > want {
			t.Fatalf("%d messages for %d buyer cancellation requests", len(msgs), want)
		}
		for _, m := range msgs {
			parts := strings.Split(strings.TrimSuffix(m.ExternalID, ":cancellation"), ":")
			if m.OrderID == "" || parts[len(parts)-1] == "" || m.ThreadKey != m.OrderID || m.Body == "" || len(m.Raw) == 0 {
				t.Fatalf("half-formed message: externalId %q order %q thread %q body %q", m.ExternalID, m.OrderID, m.ThreadKey, m.Body)
			}
			if !strings.Contains(m.Body, m.OrderID) {
				t.Fatalf("body %q does not name order %q", m.Body, m.OrderID)
			}
		}
	})
}

// An order without an orderId, or an item without an orderItemId (the
// model requires both), must not become a message: it would be stored as
// externalId "::cancellation" on a ticket with an empty thread, and every
// such event of a tenant would collapse into that one row (the next one is
// "already stored"). Finding of FuzzBuyerEvents; fails until BuyerEvents (or
// spapi's decoding) rejects such orders.
func TestBuyerEventsWithoutIDs(t *testing.T) {
	for _, body := range []string{
		`{"orderId":"","orderItems":[{"orderItemId":"1","cancellation":{"cancellationRequest":{"requester":"BUYER"}}}]}`,
		`{"orderId":"402-1","orderItems":[{"orderItemId":"","cancellation":{"cancellationRequest":{"requester":"BUYER"}}}]}`,
		`{"orderId":"402:1","orderItems":[{"orderItemId":"2","cancellation":{"cancellationRequest":{"requester":"BUYER"}}}]}`,
		`{"orderId":"402","orderItems":[{"orderItemId":"1:2","cancellation":{"cancellationRequest":{"requester":"BUYER"}}}]}`,
	} {
		var o spapi.Order
		if err := json.Unmarshal([]byte(body), &o); err != nil {
			t.Fatal(err)
		}
		o.Raw = json.RawMessage(body)
		for _, m := range spapi.BuyerEvents([]spapi.Order{o}) {
			t.Errorf("half-formed message from %s: externalId %q, thread %q", body, m.ExternalID, m.ThreadKey)
		}
	}
}
