package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

// The Notifications API as the sandbox plays it, every answer validated
// against notifications.json (objects closed, except the parts of an allOf,
// which only the whole may close), and every ORDER_CHANGE body it delivers
// against OrderChangeNotification.json.

var (
	notifOnce    sync.Once
	notifSchemas map[string]*jsonschema.Schema
	notifErr     error
)

// strictOutsideAllOf closes object schemas, but not inside an allOf
// (closing a part would refuse the other parts' properties); definitions
// that are parts of an allOf are left open by the caller.
func strictOutsideAllOf(v any) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["properties"]; ok {
			if _, set := v["additionalProperties"]; !set {
				v["additionalProperties"] = false
			}
		}
		for k, c := range v {
			if k == "allOf" {
				continue
			}
			strictOutsideAllOf(c)
		}
	case []any:
		for _, c := range v {
			strictOutsideAllOf(c)
		}
	}
}

func notificationSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	notifOnce.Do(func() {
		out := map[string]*jsonschema.Schema{}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft4)
		doc, err := loadJSON(modelDir + "notifications.json")
		if err != nil {
			notifErr = err
			return
		}
		defs := doc.(map[string]any)["definitions"].(map[string]any)
		parts := map[string]bool{}
		for _, d := range defs {
			all, _ := d.(map[string]any)["allOf"].([]any)
			for _, p := range all {
				if ref, ok := p.(map[string]any)["$ref"].(string); ok {
					parts[strings.TrimPrefix(ref, "#/definitions/")] = true
				}
			}
		}
		for name, d := range defs {
			if !parts[name] {
				strictOutsideAllOf(d)
			}
		}
		const loc = "file:///amazon-models/notifications.json"
		if notifErr = c.AddResource(loc, doc); notifErr != nil {
			return
		}
		for _, d := range []string{"CreateDestinationResponse", "GetDestinationsResponse", "CreateSubscriptionResponse",
			"GetSubscriptionResponse", "DeleteSubscriptionByIdResponse"} {
			if out[d], notifErr = c.Compile(loc + "#/definitions/" + d); notifErr != nil {
				return
			}
		}
		c2 := jsonschema.NewCompiler()
		ev, err := loadJSON(modelDir + "OrderChangeNotification.json")
		if err != nil {
			notifErr = err
			return
		}
		const eloc = "file:///amazon-models/OrderChangeNotification.json"
		if notifErr = c2.AddResource(eloc, ev); notifErr != nil {
			return
		}
		out["OrderChangeNotification"], notifErr = c2.Compile(eloc)
		notifSchemas = out
	})
	if notifErr != nil {
		t.Fatalf("load notification schemas: %v", notifErr)
	}
	return notifSchemas
}

func loadJSON(path string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

func validateNotif(t *testing.T, definition string, body []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	if err := notificationSchemas(t)[definition].Validate(v); err != nil {
		t.Fatalf("does not match %s: %v\n%s", definition, err, body)
	}
}

// deliveries captures what the sandbox sends to SQS.
type deliveries struct {
	mu     sync.Mutex
	bodies []string
	arns   []string
	ch     chan struct{}
}

func (d *deliveries) deliver(_ context.Context, arn, body string) error {
	d.mu.Lock()
	d.bodies, d.arns = append(d.bodies, body), append(d.arns, arn)
	d.mu.Unlock()
	d.ch <- struct{}{}
	return nil
}

func (e *env) call(t *testing.T, method, path, token string, body any) answer {
	t.Helper()
	var rd *strings.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, e.base+path, rd)
	if body != nil {
		req.Header.Set("content-type", "application/json")
	}
	req.Header.Set("x-amz-access-token", token)
	return do(t, req)
}

