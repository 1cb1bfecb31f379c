package sandbox_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

type page struct {
	Orders []struct {
		OrderID         string    `json:"orderId"`
		CreatedTime     time.Time `json:"createdTime"`
		LastUpdatedTime time.Time `json:"lastUpdatedTime"`
		OrderItems      []struct {
			OrderItemID  string `json:"orderItemId"`
			Cancellation *struct {
				CancellationRequest struct {
					Requester    string `json:"requester"`
					CancelReason string `json:"cancelReason"`
				} `json:"cancellationRequest"`
			} `json:"cancellation"`
		} `json:"orderItems"`
	} `json:"orders"`
	Pagination *struct {
		NextToken string `json:"nextToken"`
	} `json:"pagination"`
	LastUpdatedBefore string `json:"lastUpdatedBefore"`
	CreatedBefore     string `json:"createdBefore"`
}

func fastPlans(e *env, sellerID string) {
	e.srv.SetRatePlan(sellerID, sandbox.OpSearchOrders, 1000, 10_000)
	e.srv.SetRatePlan(sellerID, sandbox.OpGetOrder, 1000, 10_000)
}

// searchAll follows pagination from the first query and returns every page.
func searchAll(t *testing.T, e *env, access string, q url.Values) []page {
	t.Helper()
	var pages []page
	for i := 0; i < 1000; i++ {
		a := e.search(t, access, q)
		if a.status != 200 {
			t.Fatalf("page %d: %d %s", i, a.status, a.body)
		}
		validate(t, "SearchOrdersResponse", a.body)
		var p page
		if err := json.Unmarshal(a.body, &p); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
		if p.Pagination == nil {
			return pages
		}
		// The next page: the token and every other parameter with the same
		// values (the model's SearchOrdersResponse.pagination).
		q = withToken(q, p.Pagination.NextToken)
	}
	t.Fatal("pagination never ends")
	return nil
}

// withToken is q (a first page's query) asking for the page tok points at.
func withToken(q url.Values, tok string) url.Values {
	next := url.Values{}
	for k, v := range q {
		next[k] = v
	}
	next.Set("paginationToken", tok)
	return next
}

func TestPaginationCoversEveryOrderOnce(t *testing.T) {
	e := start(t)
	s1 := seller1()
	seller := e.srv.Sellers()[0]
	_, access := e.authorize(t, s1)
	fastPlans(e, s1)

	since := t0.Add(-31 * 24 * time.Hour).Format(time.RFC3339)
	mps := url.Values{"marketplaceIds": seller.MarketplaceIDs}.Get("marketplaceIds")
	for _, mp := range seller.MarketplaceIDs[1:] {
		mps += "," + mp
	}
	byUpdate := searchAll(t, e, access, url.Values{"lastUpdatedAfter": {since}, "marketplaceIds": {mps},
		"maxResultsPerPage": {"37"}, "includedData": {"CANCELLATION"}})
	byCreate := searchAll(t, e, access, url.Values{"createdAfter": {since}, "marketplaceIds": {mps}})

	seen := map[string]bool{}
	days := map[string]bool{}
	var prev time.Time
	var cancelled []string
	for _, p := range byUpdate {
		if p.LastUpdatedBefore != t0.Add(-2*time.Minute).Format("2006-01-02T15:04:05Z") {
			t.Errorf("lastUpdatedBefore %s", p.LastUpdatedBefore)
		}
		for _, o := range p.Orders {
			if seen[o.OrderID] {
				t.Errorf("order %s twice", o.OrderID)
			}
			seen[o.OrderID] = true
			if o.LastUpdatedTime.Before(prev) {
				t.Errorf("not sorted by lastUpdatedTime at %s", o.OrderID)
			}
			prev = o.LastUpdatedTime
			days[o.CreatedTime.Format(time.DateOnly)] = true
			for _, it := range o.OrderItems {
				if it.Cancellation != nil {
					if it.Cancellation.CancellationRequest.Requester != "BUYER" || it.Cancellation.CancellationRequest.CancelReason == "" {
						t.Errorf("cancellation %+v", it.Cancellation)
					}
					cancelled = append(cancelled, o.OrderID+"/"+it.OrderItemID)
				}
			}
		}
	}
	n := len(seen)
	if n < 200 || n > 500 {
		t.Errorf("%d orders, want a few hundred", n)
	}
	if len(days) < 30 {
		t.Errorf("orders on %d days, want every day of 30", len(days))
	}
	created := 0
	for _, p := range byCreate {
		if p.CreatedBefore == "" || p.LastUpdatedBefore != "" {
			t.Errorf("createdAfter answer: createdBefore %q lastUpdatedBefore %q", p.CreatedBefore, p.LastUpdatedBefore)
		}
		for _, o := range p.Orders {
			if !seen[o.OrderID] {
				t.Errorf("order %s only seen by createdAfter", o.OrderID)
			}
			created++
		}
	}
	if created != n {
		t.Errorf("createdAfter found %d orders, lastUpdatedAfter %d", created, n)
	}
	var truth []string
	for _, ev := range e.srv.BuyerEvents(s1) {
		truth = append(truth, ev.OrderID+"/"+ev.OrderItemID)
	}
	slices.Sort(truth)
	slices.Sort(cancelled)
	if !slices.Equal(truth, cancelled) || len(truth) < n/20 || len(truth) > n/5 {
		t.Errorf("cancellations seen %d, ground truth %d, orders %d", len(cancelled), len(truth), n)
	}
}

