package sandbox_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

// subscribeAll creates a destination and an ORDER_CHANGE subscription of
// every change type for seller 1, and returns its access token.
func subscribeAll(t *testing.T, e *env) string {
	t.Helper()
	grant := e.postForm(t, "/auth/o2/token", e.clientForm("client_credentials", "scope", "sellingpartnerapi::notifications"))
	grantless := grant.json(t)["access_token"].(string)
	_, access := e.authorize(t, seller1())
	a := e.call(t, "POST", "/notifications/v1/destinations", grantless, map[string]any{"name": "k",
		"resourceSpecification": map[string]any{"sqs": map[string]string{"arn": "arn:aws:sqs:eu-west-1:000000000000:q"}}})
	destID := a.json(t)["payload"].(map[string]any)["destinationId"].(string)
	if a := e.call(t, "POST", "/notifications/v1/subscriptions/ORDER_CHANGE", access, map[string]any{"payloadVersion": "1.0", "destinationId": destID}); a.status != http.StatusOK {
		t.Fatalf("createSubscription: %d %s", a.status, a.body)
	}
	return access
}

// The sandbox sends, in turn, every shape of ORDER_CHANGE the model
// allows: both levels, each change type, full, minimal and null Summaries,
// a null trigger time, several ChangeReason texts; each body valid against
// OrderChangeNotification.json.
func TestEveryOrderChangeShape(t *testing.T) {
	d := &deliveries{ch: make(chan struct{}, 64)}
	e := start(t, func(c *sandbox.Config) { c.Deliver = d.deliver })
	subscribeAll(t, e)
	for i := 0; i < 4; i++ {
		id, err := e.srv.AddOrder(seller1(), "", i%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			if _, err := e.srv.AddCancellationRequest(seller1(), id, "Found it cheaper"); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.srv.SetOrderStatus(seller1(), id, "SHIPPED"); err != nil {
			t.Fatal(err)
		}
		if err := e.srv.SetDeliveryTip(seller1(), id); err != nil {
			t.Fatal(err)
		}
	}
	want := 4 * 3 // a cancellation (placed with it, or asked later), a status change and a tip each
	for i := 0; i < want; i++ {
		select {
		case <-d.ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d notifications delivered, want %d", i, want)
		}
	}
	seen := map[string]bool{}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, body := range d.bodies {
		validateNotif(t, "OrderChangeNotification", []byte(body))
		var n struct {
			Payload struct {
				OrderChangeNotification struct {
					NotificationLevel  string
					OrderChangeType    string
					OrderChangeTrigger struct {
						TimeOfOrderChange *string
						ChangeReason      string
					}
					Summary map[string]json.RawMessage
				}
			}
		}
		if err := json.Unmarshal([]byte(body), &n); err != nil {
			t.Fatal(err)
		}
		o := n.Payload.OrderChangeNotification
		seen["level "+o.NotificationLevel] = true
		seen["type "+o.OrderChangeType] = true
		seen["reason "+o.OrderChangeTrigger.ChangeReason] = true
		if o.OrderChangeTrigger.TimeOfOrderChange == nil {
			seen["trigger time null"] = true
		}
		if string(o.Summary["PurchaseDate"]) == "null" {
			seen["purchase date null"] = true
		}
		if string(o.Summary["DestinationPostalCode"]) != "null" {
			seen["postal code given"] = true
		}
		if _, ok := o.Summary["NumberOfItemsShipped"]; !ok {
			seen["optional fields missing"] = true
		} else {
			seen["optional fields present"] = true
		}
	}
	for _, k := range []string{"level OrderLevel", "level OrderItemLevel", "type BuyerRequestedChange", "type OrderStatusChange",
		"type DeliveryTipChange", "reason Buyer Requested Cancel", "reason Delivery tip changed", "reason Buyer updated the delivery tip",
		"trigger time null", "purchase date null", "postal code given", "optional fields missing", "optional fields present"} {
		if !seen[k] {
			t.Errorf("no notification with %s (seen %v)", k, seen)
		}
	}
}

// With a getOrder lag, getOrder answers 404 for an order placed within the
// lag and shows an order without a cancellation requested within it; the
// admin API takes getOrderLagMs and answers the settings in force.
func TestGetOrderLag(t *testing.T) {
	e := start(t)
	_, access := e.authorize(t, seller1())
	put := func(body string) answer {
		req, _ := http.NewRequest("PUT", e.base+"/_sandbox/notifications/faults", stringsReader(body))
		return do(t, req)
	}
	a := put(`{"getOrderLagMs":30000,"dropEvery":3}`)
	if a.status != http.StatusOK {
		t.Fatalf("PUT faults: %d %s", a.status, a.body)
	}
	got := a.json(t)
	if got["getOrderLagMs"] != float64(30000) || got["dropEvery"] != float64(3) || got["delayMs"] != float64(0) {
		t.Errorf("settings in force %v", got)
	}
	if f := e.srv.DeliveryFaults(); f.GetOrderLag != 30*time.Second {
		t.Errorf("GetOrderLag %v", f.GetOrderLag)
	}
	getOrder := func(id string) answer {
		return e.get(t, "/orders/2026-01-01/orders/"+id+"?includedData=BUYER,CANCELLATION", access)
	}
	id, err := e.srv.AddOrder(seller1(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if a := getOrder(id); a.status != http.StatusNotFound {
		t.Errorf("getOrder of an order placed within the lag: %d, want 404", a.status)
	}
	e.clock.Advance(31 * time.Second)
	if a := getOrder(id); a.status != http.StatusOK {
		t.Fatalf("getOrder after the lag: %d %s", a.status, a.body)
	}
	if _, err := e.srv.AddCancellationRequest(seller1(), id, "Ordered by mistake"); err != nil {
		t.Fatal(err)
	}
	if a := getOrder(id); a.status != http.StatusOK || containsStr(a.body, "cancellationRequest") {
		t.Errorf("getOrder within the lag of the request: %d %s, want the order without it", a.status, a.body)
	}
	e.clock.Advance(31 * time.Second)
	if a := getOrder(id); !containsStr(a.body, "cancellationRequest") {
		t.Errorf("getOrder after the lag: %s, want the request", a.body)
	}
	if a := put(`{}`); a.json(t)["getOrderLagMs"] != float64(0) {
		t.Errorf("PUT {} keeps a lag: %s", a.body)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func containsStr(b []byte, s string) bool { return strings.Contains(string(b), s) }
