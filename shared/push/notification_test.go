package push_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// Decode is held to Amazon's schema (testdata/amazon-models/
// OrderChangeNotification.json): what the sandbox delivers passes both; a
// body missing any property the schema requires, or carrying one with
// another JSON type, fails both; so does an enum value the intake acts on.

func orderChangeSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := os.ReadFile("../../testdata/amazon-models/OrderChangeNotification.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("file:///OrderChangeNotification.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("file:///OrderChangeNotification.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sandboxBodies returns notifications the sandbox delivers: a buyer's
// cancellation request and an order status change.
func sandboxBodies(t *testing.T) []string {
	t.Helper()
	var bodies []string
	cfg := sandbox.DefaultConfig()
	got := make(chan string, 8)
	cfg.Deliver = func(_ context.Context, _, body string) error { got <- body; return nil }
	sb, base := sandboxtest.Start(t, cfg)
	// Subscribe seller 1 through the HTTP API as the connector would.
	grantless := tokenFor(t, base, cfg, "")
	seller := tokenFor(t, base, cfg, sandbox.SellerID(1))
	dest := post(t, base+"/notifications/v1/destinations", grantless,
		`{"name":"t","resourceSpecification":{"sqs":{"arn":"arn:aws:sqs:eu-west-1:000000000000:q"}}}`)["payload"].(map[string]any)["destinationId"].(string)
	post(t, base+"/notifications/v1/subscriptions/ORDER_CHANGE", seller, `{"payloadVersion":"1.0","destinationId":"`+dest+`"}`)
	orderID, err := sb.AddOrder(sandbox.SellerID(1), "", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.SetOrderStatus(sandbox.SellerID(1), orderID, "CANCELLED"); err != nil {
		t.Fatal(err)
	}
	bodies = append(bodies, <-got, <-got)
	return bodies
}

func TestDecodeMatchesSchema(t *testing.T) {
	schema := orderChangeSchema(t)
	valid := func(body string) error {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
		if err != nil {
			return err
		}
		return schema.Validate(v)
	}
	events, err := os.ReadFile("../../events/ordernotify.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev struct{ Records []struct{ Body string } }
	if err := json.Unmarshal(events, &ev); err != nil {
		t.Fatal(err)
	}
	bodies := sandboxBodies(t)
	for _, r := range ev.Records {
		bodies = append(bodies, r.Body)
	}
	for i, body := range bodies {
		if err := valid(body); err != nil {
			t.Fatalf("body %d does not match the schema: %v\n%s", i, err, body)
		}
		n, err := push.Decode(body)
		if err != nil {
			t.Fatalf("body %d: Decode: %v", i, err)
		}
		if n.SubscriptionID == "" || n.SellerID == "" || n.AmazonOrderID == "" || n.NotificationID == "" || n.EventTime == nil {
			t.Errorf("body %d decoded to %+v", i, n)
		}
	}

	// Every required property removed, every required property retyped,
	// and the enums the intake acts on broken: the schema and Decode agree.
	var root map[string]any
	if err := json.Unmarshal([]byte(bodies[0]), &root); err != nil {
		t.Fatal(err)
	}
	var schemaDoc map[string]any
	raw, _ := os.ReadFile("../../testdata/amazon-models/OrderChangeNotification.json")
	json.Unmarshal(raw, &schemaDoc)
	var cases []mutation
	collect(schemaDoc, root, nil, &cases)
	cases = append(cases,
		mutation{"NotificationLevel not in its enum", []string{"Payload", "OrderChangeNotification", "NotificationLevel"}, "Shipment"},
		mutation{"OrderChangeType not in its enum", []string{"Payload", "OrderChangeNotification", "OrderChangeType"}, "Refund"},
	)
	if len(cases) < 40 {
		t.Fatalf("only %d mutations: the walk missed the schema's required properties", len(cases))
	}
	for _, m := range cases {
		body := m.apply(t, bodies[0])
		schemaErr := valid(body)
		_, decodeErr := push.Decode(body)
		if schemaErr == nil {
			t.Errorf("%s: the schema accepts it; the mutation proves nothing", m.name)
			continue
		}
		if decodeErr == nil {
			t.Errorf("%s: the schema rejects it, Decode accepts it", m.name)
		}
	}
	for _, bad := range []string{"", "null", "[]", `{"NotificationType":"ORDER_CHANGE"}`, strings.Repeat("x", 300<<10)} {
		if _, err := push.Decode(bad); err == nil {
			t.Errorf("Decode(%.40q) accepted", bad)
		}
	}
}

// mutation sets the value at path (nil value with del removes it).
type mutation struct {
	name  string
	path  []string
	value any
}

type deleted struct{}

func (m mutation) apply(t *testing.T, body string) string {
	t.Helper()
	var root any
	json.Unmarshal([]byte(body), &root)
	cur := root
	for i, k := range m.path {
		var next any
		switch c := cur.(type) {
		case map[string]any:
			if i == len(m.path)-1 {
				if _, ok := m.value.(deleted); ok {
					delete(c, k)
				} else {
					c[k] = m.value
				}
				break
			}
			next = c[k]
		case []any:
			next = c[0]
			if i == len(m.path)-1 {
				t.Fatalf("path %v ends in an array", m.path)
			}
			// "[0]" segments index the first element.
			if k != "[0]" {
				t.Fatalf("path %v: %q is not [0]", m.path, k)
			}
		}
		cur = next
	}
	b, _ := json.Marshal(root)
	return string(b)
}

// collect walks the schema beside the body and adds, for every required
// property present in the body, its removal and a value of another type.
func collect(schema map[string]any, body any, path []string, out *[]mutation) {
	switch schema["type"] {
	case "object":
		obj, _ := body.(map[string]any)
		props, _ := schema["properties"].(map[string]any)
		req, _ := schema["required"].([]any)
		for _, r := range req {
			name := r.(string)
			if _, ok := obj[name]; !ok {
				continue
			}
			p := append(append([]string{}, path...), name)
			*out = append(*out, mutation{strings.Join(p, ".") + " removed", p, deleted{}})
			if ps, ok := props[name].(map[string]any); ok {
				if v := otherType(ps["type"]); v != nil {
					*out = append(*out, mutation{strings.Join(p, ".") + " of another type", p, v})
				}
			}
		}
		for name, ps := range props {
			if sub, ok := ps.(map[string]any); ok && obj[name] != nil {
				collect(sub, obj[name], append(append([]string{}, path...), name), out)
			}
		}
	case "array":
		arr, _ := body.([]any)
		if items, ok := schema["items"].(map[string]any); ok && len(arr) > 0 {
			collect(items, arr[0], append(append([]string{}, path...), "[0]"), out)
		}
	}
}

// otherType is a value the schema's type refuses.
func otherType(typ any) any {
	switch typ {
	case "string":
		return 42
	case "integer":
		return "1"
	case "boolean":
		return "true"
	case "object":
		return "x"
	case "array":
		return map[string]any{}
	}
	if list, ok := typ.([]any); ok && len(list) == 2 { // ["string", "null"]
		return 42
	}
	return nil
}

// tokenFor gets a grantless access token (sellerID "") or the seller's,
// through the sandbox's LWA endpoint.
func tokenFor(t *testing.T, base string, cfg sandbox.Config, sellerID string) string {
	t.Helper()
	app := lwa.App{ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret)}
	client := lwa.New(base + "/auth/o2/token")
	if sellerID == "" {
		tok, err := client.GrantlessSource(context.Background(), app, spapi.NotificationsScope).Token()
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	tok, err := client.Exchange(context.Background(), app, sandboxtest.Consent(t, base, sellerID))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken.Reveal()
}

func post(t *testing.T, url, token, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("x-amz-access-token", token)
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %v %v", url, resp.StatusCode, out, err)
	}
	return out
}