func TestOrdersAreDeterministic(t *testing.T) {
	first := func() string {
		e := start(t)
		_, access := e.authorize(t, seller1())
		a := e.search(t, access, url.Values{"createdAfter": {t0.Add(-72 * time.Hour).Format(time.RFC3339)},
			"marketplaceIds": {sandbox.MarketplaceFR}, "includedData": {"BUYER"}})
		return string(a.body)
	}
	if a, b := first(), first(); a != b {
		t.Error("two sandboxes started at the same time generate different orders")
	}
}

func TestPaginationTokenExpiry(t *testing.T) {
	e := start(t)
	s1 := seller1()
	_, access := e.authorize(t, s1)
	fastPlans(e, s1)
	first := url.Values{"lastUpdatedAfter": {t0.Add(-10 * 24 * time.Hour).Format(time.RFC3339)},
		"marketplaceIds": {sandbox.MarketplaceFR}, "maxResultsPerPage": {"5"}}
	a := e.search(t, access, first)
	var p page
	_ = json.Unmarshal(a.body, &p)
	if p.Pagination == nil {
		t.Fatal("no nextToken")
	}
	tok := p.Pagination.NextToken
	_, other := e.authorize(t, sandbox.SellerID(2))
	fastPlans(e, sandbox.SellerID(2))

	if a := e.search(t, other, withToken(first, tok)); a.status != 400 {
		t.Errorf("another seller's token: %d", a.status)
	}
	if a := e.search(t, access, withToken(first, "garbage")); a.status != 400 {
		t.Errorf("garbage token: %d", a.status)
	}
	e.clock.Advance(23*time.Hour + 59*time.Minute)
	_, access = e.authorize(t, s1)
	if a := e.search(t, access, withToken(first, tok)); a.status != 200 {
		t.Errorf("token at 23h59: %d %s", a.status, a.body)
	}
	e.clock.Advance(time.Minute + time.Second)
	a = e.search(t, access, withToken(first, tok))
	if a.status != 400 || a.json(t)["errors"].([]any)[0].(map[string]any)["code"] != "InvalidInput" {
		t.Errorf("token after 24h: %d %s", a.status, a.body)
	}
	if v := e.srv.TakeViolations(); len(v) != 0 {
		t.Errorf("unknown and expired tokens are Amazon's answers, not contract violations: %v", v)
	}
}

