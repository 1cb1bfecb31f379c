package spapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// OpGetOrder is the Orders v2026-01-01 getOrder operation name, as in
// Amazon's usage plans; its persisted budget is separate from searchOrders'.
const OpGetOrder = "getOrder"

// GetOrderRate and GetOrderBurst are the model's default usage plan of getOrder.
const (
	GetOrderRate  = 0.5
	GetOrderBurst = 30
)

// IncludedData is the datasets the connector asks for, in searchOrders and
// getOrder alike: the buyer (name, relay address) and the items'
// cancellation requests.
var IncludedData = []string{"BUYER", "CANCELLATION"}

// GetOrder calls GET /orders/2026-01-01/orders/{orderId} on endpoint: one
// order with the datasets in includedData (nil means IncludedData). An
// unknown order is an *Error matching ErrNotFound. A 403 whose details say
// the access token expired invalidates the token and retries once, unless
// tokens is a StaticToken.
func (c *Client) GetOrder(ctx context.Context, endpoint string, tokens Tokens, orderID string, includedData []string) (Order, error) {
	if strings.TrimSpace(orderID) == "" {
		return Order{}, errors.New("getOrder: empty order id")
	}
	if includedData == nil {
		includedData = IncludedData
	}
	u := strings.TrimRight(endpoint, "/") + "/orders/2026-01-01/orders/" + url.PathEscape(orderID)
	if len(includedData) > 0 {
		u += "?" + url.Values{"includedData": {strings.Join(includedData, ",")}}.Encode()
	}
	var body struct {
		Order json.RawMessage `json:"order"`
	}
	if _, err := c.get(ctx, u, tokens, &body); err != nil {
		return Order{}, fmt.Errorf("getOrder: %w", err)
	}
	if len(body.Order) == 0 || string(body.Order) == "null" {
		return Order{}, errors.New("getOrder: answer has no order")
	}
	var o Order
	if err := json.Unmarshal(body.Order, &o); err != nil {
		return Order{}, fmt.Errorf("getOrder: decode order: %w", err)
	}
	o.Raw = body.Order
	return o, nil
}
