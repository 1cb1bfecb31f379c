package spapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

const modelDir = "../../testdata/amazon-models/"

// modelExamples is every example response of the models the client calls.
func modelExamples(t *testing.T) []openapicheck.Example {
	t.Helper()
	var all []openapicheck.Example
	for _, f := range []string{"orders_2026-01-01.json", "sellers.json"} {
		m, err := openapicheck.LoadModel(modelDir + f)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := m.Examples()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ex...)
	}
	return all
}

// Every example answer of the Orders v2026-01-01 and Sellers v1 models (the
// "examples" bodies and the x-amzn-api-sandbox responses) is served to the
// real client, and decodes without loss: every field the client keeps,
// encoded again, has the example's value (or is empty where the example
// has none), Raw is the example's order, and an error answer's code,
// message and details come through.
func TestModelExamplesDecode(t *testing.T) {
	examples := modelExamples(t)
	decoded := 0
	for _, ex := range examples {
		t.Run(fmt.Sprintf("%s %d %s", ex.Operation, ex.Status, ex.Source), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(ex.Status)
				w.Write(ex.Body)
			}))
			defer srv.Close()
			c := spapi.New()
			ctx := context.Background()
			var orig map[string]any
			if err := json.Unmarshal(ex.Body, &orig); err != nil {
				t.Fatal(err)
			}
			var err error
			switch ex.Operation {
			case "searchOrders":
				var p *spapi.SearchOrdersPage
				p, err = c.SearchOrders(ctx, srv.URL, staticTokens{}, spapi.SearchOrdersQuery{LastUpdatedAfter: t0, MarketplaceIDs: []string{"X"}})
				if err == nil {
					orders := orig["orders"].([]any)
					if len(p.Orders) != len(orders) {
						t.Fatalf("%d orders, want %d", len(p.Orders), len(orders))
					}
					for i, o := range p.Orders {
						sameOrder(t, o, orders[i])
					}
					var want struct {
						Pagination *struct {
							NextToken string `json:"nextToken"`
						} `json:"pagination"`
						LastUpdatedBefore time.Time `json:"lastUpdatedBefore"`
					}
					json.Unmarshal(ex.Body, &want)
					if want.Pagination != nil && p.NextToken != want.Pagination.NextToken || want.Pagination == nil && p.NextToken != "" ||
						!p.LastUpdatedBefore.Equal(want.LastUpdatedBefore) {
						t.Errorf("page: next token %q, lastUpdatedBefore %v; example %s", p.NextToken, p.LastUpdatedBefore, ex.Body)
					}
				}
			case "getOrder":
				var o spapi.Order
				o, err = c.GetOrder(ctx, srv.URL, staticTokens{}, "123-4567890-1234567", nil)
				if err == nil {
					sameOrder(t, o, orig["order"])
				}
			case "getMarketplaceParticipations":
				var ps []spapi.Participation
				ps, err = c.MarketplaceParticipations(ctx, srv.URL, staticTokens{})
				if err == nil {
					sameParticipations(t, ps, orig["payload"])
				}
			case "getAccount":
				var a spapi.Account
				a, err = c.Account(ctx, srv.URL, staticTokens{})
				if err == nil {
					payload := orig["payload"].(map[string]any)
					business, _ := payload["business"].(map[string]any)
					if a.BusinessType != payload["businessType"] || a.SellingPlan != payload["sellingPlan"] ||
						a.BusinessName != str(business["name"]) || a.NonLatinName != str(business["nonLatinName"]) || a.BusinessName == "" {
						t.Errorf("account %+v; example %s", a, ex.Body)
					}
					sameParticipations(t, a.Participations, payload["marketplaceParticipationList"])
					sameJSON(t, a.Raw, payload)
				}
			default:
				t.Fatalf("no decoder for %s: add one here", ex.Operation)
			}
			if ex.Status == http.StatusOK {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				decoded++
				return
			}
			var e *spapi.Error
			if !errors.As(err, &e) || e.Status != ex.Status || len(e.Errors) == 0 {
				t.Fatalf("error answer: %v", err)
			}
			errs := orig["errors"].([]any)
			for i, d := range e.Errors {
				w := errs[i].(map[string]any)
				if d.Code != w["code"] || d.Message != w["message"] || d.Details != str(w["details"]) {
					t.Errorf("error %d: %+v, example %v", i, d, w)
				}
			}
			decoded++
		})
	}
	if decoded != len(examples) || decoded != 15 {
		t.Fatalf("%d of %d examples decoded, want all 15", decoded, len(examples))
	}
	t.Logf("%d model examples decoded", decoded)
}

func str(v any) string { s, _ := v.(string); return s }

// sameOrder checks the decoded order against the example's: Raw is the
// example, and every field the struct keeps has its value.
func sameOrder(t *testing.T, o spapi.Order, want any) {
	t.Helper()
	sameJSON(t, o.Raw, want)
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	kept(t, "order", got, want)
}

func sameParticipations(t *testing.T, ps []spapi.Participation, want any) {
	t.Helper()
	list := want.([]any)
	if len(ps) != len(list) {
		t.Fatalf("%d participations, want %d", len(ps), len(list))
	}
	for i, p := range ps {
		w := list[i].(map[string]any)
		mp, part := w["marketplace"].(map[string]any), w["participation"].(map[string]any)
		if p.MarketplaceID != mp["id"] || p.CountryCode != mp["countryCode"] || p.StoreName != w["storeName"] ||
			p.Participating != part["isParticipating"] || p.SuspendedListings != part["hasSuspendedListings"] {
			t.Errorf("participation %d: %+v, example %v", i, p, w)
		}
	}
}

// sameJSON checks that raw is the same JSON value as want.
func sameJSON(t *testing.T, raw json.RawMessage, want any) {
	t.Helper()
	var got any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("raw: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		w, _ := json.Marshal(want)
		t.Errorf("raw differs from the example:\n got %s\nwant %s", bytes.TrimSpace(raw), w)
	}
}

// kept walks the re-encoded value: each leaf equals the example's at the
// same path (date-times as instants), or is empty where the example has
// nothing.
func kept(t *testing.T, path string, got, want any) {
	t.Helper()
	if want == nil {
		if !empty(got) {
			t.Errorf("%s: decoded %v where the example has nothing", path, got)
		}
		return
	}
	switch g := got.(type) {
	case map[string]any:
		w, ok := want.(map[string]any)
		if !ok {
			t.Errorf("%s: decoded an object, the example has %v", path, want)
			return
		}
		for k, v := range g {
			kept(t, path+"."+k, v, w[k])
		}
	case []any:
		w, ok := want.([]any)
		if !ok || len(w) != len(g) {
			t.Errorf("%s: decoded %d items, the example has %v", path, len(g), want)
			return
		}
		for i := range g {
			kept(t, fmt.Sprintf("%s[%d]", path, i), g[i], w[i])
		}
	case string:
		if g == want {
			return
		}
		gt, err1 := time.Parse(time.RFC3339Nano, g)
		wt, err2 := time.Parse(time.RFC3339Nano, str(want))
		if err1 != nil || err2 != nil || !gt.Equal(wt) {
			t.Errorf("%s: decoded %q, the example has %v", path, g, want)
		}
	default:
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded %v, the example has %v", path, got, want)
		}
	}
}

func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == "" || v == "0001-01-01T00:00:00Z"
	case bool:
		return !v
	case float64:
		return v == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		for _, e := range v {
			if !empty(e) {
				return false
			}
		}
		return true
	}
	return false
}
