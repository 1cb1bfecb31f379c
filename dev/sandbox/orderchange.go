package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Every shape of ORDER_CHANGE notification the model
// (OrderChangeNotification.json) allows, the sandbox sends in turn: the
// n-th notification published (from 0) takes
//   - NotificationLevel OrderLevel (n even) or OrderItemLevel (n odd; the
//     Summary then lists only the items the change concerns, when it
//     concerns some);
//   - a Summary with every optional field (n%3 == 0: OrderPrograms,
//     ShippingPrograms, ElectronicInvoiceStatus, item status, shipped
//     quantity, a postal code, a supply source), with only the required
//     ones (n%3 == 1), or with every nullable one null (n%3 == 2:
//     PurchaseDate, DestinationPostalCode, SupplySourceId and the trigger's
//     TimeOfOrderChange);
//   - the change type of the event (BuyerRequestedChange for a buyer's
//     cancellation request, OrderStatusChange for a status change,
//     DeliveryTipChange for a tip), with a ChangeReason text among the
//     type's (changeReasons).
// The first notification (n = 0) is the full OrderLevel shape.

// changeReasons are the ChangeReason texts per change type. "Buyer
// Requested Cancel" is the model's own example; the others are the
// sandbox's wording (the model documents the field as free text).
var changeReasons = map[string][]string{
	"BuyerRequestedChange": {"Buyer Requested Cancel"},
	"OrderStatusChange":    {"Order status changed to %s", "OrderStatusChange", "Seller updated the order"},
	"DeliveryTipChange":    {"Delivery tip changed", "Buyer updated the delivery tip"},
}

// notificationBody renders an ORDER_CHANGE notification as Amazon sends it
// to SQS, in the shape variant picks (see above).
func notificationBody(appID, subID, sellerID string, o *order, changeType string, at, now time.Time, variant int) string {
	full, nulls := variant%3 == 0, variant%3 == 2
	itemLevel := variant%2 == 1
	fulfillment := "MFN"
	if o.fulfilledBy == "AMAZON" {
		fulfillment = "AFN"
	}
	status := notificationStatus[o.status]
	if status == "" {
		status = "Unshipped"
	}
	shipped, unshipped := 0, 0
	items := []map[string]any{}
	var changed []map[string]any
	for _, it := range o.items {
		item := map[string]any{"OrderItemId": it.id, "SellerSKU": it.sku, "SupplySourceId": nil, "Quantity": it.qty}
		if full {
			item["SupplySourceId"] = "SS-" + it.sku
		}
		if o.status == "SHIPPED" {
			shipped += it.qty
			if full {
				item["OrderItemStatus"], item["QuantityShipped"] = "Shipped", it.qty
			}
		} else {
			unshipped += it.qty
			if full {
				item["OrderItemStatus"], item["QuantityShipped"] = "Unshipped", 0
			}
		}
		if it.cancel != nil && !it.cancel.at.After(now) {
			item["IsBuyerRequestedCancel"] = true
			if changeType == "BuyerRequestedChange" && it.cancel.at.Equal(at) {
				changed = append(changed, item)
			}
		} else if full {
			item["IsBuyerRequestedCancel"] = false
		}
		items = append(items, item)
	}
	level := "OrderLevel"
	if itemLevel {
		level = "OrderItemLevel"
		if len(changed) > 0 {
			items = changed
		}
	}
	reasons := changeReasons[changeType]
	reason := reasons[(variant/2)%len(reasons)]
	if strings.Contains(reason, "%s") {
		reason = fmt.Sprintf(reason, status)
	}
	var timeOfChange any = at.UTC().Format(time.RFC3339Nano)
	var purchase any = o.created.UTC().Format(time.RFC3339)
	var postal any
	if full {
		postal = "75001"
	}
	if nulls {
		timeOfChange, purchase = nil, nil
	}
	summary := map[string]any{
		"MarketplaceId":         o.marketplaceID,
		"OrderStatus":           status,
		"PurchaseDate":          purchase,
		"DestinationPostalCode": postal,
		"FulfillmentType":       fulfillment,
		"OrderType":             "StandardOrder",
		"OrderItems":            items,
	}
	if full {
		summary["NumberOfItemsShipped"], summary["NumberOfItemsUnshipped"] = shipped, unshipped
		summary["OrderPrograms"], summary["ShippingPrograms"] = []string{"Prime"}, []string{}
		summary["ElectronicInvoiceStatus"] = "NotRequired"
	}
	body := map[string]any{
		"NotificationVersion": "1.0",
		"NotificationType":    "ORDER_CHANGE",
		"PayloadVersion":      "1.0",
		"EventTime":           at.UTC().Format(time.RFC3339Nano),
		"Payload": map[string]any{"OrderChangeNotification": map[string]any{
			"NotificationLevel":  level,
			"SellerId":           sellerID,
			"AmazonOrderId":      o.id,
			"OrderChangeType":    changeType,
			"OrderChangeTrigger": map[string]any{"TimeOfOrderChange": timeOfChange, "ChangeReason": reason},
			"Summary":            summary,
		}},
		"NotificationMetadata": map[string]any{
			"ApplicationId":  appID,
			"SubscriptionId": subID,
			"PublishTime":    now.UTC().Format(time.RFC3339Nano),
			"NotificationId": newRequestID(),
		},
	}
	b, _ := json.Marshal(body)
	return string(b)
}

// SetDeliveryTip records that the buyer changed the order's delivery tip
// (Amazon Fresh and similar): a DeliveryTipChange notification, no buyer
// request the connector tickets.
func (s *Server) SetDeliveryTip(sellerID, orderID string) error {
	seller, ok := s.seller(sellerID)
	if !ok {
		return fmt.Errorf("set delivery tip: unknown seller %q", sellerID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.storeLocked(seller).byID[orderID]
	if o == nil {
		return fmt.Errorf("set delivery tip: seller %s has no order %q", sellerID, orderID)
	}
	now := s.now().Truncate(time.Second)
	if o.updated.Before(now) {
		o.updated = now
	}
	s.publishLocked(seller, o, "DeliveryTipChange", now)
	return nil
}

func (s *Server) orderChangeRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /_sandbox/sellers/{id}/orders/{orderId}/delivery-tip", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		if err := s.SetDeliveryTip(id, r.PathValue("orderId")); err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"orderId": r.PathValue("orderId"), "changeType": "DeliveryTipChange"})
	}))
}

// SetOrderChangeFilter replaces the orderChangeTypes of the seller's
// ORDER_CHANGE subscription (nil: every type), as a seller's app would by
// subscribing again: a test hook for the shapes the connector's own filter
// (BuyerRequestedChange) keeps away.
func (s *Server) SetOrderChangeFilter(sellerID string, types []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.notifierLocked().subs {
		if sub.sellerID == sellerID && sub.notificationType == "ORDER_CHANGE" {
			sub.changeTypes = types
		}
	}
}

// SellerFulfilled says whether the seller ships the order itself (MFN):
// only then does getOrder give the buyer's buyerEmail, as the Orders model
// says ("Only available for merchant-fulfilled (FBM) orders").
func (s *Server) SellerFulfilled(sellerID, orderID string) bool {
	seller, ok := s.seller(sellerID)
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.storeLocked(seller).byID[orderID]
	return o != nil && o.fulfilledBy != "AMAZON"
}
