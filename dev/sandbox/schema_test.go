package sandbox_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

const modelDir = "../../testdata/amazon-models/"

// models lists the official model files and the response definitions the
// sandbox's answers are validated against. Definition names are unique
// across the list (ErrorList is taken from the Orders model).
var models = []struct {
	file        string
	definitions []string
}{
	{"orders_2026-01-01.json", []string{"SearchOrdersResponse", "GetOrderResponse", "ErrorList"}},
	{"sellers.json", []string{"GetMarketplaceParticipationsResponse", "GetAccountResponse"}},
}

var (
	schemaOnce sync.Once
	schemas    map[string]*jsonschema.Schema
	schemaErr  error
)

// strict closes every object definition of the model (additionalProperties
// false) so that a misspelled or invented field fails validation too.
func strict(v any) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["properties"]; ok {
			if _, set := v["additionalProperties"]; !set {
				v["additionalProperties"] = false
			}
		}
		for _, c := range v {
			strict(c)
		}
	case []any:
		for _, c := range v {
			strict(c)
		}
	}
}

// modelSchemas compiles the response definitions of the Orders v2026-01-01
// and Sellers v1 models. The files are Swagger 2.0: their definitions are
// draft-4 schemas, x- keywords are ignored.
func modelSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft4)
		c.AssertFormat()
		out := map[string]*jsonschema.Schema{}
		for _, m := range models {
			doc, err := loadModel(modelDir + m.file)
			if err != nil {
				schemaErr = err
				return
			}
			loc := "file:///amazon-models/" + m.file
			if err := c.AddResource(loc, doc); err != nil {
				schemaErr = err
				return
			}
			for _, d := range m.definitions {
				s, err := c.Compile(loc + "#/definitions/" + d)
				if err != nil {
					schemaErr = err
					return
				}
				out[d] = s
			}
		}
		schemas = out
	})
	if schemaErr != nil {
		t.Fatalf("load model schemas: %v", schemaErr)
	}
	return schemas
}

func loadModel(path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	strict(doc.(map[string]any)["definitions"])
	return doc, nil
}

func validate(t *testing.T, definition string, body []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, body)
	}
	if err := modelSchemas(t)[definition].Validate(v); err != nil {
		t.Fatalf("answer does not match %s: %v\n%s", definition, err, body)
	}
}

