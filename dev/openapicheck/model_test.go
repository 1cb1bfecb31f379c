package openapicheck

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const amazonModels = "../../testdata/amazon-models"

func amazonContract(t *testing.T) *Contract {
	t.Helper()
	c, err := LoadContract(amazonModels, AmazonRules)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The operations come from the files: every operation the connector calls
// is found, with the parameters the model declares.
func TestModelsLoad(t *testing.T) {
	c := amazonContract(t)
	ops := map[string]*Operation{}
	for _, m := range c.Models() {
		for _, o := range m.Operations() {
			ops[o.ID] = o
		}
	}
	for id, want := range map[string]int{"searchOrders": 10, "getOrder": 2, "getMarketplaceParticipations": 0, "getAccount": 0} {
		o := ops[id]
		if o == nil || len(o.params) != want {
			t.Errorf("%s: %+v, want %d parameters", id, o, want)
		}
	}
	if len(c.Rules("searchOrders")) != len(AmazonRules) {
		t.Errorf("searchOrders has %d hand-written rules", len(c.Rules("searchOrders")))
	}
}

func TestContractCheck(t *testing.T) {
	c := amazonContract(t)
	const search = "/orders/2026-01-01/orders?"
	first := "lastUpdatedAfter=2026-11-13T12:00:00Z&marketplaceIds=A13V1IB3VIYZZH,A1PA6795UKMFR9&includedData=BUYER,CANCELLATION&maxResultsPerPage=100"
	cases := []struct {
		name, method, target string
		problem              string // "" = valid; else a piece of the violation
	}{
		{"first page", "GET", search + first, ""},
		{"next page with the filters", "GET", search + first + "&paginationToken=abc", ""},
		{"model's sandbox example #2", "GET", search + "createdAfter=2024-12-23T00:00:00Z&marketplaceIds=A1F83G8C2ARO7P&includedData=BUYER,RECIPIENT&paginationToken=9ZhB4RmVyc2lvbiAxLjAgb2YgdGhl", ""},
		{"getOrder", "GET", "/orders/2026-01-01/orders/402-1234567-1234567?includedData=BUYER,CANCELLATION", ""},
		{"getOrder bare", "GET", "/orders/2026-01-01/orders/402-1234567-1234567", ""},
		{"participations", "GET", "/sellers/v1/marketplaceParticipations", ""},
		{"account", "GET", "/sellers/v1/account", ""},

		{"token alone", "GET", search + "paginationToken=abc", "exactly one of createdAfter and lastUpdatedAfter"},
		{"unknown path", "GET", "/orders/v0/orders?MarketplaceIds=X", "no model has this path"},
		{"wrong method", "POST", "/orders/2026-01-01/orders", "not with this method"},
		{"unknown parameter", "GET", search + first + "&nextToken=abc", "nextToken is not declared"},
		{"v0 spelling", "GET", search + "LastUpdatedAfter=2026-11-13T12:00:00Z&MarketplaceIds=X", "LastUpdatedAfter is not declared"},
		{"includedData enum", "GET", search + "lastUpdatedAfter=2026-11-13T12:00:00Z&marketplaceIds=X&includedData=BUYER,MESSAGES", `"MESSAGES" is not one of the model's values`},
		{"fulfilledBy enum", "GET", search + "lastUpdatedAfter=2026-11-13T12:00:00Z&marketplaceIds=X&fulfilledBy=SELLER", `"SELLER" is not one of`},
		{"date-time format", "GET", search + "lastUpdatedAfter=2026-11-13&marketplaceIds=X", "is not a date-time"},
		{"date-time without zone", "GET", search + "lastUpdatedAfter=2026-11-13T12:00:00&marketplaceIds=X", "is not a date-time"},
		{"integer type", "GET", search + "lastUpdatedAfter=2026-11-13T12:00:00Z&marketplaceIds=X&maxResultsPerPage=ten", "is not an integer"},
		{"maxResultsPerPage range", "GET", search + "lastUpdatedAfter=2026-11-13T12:00:00Z&marketplaceIds=X&maxResultsPerPage=101", "not between 1 and 100"},
		{"maxResultsPerPage zero", "GET", search + "lastUpdatedAfter=2026-11-13T12:00:00Z&marketplaceIds=X&maxResultsPerPage=0", "not between 1 and 100"},
		{"maxItems", "GET", search + "lastUpdatedAfter=2026-11-13T12:00:00Z&marketplaceIds=" + strings.Repeat("A,", 50) + "A", "at most 50"},
		{"repeated array (csv wants one value)", "GET", search + "lastUpdatedAfter=2026-11-13T12:00:00Z&marketplaceIds=X&marketplaceIds=Y", "collectionFormat csv"},
		{"repeated scalar", "GET", search + "lastUpdatedAfter=2026-11-13T12:00:00Z&lastUpdatedAfter=2026-11-13T12:00:00Z&marketplaceIds=X", "given 2 times"},
		{"both afters", "GET", search + "lastUpdatedAfter=2026-11-13T12:00:00Z&createdAfter=2026-11-13T12:00:00Z&marketplaceIds=X", "exactly one"},
		{"createdBefore with lastUpdatedAfter", "GET", search + "lastUpdatedAfter=2026-11-13T12:00:00Z&createdBefore=2026-11-14T12:00:00Z&marketplaceIds=X", "exclude each other"},
		{"lastUpdatedBefore alone", "GET", search + "createdAfter=2026-11-13T12:00:00Z&lastUpdatedBefore=2026-11-14T12:00:00Z&marketplaceIds=X", "exclude each other"},
		{"before before after", "GET", search + "createdAfter=2026-11-13T12:00:00Z&createdBefore=2026-11-12T12:00:00Z&marketplaceIds=X", "createdBefore is before createdAfter"},
		{"no marketplaceIds", "GET", search + "lastUpdatedAfter=2026-11-13T12:00:00Z", "marketplaceIds is required"},
		{"getOrder includedData enum", "GET", "/orders/2026-01-01/orders/402-1?includedData=ORDER", `"ORDER" is not one of`},
		{"getOrder unknown parameter", "GET", "/orders/2026-01-01/orders/402-1?marketplaceIds=X", "marketplaceIds is not declared"},
		{"sellers parameter", "GET", "/sellers/v1/account?marketplaceId=X", "marketplaceId is not declared"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(tc.method, "https://sellingpartnerapi-eu.amazon.com"+tc.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Check(r)
			var v *Violation
			switch {
			case tc.problem == "" && err != nil:
				t.Fatalf("valid request refused: %v", err)
			case tc.problem != "" && (!errors.As(err, &v) || !strings.Contains(err.Error(), tc.problem)):
				t.Fatalf("got %v, want a violation mentioning %q", err, tc.problem)
			}
		})
	}
	if n := c.Checked(); n["searchOrders"] == 0 || n["getOrder"] == 0 || n[""] != 2 {
		t.Fatalf("counts %v", n)
	}
}

// A body parameter is validated against its schema, read from the model.
func TestContractBody(t *testing.T) {
	m, err := ParseModel("fake.json", []byte(`{"swagger":"2.0","paths":{"/things/{kind}":{"parameters":[{"name":"kind","in":"path","required":true,"type":"string","enum":["A","B"]}],
	  "post":{"operationId":"createThing","parameters":[{"name":"body","in":"body","required":true,"schema":{"$ref":"#/definitions/Thing"}},
	    {"name":"n","in":"query","type":"integer","minimum":1,"maximum":5},{"name":"tag","in":"query","type":"string","pattern":"^[a-z]+$","maxLength":4},
	    {"name":"ids","in":"query","type":"array","items":{"type":"string"},"collectionFormat":"multi","uniqueItems":true,"minItems":2}]}}},
	  "definitions":{"Thing":{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := NewContract([]*Model{m}, nil)
	for _, tc := range []struct{ target, body, problem string }{
		{"/things/A?n=3&tag=ab&ids=x&ids=y", `{"name":"x"}`, ""},
		{"/things/C", `{"name":"x"}`, `"C" is not one of`},
		{"/things/A", ``, "a JSON body is required"},
		{"/things/A", `{"nom":"x"}`, "body does not match"},
		{"/things/A?n=9", `{"name":"x"}`, "above the model's maximum"},
		{"/things/A?n=0", `{"name":"x"}`, "below the model's minimum"},
		{"/things/A?tag=ABC", `{"name":"x"}`, "does not match the model's pattern"},
		{"/things/A?tag=abcde", `{"name":"x"}`, "longer than the model's maxLength"},
		{"/things/A?ids=x&ids=x", `{"name":"x"}`, "unique items"},
		{"/things/A?ids=x", `{"name":"x"}`, "at least 2"},
	} {
		u, _ := url.Parse(tc.target)
		_, err := c.CheckParts("POST", u, http.Header{}, []byte(tc.body))
		if (tc.problem == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.problem)) {
			t.Errorf("%s %s: %v, want %q", tc.target, tc.body, err, tc.problem)
		}
	}
}

// Every example response of the two models is found, with its status.
func TestExamples(t *testing.T) {
	want := map[string]int{"orders_2026-01-01.json": 10, "sellers.json": 5}
	for file, n := range want {
		m, err := LoadModel(amazonModels + "/" + file)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := m.Examples()
		if err != nil {
			t.Fatal(err)
		}
		if len(ex) != n {
			t.Errorf("%s: %d examples, want %d", file, len(ex), n)
		}
		for _, e := range ex {
			if e.Operation == "" || e.Status == 0 || len(e.Body) < 2 || e.Body[0] != '{' {
				t.Errorf("%s: example %+v", file, e)
			}
		}
	}
}

// The checker agrees with the Orders and Sellers models' own sandbox: every
// request Amazon's static sandbox answers 200 is within the contract, and
// the Orders requests it answers 400 (TEST_CASE_400 for a date-time, for an
// order id) are not, except getOrder's, whose order id is any string. The
// Sellers model's 400 entry has no parameters: nothing to refuse.
func TestModelSandboxRequests(t *testing.T) {
	c := amazonContract(t)
	ok, refused := 0, 0
	for _, m := range c.Models() {
		if m.Name != "orders_2026-01-01.json" && m.Name != "sellers.json" {
			continue
		}
		reqs, err := m.SandboxRequests()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			_, err := c.CheckParts(r.Method, r.URL, http.Header{}, r.Body)
			switch {
			case r.Status == 200 && err != nil:
				t.Errorf("%s (200 in the model's sandbox) refused: %v", r.URL, err)
			case r.Status == 200:
				ok++
			case r.Operation == "searchOrders" && err == nil:
				t.Errorf("%s (400 in the model's sandbox) accepted", r.URL)
			case err != nil:
				refused++
			}
		}
	}
	if ok != 8 || refused != 1 {
		t.Fatalf("%d sandbox requests within the contract (want 8), %d refused (want 1)", ok, refused)
	}
}
