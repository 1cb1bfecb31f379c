package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Notification is an ORDER_CHANGE notification as Amazon puts it in the
// SQS message body (the model OrderChangeNotification.json), reduced to
// what the intake reads.
type Notification struct {
	NotificationVersion string
	NotificationType    string
	PayloadVersion      string
	EventTime           *time.Time // nil when Amazon's string is not RFC 3339

	ApplicationID  string
	SubscriptionID string
	NotificationID string
	PublishTime    *time.Time

	NotificationLevel string
	SellerID          string
	AmazonOrderID     string
	OrderChangeType   string
	ChangeReason      string
	TimeOfOrderChange *time.Time
	MarketplaceID     string
	OrderStatus       string
	Items             []Item
}

// Item is one entry of Summary.OrderItems.
type Item struct {
	OrderItemID            string
	SellerSKU              string
	Quantity               int
	IsBuyerRequestedCancel bool
}

// BuyerRequestedCancel reports whether the notification may carry a buyer's
// cancellation request: a BuyerRequestedChange, or any change whose items
// say IsBuyerRequestedCancel. Those are the notifications worth a getOrder.
func (n Notification) BuyerRequestedCancel() bool {
	if n.OrderChangeType == "BuyerRequestedChange" {
		return true
	}
	for _, it := range n.Items {
		if it.IsBuyerRequestedCancel {
			return true
		}
	}
	return false
}

// MalformedError is a body that is not an ORDER_CHANGE notification as the
// model describes it. NotificationID is set when the body had a readable one.
type MalformedError struct {
	NotificationID string
	Reason         string
}

func (e *MalformedError) Error() string { return "malformed notification: " + e.Reason }

// maxBody bounds a body: SQS messages are at most 256 KiB.
const maxBody = 256 << 10

// Decode parses and checks an SQS body against the model's schema: every
// property the schema requires is present with the schema's JSON type (the
// nullable ones may be null), at every level the intake reads; enums are
// checked where the intake acts on the value (NotificationLevel,
// OrderChangeType), and other values are accepted as they come so that a
// status Amazon adds later does not drop a notification. Anything else is a
// *MalformedError.
func Decode(body string) (Notification, error) {
	if len(body) > maxBody {
		return Notification{}, &MalformedError{Reason: "body larger than 256 KiB"}
	}
	root, err := object([]byte(body), "body")
	if err != nil {
		return Notification{}, err
	}
	var n Notification
	c := checker{}
	meta := c.object(root, "NotificationMetadata", true)
	if meta != nil {
		n.NotificationID = c.str(meta, "NotificationId", "NotificationMetadata", true)
	}
	n.NotificationVersion = c.str(root, "NotificationVersion", "", true)
	n.NotificationType = c.str(root, "NotificationType", "", true)
	n.PayloadVersion = c.str(root, "PayloadVersion", "", true)
	n.EventTime = parseTime(c.str(root, "EventTime", "", true))
	if meta != nil {
		n.ApplicationID = c.str(meta, "ApplicationId", "NotificationMetadata", true)
		n.SubscriptionID = c.str(meta, "SubscriptionId", "NotificationMetadata", true)
		n.PublishTime = parseTime(c.str(meta, "PublishTime", "NotificationMetadata", true))
	}
	payload := c.object(root, "Payload", true)
	var ocn map[string]json.RawMessage
	if payload != nil {
		ocn = c.object(payload, "OrderChangeNotification", true)
	}
	if ocn != nil {
		const at = "Payload.OrderChangeNotification"
		n.NotificationLevel = c.enum(ocn, "NotificationLevel", at, "OrderItemLevel", "OrderLevel")
		n.SellerID = c.str(ocn, "SellerId", at, true)
		n.AmazonOrderID = c.str(ocn, "AmazonOrderId", at, true)
		n.OrderChangeType = c.enum(ocn, "OrderChangeType", at, "BuyerRequestedChange", "DeliveryTipChange", "OrderStatusChange")
		if trig := c.object(ocn, "OrderChangeTrigger", true); trig != nil {
			n.TimeOfOrderChange = parseTime(c.nullableStr(trig, "TimeOfOrderChange", at+".OrderChangeTrigger"))
			n.ChangeReason = c.str(trig, "ChangeReason", at+".OrderChangeTrigger", true)
		}
		if sum := c.object(ocn, "Summary", true); sum != nil {
			const sat = at + ".Summary"
			n.MarketplaceID = c.str(sum, "MarketplaceId", sat, true)
			n.OrderStatus = c.str(sum, "OrderStatus", sat, true)
			c.nullableStr(sum, "PurchaseDate", sat)
			c.nullableStr(sum, "DestinationPostalCode", sat)
			c.str(sum, "FulfillmentType", sat, true)
			c.str(sum, "OrderType", sat, true)
			for i, it := range c.array(sum, "OrderItems", sat) {
				iat := fmt.Sprintf("%s.OrderItems[%d]", sat, i)
				item, err := object(it, iat)
				if err != nil {
					c.fail(err.(*MalformedError).Reason)
					continue
				}
				var x Item
				x.OrderItemID = c.str(item, "OrderItemId", iat, true)
				x.SellerSKU = c.str(item, "SellerSKU", iat, true)
				c.nullableStr(item, "SupplySourceId", iat)
				x.Quantity = c.integer(item, "Quantity", iat)
				x.IsBuyerRequestedCancel = c.boolean(item, "IsBuyerRequestedCancel", iat)
				n.Items = append(n.Items, x)
			}
		}
	}
	if c.err != "" {
		return n, &MalformedError{NotificationID: n.NotificationID, Reason: c.err}
	}
	if strings.TrimSpace(n.SubscriptionID) == "" || strings.TrimSpace(n.AmazonOrderID) == "" {
		return n, &MalformedError{NotificationID: n.NotificationID, Reason: "empty SubscriptionId or AmazonOrderId"}
	}
	return n, nil
}