// The old client's next-page request (the token, alone or with only some
// of the filters) is refused as Amazon's model says: 400 InvalidInput with
// Amazon's error body. Only maxResultsPerPage and includedData may change.
func TestNextPageNeedsTheSameFilters(t *testing.T) {
	e := start(t)
	s1 := seller1()
	seller := e.srv.Sellers()[0]
	_, access := e.authorize(t, s1)
	fastPlans(e, s1)
	since := t0.Add(-10 * 24 * time.Hour)
	first := url.Values{"lastUpdatedAfter": {since.Format(time.RFC3339)}, "marketplaceIds": {seller.MarketplaceIDs[0] + "," + seller.MarketplaceIDs[1]},
		"maxResultsPerPage": {"5"}, "includedData": {"BUYER,CANCELLATION"}}
	a := e.search(t, access, first)
	var p page
	_ = json.Unmarshal(a.body, &p)
	if a.status != 200 || p.Pagination == nil {
		t.Fatalf("first page: %d %s", a.status, a.body)
	}
	tok := p.Pagination.NextToken
	refused := []struct {
		name string
		q    url.Values
	}{
		{"token alone", url.Values{"paginationToken": {tok}}},
		{"token and marketplaceIds (the old client)", url.Values{"paginationToken": {tok}, "marketplaceIds": first["marketplaceIds"],
			"includedData": first["includedData"], "maxResultsPerPage": first["maxResultsPerPage"]}},
		{"another lastUpdatedAfter", func() url.Values {
			q := withToken(first, tok)
			q.Set("lastUpdatedAfter", since.Add(time.Second).Format(time.RFC3339))
			return q
		}()},
		{"fewer marketplaces", func() url.Values {
			q := withToken(first, tok)
			q.Set("marketplaceIds", seller.MarketplaceIDs[0])
			return q
		}()},
		{"a filter added", func() url.Values {
			q := withToken(first, tok)
			q.Set("fulfilledBy", "MERCHANT")
			return q
		}()},
	}
	for _, c := range refused {
		a := e.search(t, access, c.q)
		if a.status != 400 {
			t.Errorf("%s: %d %s", c.name, a.status, a.body)
			continue
		}
		validate(t, "ErrorList", a.body)
		if code := a.json(t)["errors"].([]any)[0].(map[string]any)["code"]; code != "InvalidInput" {
			t.Errorf("%s: code %v", c.name, code)
		}
	}
	if v := e.srv.TakeViolations(); len(v) != len(refused) {
		t.Errorf("%d violations recorded, want %d: %v", len(v), len(refused), v)
	}

	// The same filters, the same instant written differently, the
	// marketplaces in another order, another page size and datasets: accepted.
	same := withToken(first, tok)
	same.Set("lastUpdatedAfter", since.In(time.FixedZone("CET", 3600)).Format(time.RFC3339))
	same.Set("marketplaceIds", seller.MarketplaceIDs[1]+","+seller.MarketplaceIDs[0])
	same.Set("maxResultsPerPage", "7")
	same.Set("includedData", "BUYER")
	if a := e.search(t, access, same); a.status != 200 {
		t.Fatalf("next page with the same filters: %d %s", a.status, a.body)
	}
}

