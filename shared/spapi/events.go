package spapi

import (
	"fmt"
	"strings"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// BuyerEvents turns the buyer-initiated events of a page of orders into
// inbound messages. Today that is every order item's cancellation request
// made by the buyer: one message per item, with the deterministic external
// id "<orderId>:<orderItemId>:cancellation", on the order's thread, in
// the marketplace's language. An
// order or item without a usable id (empty, or holding the ':' separator,
// which Amazon's ids never do) cannot be stored exactly once and is skipped.
func BuyerEvents(orders []Order) []marketplace.InboundMessage {
	var out []marketplace.InboundMessage
	for _, o := range orders {
		if !usableID(o.OrderID) {
			continue
		}
		for _, it := range o.OrderItems {
			if it.Cancellation == nil || it.Cancellation.CancellationRequest == nil || !usableID(it.OrderItemID) {
				continue
			}
			cr := it.Cancellation.CancellationRequest
			if !strings.EqualFold(cr.Requester, "BUYER") {
				continue
			}
			m := marketplace.InboundMessage{
				ExternalID:    o.OrderID + ":" + it.OrderItemID + ":cancellation",
				ThreadKey:     o.OrderID,
				OrderID:       o.OrderID,
				MarketplaceID: o.SalesChannel.MarketplaceID,
				Language:      amazon.LanguageOf(o.SalesChannel.MarketplaceID),
				Subject:       "Cancellation request - order " + o.OrderID,
				Body:          cancellationBody(o.OrderID, it, cr.CancelReason),
				ReceivedAt:    o.LastUpdatedTime,
				Raw:           o.Raw,
			}
			if m.ReceivedAt.IsZero() {
				m.ReceivedAt = o.CreatedTime
			}
			if o.Buyer != nil {
				m.BuyerName, m.BuyerEmail = o.Buyer.BuyerName, o.Buyer.BuyerEmail
			}
			out = append(out, m)
		}
	}
	return out
}

func usableID(id string) bool { return strings.TrimSpace(id) != "" && !strings.Contains(id, ":") }

func cancellationBody(orderID string, it OrderItem, reason string) string {
	item := it.OrderItemID
	if it.Product.Title != "" {
		item = fmt.Sprintf("%s, %q", it.OrderItemID, it.Product.Title)
	}
	if strings.TrimSpace(reason) == "" {
		reason = "(none given)"
	}
	return fmt.Sprintf("Buyer requested cancellation of order %s (item %s). Reason: %s", orderID, item, reason)
}