// TestAnswersMatchModel validates every kind of SP-API answer against the
// official model.
func TestAnswersMatchModel(t *testing.T) {
	e := start(t, everyRateHeader)
	s1 := seller1()
	_, access := e.authorize(t, s1)
	e.srv.SetRatePlan(s1, sandbox.OpSearchOrders, 100, 1000)
	e.srv.SetRatePlan(s1, sandbox.OpGetOrder, 100, 1000)

	base := url.Values{
		"lastUpdatedAfter":  {t0.Add(-40 * 24 * time.Hour).Format(time.RFC3339)},
		"marketplaceIds":    {sandbox.MarketplaceFR},
		"maxResultsPerPage": {"20"},
	}
	withBuyer := url.Values{}
	for k, v := range base {
		withBuyer[k] = v
	}
	withBuyer.Set("includedData", "BUYER,CANCELLATION,FULFILLMENT,PROCEEDS")
	plain := e.search(t, access, base)
	full := e.search(t, access, withBuyer)

	orderID := plain.json(t)["orders"].([]any)[0].(map[string]any)["orderId"].(string)
	// an order with a cancellation request, to see that block validated too
	cancelled := e.srv.BuyerEvents(s1)[0].OrderID

	expired := func() string {
		_, a := e.authorize(t, s1)
		e.srv.ExpireAccessTokens(s1)
		return a
	}()
	_, access = e.authorize(t, s1)
	throttledSeller := sandbox.SellerID(2)
	_, access2 := e.authorize(t, throttledSeller)
	e.srv.SetRatePlan(throttledSeller, sandbox.OpGetOrder, 0, 1)
	_ = e.get(t, "/orders/2026-01-01/orders/"+orderID, access2)

	tests := []struct {
		name       string
		ans        answer
		status     int
		definition string
		code       string
	}{
		{"search without BUYER", plain, 200, "SearchOrdersResponse", ""},
		{"search with BUYER and CANCELLATION", full, 200, "SearchOrdersResponse", ""},
		{"getOrder", e.get(t, "/orders/2026-01-01/orders/"+orderID, access), 200, "GetOrderResponse", ""},
		{"getOrder with all data", e.get(t, "/orders/2026-01-01/orders/"+cancelled+"?includedData=BUYER,CANCELLATION,FULFILLMENT,PROCEEDS", access), 200, "GetOrderResponse", ""},
		{"400 InvalidInput", e.search(t, access, url.Values{"lastUpdatedAfter": base["lastUpdatedAfter"], "marketplaceIds": {"ATVPDKIKX0DER"}}), 400, "ErrorList", "InvalidInput"},
		{"400 outside the model", func() answer {
			a := e.search(t, access, url.Values{"marketplaceIds": {sandbox.MarketplaceFR}})
			if v := e.srv.TakeViolations(); len(v) != 1 {
				t.Errorf("violations %v", v)
			}
			return a
		}(), 400, "ErrorList", "InvalidInput"},
		{"403 missing token", e.get(t, "/orders/2026-01-01/orders/"+orderID, ""), 403, "ErrorList", "Unauthorized"},
		{"403 invalid token", e.get(t, "/orders/2026-01-01/orders/"+orderID, "Atza|garbage"), 403, "ErrorList", "Unauthorized"},
		{"403 expired token", e.get(t, "/orders/2026-01-01/orders/"+orderID, expired), 403, "ErrorList", "Unauthorized"},
		{"404 unknown order", e.get(t, "/orders/2026-01-01/orders/999-0000000-0000000", access), 404, "ErrorList", "NotFound"},
		{"429 quota", e.get(t, "/orders/2026-01-01/orders/"+orderID, access2), 429, "ErrorList", "QuotaExceeded"},
		{"500 fault", func() answer {
			e.srv.InjectFault(s1, sandbox.Fault{Kind: "500", Count: 1})
			return e.get(t, "/orders/2026-01-01/orders/"+orderID, access)
		}(), 500, "ErrorList", "InternalFailure"},
		{"503 fault", func() answer {
			e.srv.InjectFault(s1, sandbox.Fault{Kind: "503", Count: 1})
			return e.get(t, "/orders/2026-01-01/orders/"+orderID, access)
		}(), 503, "ErrorList", "ServiceUnavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ans.status != tt.status {
				t.Fatalf("status %d, want %d: %s", tt.ans.status, tt.status, tt.ans.body)
			}
			validate(t, tt.definition, tt.ans.body)
			if got := tt.ans.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if id := tt.ans.header.Get("x-amzn-RequestId"); len(id) != 36 {
				t.Errorf("x-amzn-RequestId %q", id)
			}
			if tt.code != "" {
				errs := tt.ans.json(t)["errors"].([]any)
				if got := errs[0].(map[string]any)["code"]; got != tt.code {
					t.Errorf("code %v, want %s", got, tt.code)
				}
			}
			_, hasLimit := tt.ans.header["X-Amzn-Ratelimit-Limit"]
			wantLimit := tt.status == 200 || tt.status == 400 || tt.status == 404
			if hasLimit != wantLimit {
				t.Errorf("x-amzn-RateLimit-Limit present=%v, want %v", hasLimit, wantLimit)
			}
		})
	}

	t.Run("buyer only with BUYER, cancellation only with CANCELLATION", func(t *testing.T) {
		if strings.Contains(string(plain.body), `"buyer"`) || strings.Contains(string(plain.body), `"cancellation"`) {
			t.Errorf("plain search carries buyer or cancellation data")
		}
		if !strings.Contains(string(full.body), `"buyerEmail"`) || !strings.Contains(string(full.body), "@marketplace.amazon.") {
			t.Errorf("search with BUYER lacks buyer data")
		}
	})

	t.Run("Unauthorized details", func(t *testing.T) {
		for _, tt := range []struct{ tok, details string }{
			{"", "Access token is missing in the request header."},
			{"Atza|garbage", "The access token you provided is revoked, malformed or invalid."},
			{expired, "The access token you provided has expired."},
		} {
			a := e.get(t, "/orders/2026-01-01/orders/"+orderID, tt.tok)
			got := a.json(t)["errors"].([]any)[0].(map[string]any)
			if got["message"] != "Access to requested resource is denied." || got["details"] != tt.details {
				t.Errorf("token %q: %v", tt.tok, got)
			}
		}
	})

	t.Run("429 body is exactly Amazon's", func(t *testing.T) {
		const want = `{"errors":[{"code":"QuotaExceeded","message":"You exceeded your quota for the requested resource.","details":""}]}`
		a := e.get(t, "/orders/2026-01-01/orders/"+orderID, access2)
		if string(a.body) != want {
			t.Errorf("429 body %s", a.body)
		}
	})
}

