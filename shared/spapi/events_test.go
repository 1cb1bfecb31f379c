package spapi_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

func TestBuyerEvents(t *testing.T) {
	raw := `{"orderId":"402-1","createdTime":"2026-11-01T10:00:00Z","lastUpdatedTime":"2026-11-02T11:00:00Z",
"salesChannel":{"channelName":"AMAZON","marketplaceId":"A13V1IB3VIYZZH"},
"buyer":{"buyerName":"Camille Martin","buyerEmail":"abc@marketplace.amazon.fr"},
"orderItems":[
 {"orderItemId":"111","product":{"title":"Mug en céramique 350 ml"},"cancellation":{"cancellationRequest":{"requester":"BUYER","cancelReason":"Ordered by mistake"}}},
 {"orderItemId":"222","product":{"title":"Carnet"}},
 {"orderItemId":"333","cancellation":{"cancellationExecution":{"cancelledBy":"MERCHANT"}}},
 {"orderItemId":"444","cancellation":{"cancellationRequest":{"requester":"SELLER","cancelReason":"x"}}},
 {"orderItemId":"555","cancellation":{"cancellationRequest":{"requester":"BUYER"}}}]}`
	var o spapi.Order
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		t.Fatal(err)
	}
	o.Raw = json.RawMessage(raw)
	noBuyer := spapi.Order{OrderID: "402-2", CreatedTime: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC), OrderItems: o.OrderItems[:1]}

	got := spapi.BuyerEvents([]spapi.Order{o, noBuyer})
	want := []struct{ ext, body, author string }{
		{"402-1:111:cancellation", `Buyer requested cancellation of order 402-1 (item 111, "Mug en céramique 350 ml"). Reason: Ordered by mistake`, "Camille Martin"},
		{"402-1:555:cancellation", "Buyer requested cancellation of order 402-1 (item 555). Reason: (none given)", "Camille Martin"},
		{"402-2:111:cancellation", `Buyer requested cancellation of order 402-2 (item 111, "Mug en céramique 350 ml"). Reason: Ordered by mistake`, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.ExternalID != w.ext || g.Body != w.body || g.BuyerName != w.author {
			t.Errorf("event %d = %q %q %q, want %q %q %q", i, g.ExternalID, g.Body, g.BuyerName, w.ext, w.body, w.author)
		}
	}
	first := got[0]
	if first.ThreadKey != "402-1" || first.Language != "fr" || first.OrderID != "402-1" || first.MarketplaceID != "A13V1IB3VIYZZH" ||
		first.BuyerEmail != "abc@marketplace.amazon.fr" || !first.ReceivedAt.Equal(time.Date(2026, 11, 2, 11, 0, 0, 0, time.UTC)) || string(first.Raw) != raw {
		t.Errorf("first event %+v", first)
	}
	if !got[2].ReceivedAt.Equal(noBuyer.CreatedTime) {
		t.Errorf("without lastUpdatedTime receivedAt = %v, want createdTime", got[2].ReceivedAt)
	}
}