func object(raw []byte, at string) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, &MalformedError{Reason: at + ": not a JSON object"}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, &MalformedError{Reason: at + ": invalid JSON"}
	}
	return m, nil
}

// checker keeps the first problem found.
type checker struct{ err string }

func (c *checker) fail(reason string) {
	if c.err == "" {
		c.err = reason
	}
}

func path(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func (c *checker) object(m map[string]json.RawMessage, name string, required bool) map[string]json.RawMessage {
	raw, ok := m[name]
	if !ok {
		if required {
			c.fail(name + ": required")
		}
		return nil
	}
	o, err := object(raw, name)
	if err != nil {
		c.fail(name + ": want an object")
		return nil
	}
	return o
}

func (c *checker) str(m map[string]json.RawMessage, name, at string, required bool) string {
	raw, ok := m[name]
	if !ok {
		if required {
			c.fail(path(at, name) + ": required")
		}
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || isNull(raw) {
		c.fail(path(at, name) + ": want a string")
		return ""
	}
	return s
}

// nullableStr is a required property of type ["string", "null"].
func (c *checker) nullableStr(m map[string]json.RawMessage, name, at string) string {
	raw, ok := m[name]
	if !ok {
		c.fail(path(at, name) + ": required")
		return ""
	}
	if isNull(raw) {
		return ""
	}
	return c.str(m, name, at, true)
}

func (c *checker) enum(m map[string]json.RawMessage, name, at string, values ...string) string {
	s := c.str(m, name, at, true)
	if s == "" {
		if _, ok := m[name]; ok && c.err == "" {
			c.fail(path(at, name) + ": not one of " + strings.Join(values, ", "))
		}
		return s
	}
	for _, v := range values {
		if s == v {
			return s
		}
	}
	c.fail(path(at, name) + ": not one of " + strings.Join(values, ", "))
	return s
}

func (c *checker) array(m map[string]json.RawMessage, name, at string) []json.RawMessage {
	raw, ok := m[name]
	if !ok {
		c.fail(path(at, name) + ": required")
		return nil
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil || isNull(raw) {
		c.fail(path(at, name) + ": want an array")
		return nil
	}
	return a
}

// integer is a required property of type integer.
func (c *checker) integer(m map[string]json.RawMessage, name, at string) int {
	raw, ok := m[name]
	if !ok {
		c.fail(path(at, name) + ": required")
		return 0
	}
	raw = bytes.TrimSpace(raw)
	var f json.Number
	if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) || json.Unmarshal(raw, &f) != nil {
		c.fail(path(at, name) + ": want an integer")
		return 0
	}
	i, err := f.Int64()
	if err != nil {
		// 2.0 is an integer to JSON Schema; 2.5 is not.
		fl, ferr := f.Float64()
		if ferr != nil || fl != float64(int64(fl)) {
			c.fail(path(at, name) + ": want an integer")
			return 0
		}
		i = int64(fl)
	}
	return int(i)
}

// boolean is an optional property of type boolean.
func (c *checker) boolean(m map[string]json.RawMessage, name, at string) bool {
	raw, ok := m[name]
	if !ok {
		return false
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil || isNull(raw) {
		c.fail(path(at, name) + ": want a boolean")
		return false
	}
	return b
}

func parseTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	return &t
}

// asMalformed returns err's *MalformedError, if any.
func asMalformed(err error) (*MalformedError, bool) {
	var m *MalformedError
	return m, errors.As(err, &m)
}