func TestFaults(t *testing.T) {
	e := start(t)
	s1 := seller1()
	_, access := e.authorize(t, s1)
	path := "/orders/2026-01-01/orders/" + "999-0000000-0000000"

	e.srv.InjectFault(s1, sandbox.Fault{Kind: "429", Count: 2})
	for i := 0; i < 2; i++ {
		if a := e.get(t, path, access); a.status != 429 {
			t.Fatalf("call %d: status %d", i, a.status)
		}
	}
	if a := e.get(t, path, access); a.status != 404 {
		t.Fatalf("after the faults: status %d", a.status)
	}

	e.srv.InjectFault(s1, sandbox.Fault{Kind: "drop", Count: 1})
	req, _ := http.NewRequest(http.MethodGet, e.base+path, nil)
	req.Header.Set("x-amz-access-token", access)
	// a fresh connection: the transport would silently retry a GET dropped
	// on a reused one
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := fresh.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped call answered %d", resp.StatusCode)
	}

	e.srv.InjectFault(s1, sandbox.Fault{Kind: "slow", Count: 1, Delay: 20 * time.Millisecond})
	if a := e.get(t, path, access); a.status != 404 {
		t.Fatalf("slow call: status %d", a.status)
	}

	// a slow answer gives up when the client does
	e.srv.InjectFault(s1, sandbox.Fault{Kind: "slow", Count: 1, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, e.base+path, nil)
	req.Header.Set("x-amz-access-token", access)
	if resp, err := noRedirect.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("slow call answered before its delay")
	}

	st := e.srv.Stats(s1)
	if st.FaultsServed != 5 || st.Calls[sandbox.OpGetOrder] != 6 {
		t.Errorf("stats %+v", st)
	}
}

// TestSchemaRejects makes sure the validation above can fail.
func TestSchemaRejects(t *testing.T) {
	for _, body := range []string{
		`{"orders":[{"orderId":"x"}]}`,
		`{"orders":[],"bogus":1}`,
		`{"orders":[],"lastUpdatedBefore":"yesterday"}`,
	} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(body))
		if modelSchemas(t)["SearchOrdersResponse"].Validate(v) == nil {
			t.Errorf("%s passed validation", body)
		}
	}
	for _, body := range []string{
		`{"payload":[{"marketplace":{"id":"A13V1IB3VIYZZH"},"participation":{"isParticipating":true,"hasSuspendedListings":false},"storeName":"x"}]}`,
		`{"payload":[{"marketplace":{"id":"A13V1IB3VIYZZH","countryCode":"fr","name":"Amazon.fr","defaultCurrencyCode":"EUR","defaultLanguageCode":"fr_FR","domainName":"www.amazon.fr"},"participation":{"isParticipating":true,"hasSuspendedListings":false},"storeName":"x"}]}`,
		`{"payload":[{"marketplace":{"id":"A13V1IB3VIYZZH","countryCode":"FR","name":"Amazon.fr","defaultCurrencyCode":"EUR","defaultLanguageCode":"fr_FR","domainName":"www.amazon.fr"},"participation":{"isParticipating":"yes","hasSuspendedListings":false},"storeName":"x"}]}`,
		`{"payload":[],"marketplaces":[]}`,
	} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(body))
		if modelSchemas(t)["GetMarketplaceParticipationsResponse"].Validate(v) == nil {
			t.Errorf("%s passed validation", body)
		}
	}
}