func TestNotificationsAPI(t *testing.T) {
	d := &deliveries{ch: make(chan struct{}, 16)}
	e := start(t, func(c *sandbox.Config) { c.Deliver = d.deliver })
	grant := e.postForm(t, "/auth/o2/token", e.clientForm("client_credentials", "scope", "sellingpartnerapi::notifications"))
	if grant.status != http.StatusOK {
		t.Fatalf("grantless token: %d %s", grant.status, grant.body)
	}
	grantless := grant.json(t)["access_token"].(string)
	_, access := e.authorize(t, seller1())
	const arn = "arn:aws:sqs:eu-west-1:000000000000:keybuzz-amazon-notifications"

	// Destinations: grantless only; one per ARN (409 then).
	destBody := map[string]any{"name": "keybuzz", "resourceSpecification": map[string]any{"sqs": map[string]string{"arn": arn}}}
	if a := e.call(t, "POST", "/notifications/v1/destinations", access, destBody); a.status != http.StatusForbidden {
		t.Errorf("createDestination with a seller's token: %d, want 403", a.status)
	}
	a := e.call(t, "POST", "/notifications/v1/destinations", grantless, destBody)
	if a.status != http.StatusOK {
		t.Fatalf("createDestination: %d %s", a.status, a.body)
	}
	validateNotif(t, "CreateDestinationResponse", a.body)
	destID := a.json(t)["payload"].(map[string]any)["destinationId"].(string)
	a = e.call(t, "POST", "/notifications/v1/destinations", grantless, destBody)
	if a.status != http.StatusConflict {
		t.Errorf("second createDestination: %d, want 409", a.status)
	}
	validateNotif(t, "CreateDestinationResponse", a.body)
	a = e.call(t, "GET", "/notifications/v1/destinations", grantless, nil)
	validateNotif(t, "GetDestinationsResponse", a.body)
	if !strings.Contains(string(a.body), destID) {
		t.Errorf("getDestinations %s lacks %s", a.body, destID)
	}

	// Subscriptions: the seller's token; one per type and version.
	subBody := map[string]any{"payloadVersion": "1.0", "destinationId": destID,
		"processingDirective": map[string]any{"eventFilter": map[string]any{"eventFilterType": "ORDER_CHANGE", "orderChangeTypes": []string{"BuyerRequestedChange"}}}}
	if a := e.call(t, "POST", "/notifications/v1/subscriptions/ORDER_CHANGE", grantless, subBody); a.status != http.StatusForbidden {
		t.Errorf("createSubscription with a grantless token: %d, want 403", a.status)
	}
	bad := map[string]any{"payloadVersion": "1.0", "destinationId": "nope"}
	if a := e.call(t, "POST", "/notifications/v1/subscriptions/ORDER_CHANGE", access, bad); a.status != http.StatusBadRequest {
		t.Errorf("createSubscription to an unknown destination: %d, want 400", a.status)
	} else {
		validateNotif(t, "CreateSubscriptionResponse", a.body)
	}
	a = e.call(t, "POST", "/notifications/v1/subscriptions/ORDER_CHANGE", access, subBody)
	if a.status != http.StatusOK {
		t.Fatalf("createSubscription: %d %s", a.status, a.body)
	}
	validateNotif(t, "CreateSubscriptionResponse", a.body)
	subID := a.json(t)["payload"].(map[string]any)["subscriptionId"].(string)
	if a := e.call(t, "POST", "/notifications/v1/subscriptions/ORDER_CHANGE", access, subBody); a.status != http.StatusConflict {
		t.Errorf("second createSubscription: %d, want 409", a.status)
	}
	a = e.call(t, "GET", "/notifications/v1/subscriptions/ORDER_CHANGE?payloadVersion=1.0", access, nil)
	validateNotif(t, "GetSubscriptionResponse", a.body)
	if !strings.Contains(string(a.body), subID) {
		t.Errorf("getSubscription %s lacks %s", a.body, subID)
	}

	// A buyer's cancellation request is delivered, valid against the schema;
	// a status change is filtered out (the subscription asks for
	// BuyerRequestedChange only).
	orderID, err := e.srv.AddOrder(seller1(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetOrderStatus(seller1(), orderID, "SHIPPED"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.AddCancellationRequest(seller1(), orderID, "Ordered by mistake"); err != nil {
		t.Fatal(err)
	}
	<-d.ch
	d.mu.Lock()
	body, gotARN := d.bodies[0], d.arns[0]
	d.mu.Unlock()
	validateNotif(t, "OrderChangeNotification", []byte(body))
	if gotARN != arn || !strings.Contains(body, subID) || !strings.Contains(body, `"OrderChangeType":"BuyerRequestedChange"`) ||
		!strings.Contains(body, `"IsBuyerRequestedCancel":true`) {
		t.Errorf("delivered to %s: %s", gotARN, body)
	}
	if st := e.srv.NotificationStats(); st.Published != 1 || st.Sent != 1 {
		t.Errorf("stats %+v, want 1 published (the status change is filtered out), 1 sent", st)
	}

	// Faults: every second notification dropped.
	e.srv.SetDeliveryFaults(sandbox.DeliveryFaults{DropEvery: 2})
	for i := 0; i < 4; i++ {
		if _, err := e.srv.AddOrder(seller1(), "", true); err != nil {
			t.Fatal(err)
		}
	}
	<-d.ch
	<-d.ch
	if st := e.srv.NotificationStats(); st.Published != 5 || st.Dropped != 2 || st.Sent != 3 {
		t.Errorf("stats %+v, want 5 published, 2 dropped, 3 sent", st)
	}

	// In flight: a duplicated notification held back for reordering is
	// not on its way; once the next one releases it, both are, copy by
	// copy, until their SendMessage calls return (the soak's drain waits
	// for 0: a queue seen empty before then is not final).
	e.srv.SetDeliveryFaults(sandbox.DeliveryFaults{DuplicateEvery: 1, ReorderEvery: 1})
	if _, err := e.srv.AddOrder(seller1(), "", true); err != nil {
		t.Fatal(err)
	}
	if st := e.srv.NotificationStats(); st.Held != 1 || st.InFlight != 0 {
		t.Errorf("stats %+v, want 1 held (twice when sent), none in flight", st)
	}
	if _, err := e.srv.AddOrder(seller1(), "", true); err != nil {
		t.Fatal(err)
	}
	if st := e.srv.NotificationStats(); st.Held != 0 || st.InFlight != 4 {
		t.Errorf("stats %+v, want none held, 4 SendMessage calls in flight", st)
	}
	for range 4 {
		<-d.ch
	}
	for deadline := time.Now().Add(5 * time.Second); e.srv.NotificationStats().InFlight != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want nothing in flight once every copy was sent", e.srv.NotificationStats())
		}
		time.Sleep(time.Millisecond)
	}
	if st := e.srv.NotificationStats(); st.Sent != 7 {
		t.Errorf("stats %+v, want 7 sent", st)
	}
	e.srv.SetDeliveryFaults(sandbox.DeliveryFaults{})

	// deleteSubscriptionById is grantless; then 404.
	if a := e.call(t, "DELETE", "/notifications/v1/subscriptions/ORDER_CHANGE/"+subID, access, nil); a.status != http.StatusForbidden {
		t.Errorf("deleteSubscriptionById with a seller's token: %d, want 403", a.status)
	}
	a = e.call(t, "DELETE", "/notifications/v1/subscriptions/ORDER_CHANGE/"+subID, grantless, nil)
	if a.status != http.StatusOK {
		t.Fatalf("deleteSubscriptionById: %d %s", a.status, a.body)
	}
	validateNotif(t, "DeleteSubscriptionByIdResponse", a.body)
	a = e.call(t, "DELETE", "/notifications/v1/subscriptions/ORDER_CHANGE/"+subID, grantless, nil)
	if a.status != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", a.status)
	}
	validateNotif(t, "DeleteSubscriptionByIdResponse", a.body)
	if a := e.call(t, "GET", "/notifications/v1/subscriptions/ORDER_CHANGE", access, nil); a.status != http.StatusNotFound {
		t.Errorf("getSubscription after delete: %d, want 404", a.status)
	}

	// The usage plan: 1/s, burst 5 (the clock stands still).
	var throttled bool
	for i := 0; i < 6 && !throttled; i++ {
		throttled = e.call(t, "GET", "/notifications/v1/destinations", grantless, nil).status == http.StatusTooManyRequests
	}
	if !throttled {
		t.Error("getDestinations never answered 429 past its burst")
	}
}