func TestNewActivityShowsUpAfterCursor(t *testing.T) {
	e := start(t)
	s1 := seller1()
	_, access := e.authorize(t, s1)
	fastPlans(e, s1)
	all := searchAll(t, e, access, url.Values{"lastUpdatedAfter": {t0.Add(-40 * 24 * time.Hour).Format(time.RFC3339)},
		"marketplaceIds": {sandbox.MarketplaceFR}})
	cursor := all[len(all)-1].LastUpdatedBefore
	oldOrder := all[0].Orders[0].OrderID
	before := len(e.srv.BuyerEvents(s1))

	e.clock.Advance(10 * time.Minute)
	ev, err := e.srv.AddCancellationRequest(s1, oldOrder, "Ordered by mistake")
	if err != nil {
		t.Fatal(err)
	}
	newID, err := e.srv.AddOrder(s1, sandbox.MarketplaceFR, true)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.srv.AddOrder(s1, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.AddOrder(s1, "A1F83G8C2ARO7P", false); err == nil {
		t.Error("AddOrder on a marketplace the seller does not sell on")
	}
	if got := len(e.srv.BuyerEvents(s1)); got != before+2 {
		t.Errorf("BuyerEvents %d, want %d", got, before+2)
	}

	q := url.Values{"lastUpdatedAfter": {cursor}, "marketplaceIds": {sandbox.MarketplaceFR}, "includedData": {"CANCELLATION"}}
	if p := searchAll(t, e, access, q); len(p[0].Orders) != 0 {
		t.Errorf("activity of now visible before now-2min: %d orders", len(p[0].Orders))
	}
	e.clock.Advance(2*time.Minute + time.Second)
	_, access = e.authorize(t, s1)
	got := map[string]bool{}
	for _, p := range searchAll(t, e, access, q) {
		for _, o := range p.Orders {
			for _, it := range o.OrderItems {
				got[o.OrderID] = got[o.OrderID] || it.Cancellation != nil
			}
		}
	}
	if !got[ev.OrderID] || !got[newID] || len(got) != 3 {
		t.Errorf("after the cursor: %v (want %s and %s with cancellations, and %s)", got, ev.OrderID, newID, plain)
	}
}

func TestSearchValidation(t *testing.T) {
	e := start(t)
	s1 := seller1()
	_, access := e.authorize(t, s1)
	fastPlans(e, s1)
	ago := func(d time.Duration) string { return t0.Add(-d).Format(time.RFC3339) }
	fr := sandbox.MarketplaceFR
	// ok: answered 200. Every refusal is outside Amazon's contract (a
	// violation) except a marketplace the seller does not sell on and a
	// "before" later than now-2min: those depend on the state of things.
	tests := []struct {
		name string
		q    url.Values
		ok   bool
	}{
		{"valid", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "marketplaceIds": {fr}}, true},
		{"valid createdAfter and createdBefore", url.Values{"createdAfter": {ago(time.Hour)}, "createdBefore": {ago(3 * time.Minute)}, "marketplaceIds": {fr}}, true},
		{"valid several marketplaceIds", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "marketplaceIds": {strings.Join(e.srv.Sellers()[0].MarketplaceIDs, ",")}}, true},
		{"repeated marketplaceIds (the model's csv wants one value)", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "marketplaceIds": e.srv.Sellers()[0].MarketplaceIDs}, false},
		{"date without a time", url.Values{"lastUpdatedAfter": {t0.Format(time.DateOnly)}, "marketplaceIds": {fr}}, false},
		{"date-time without an offset", url.Values{"lastUpdatedAfter": {t0.Format("2006-01-02T15:04:05")}, "marketplaceIds": {fr}}, false},
		{"51 marketplaceIds", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "marketplaceIds": {strings.Repeat(fr+",", 50) + fr}}, false},
		{"an undeclared parameter", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "marketplaceIds": {fr}, "MaxResultsPerPage": {"5"}}, false},
		{"neither after", url.Values{"marketplaceIds": {fr}}, false},
		{"both afters", url.Values{"createdAfter": {ago(time.Hour)}, "lastUpdatedAfter": {ago(time.Hour)}, "marketplaceIds": {fr}}, false},
		{"createdAfter with lastUpdatedBefore", url.Values{"createdAfter": {ago(time.Hour)}, "lastUpdatedBefore": {ago(5 * time.Minute)}, "marketplaceIds": {fr}}, false},
		{"lastUpdatedAfter with createdBefore", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "createdBefore": {ago(5 * time.Minute)}, "marketplaceIds": {fr}}, false},
		{"not ISO 8601", url.Values{"lastUpdatedAfter": {"yesterday"}, "marketplaceIds": {fr}}, false},
		{"missing marketplaceIds", url.Values{"lastUpdatedAfter": {ago(time.Hour)}}, false},
		{"foreign marketplace", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "marketplaceIds": {"ATVPDKIKX0DER"}}, false},
		{"maxResultsPerPage 0", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "marketplaceIds": {fr}, "maxResultsPerPage": {"0"}}, false},
		{"maxResultsPerPage 101", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "marketplaceIds": {fr}, "maxResultsPerPage": {"101"}}, false},
		{"maxResultsPerPage abc", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "marketplaceIds": {fr}, "maxResultsPerPage": {"abc"}}, false},
		{"unknown includedData", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "marketplaceIds": {fr}, "includedData": {"BUYER,MESSAGES"}}, false},
		{"unknown fulfillmentStatuses", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "marketplaceIds": {fr}, "fulfillmentStatuses": {"LOST"}}, false},
		{"lastUpdatedBefore later than now-2min", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "lastUpdatedBefore": {ago(time.Minute)}, "marketplaceIds": {fr}}, false},
		{"lastUpdatedBefore before lastUpdatedAfter", url.Values{"lastUpdatedAfter": {ago(time.Hour)}, "lastUpdatedBefore": {ago(2 * time.Hour)}, "marketplaceIds": {fr}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.search(t, access, tt.q)
			if tt.ok {
				if a.status != 200 {
					t.Fatalf("status %d: %s", a.status, a.body)
				}
				validate(t, "SearchOrdersResponse", a.body)
				return
			}
			if a.status != 400 {
				t.Fatalf("status %d, want 400: %s", a.status, a.body)
			}
			validate(t, "ErrorList", a.body)
			if c := a.json(t)["errors"].([]any)[0].(map[string]any)["code"]; c != "InvalidInput" {
				t.Errorf("code %v", c)
			}
		})
	}
	if a := e.get(t, "/orders/2026-01-01/orders/x?includedData=NOPE", access); a.status != 400 {
		t.Errorf("getOrder with unknown includedData: %d", a.status)
	}
	refusedByContract := 1 // getOrder's
	for _, tt := range tests {
		if !tt.ok && tt.name != "foreign marketplace" && tt.name != "lastUpdatedBefore later than now-2min" {
			refusedByContract++
		}
	}
	if v := e.srv.TakeViolations(); len(v) != refusedByContract {
		t.Errorf("%d violations recorded, want %d: %v", len(v), refusedByContract, v)
	}
}