// TestMarketplaceParticipationsMatchModel validates every kind of
// getMarketplaceParticipations answer against the Sellers v1 model, whose
// error answers are GetMarketplaceParticipationsResponse too.
func TestMarketplaceParticipationsMatchModel(t *testing.T) {
	const path = "/sellers/v1/marketplaceParticipations"
	e := start(t, everyRateHeader)
	s1 := seller1()
	expired := func() string {
		_, a := e.authorize(t, s1)
		e.srv.ExpireAccessTokens(s1)
		return a
	}()
	_, access := e.authorize(t, s1)
	throttledSeller := sandbox.SellerID(2)
	_, access2 := e.authorize(t, throttledSeller)
	e.srv.SetRatePlan(throttledSeller, sandbox.OpGetMarketplaceParticipations, 0, 1)
	_ = e.get(t, path, access2)

	tests := []struct {
		name   string
		ans    answer
		status int
		code   string
	}{
		{"200", e.get(t, path, access), 200, ""},
		{"403 missing token", e.get(t, path, ""), 403, "Unauthorized"},
		{"403 invalid token", e.get(t, path, "Atza|garbage"), 403, "Unauthorized"},
		{"403 expired token", e.get(t, path, expired), 403, "Unauthorized"},
		{"429 quota", e.get(t, path, access2), 429, "QuotaExceeded"},
		{"500 fault", func() answer {
			e.srv.InjectFault(s1, sandbox.Fault{Kind: "500", Count: 1})
			return e.get(t, path, access)
		}(), 500, "InternalFailure"},
		{"503 fault", func() answer {
			e.srv.InjectFault(s1, sandbox.Fault{Kind: "503", Count: 1})
			return e.get(t, path, access)
		}(), 503, "ServiceUnavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ans.status != tt.status {
				t.Fatalf("status %d, want %d: %s", tt.ans.status, tt.status, tt.ans.body)
			}
			validate(t, "GetMarketplaceParticipationsResponse", tt.ans.body)
			if got := tt.ans.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if id := tt.ans.header.Get("x-amzn-RequestId"); len(id) != 36 {
				t.Errorf("x-amzn-RequestId %q", id)
			}
			m := tt.ans.json(t)
			if tt.code != "" {
				if _, ok := m["payload"]; ok {
					t.Errorf("error answer carries a payload")
				}
				errs := m["errors"].([]any)
				if got := errs[0].(map[string]any)["code"]; got != tt.code {
					t.Errorf("code %v, want %s", got, tt.code)
				}
			}
			_, hasLimit := tt.ans.header["X-Amzn-Ratelimit-Limit"]
			if want := tt.status == 200; hasLimit != want {
				t.Errorf("x-amzn-RateLimit-Limit present=%v, want %v", hasLimit, want)
			}
		})
	}
}

// getAccount answers per the Sellers v1 model: the account of the seller,
// or 403 when the seller did not grant the role.
func TestAccountMatchesModel(t *testing.T) {
	const path = "/sellers/v1/account"
	e := start(t)
	s1 := seller1()
	_, access := e.authorize(t, s1)
	a := e.get(t, path, access)
	if a.status != 200 {
		t.Fatalf("getAccount: %d %s", a.status, a.body)
	}
	validate(t, "GetAccountResponse", a.body)
	name := a.json(t)["payload"].(map[string]any)["business"].(map[string]any)["name"]
	if name != e.srv.Sellers()[0].Name {
		t.Errorf("business.name %v, want the seller's name", name)
	}
	e.srv.SetAccountAccess(s1, false)
	a = e.get(t, path, access)
	if a.status != 403 || a.json(t)["errors"].([]any)[0].(map[string]any)["code"] != "Unauthorized" {
		t.Fatalf("denied getAccount: %d %s", a.status, a.body)
	}
	validate(t, "GetAccountResponse", a.body)
}
