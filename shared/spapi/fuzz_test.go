package spapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// answer is a RoundTripper that answers every request with one status and body.
type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) RoundTrip(r *http.Request) (*http.Response, error) {
	h := a.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: a.status, Header: h, Body: io.NopCloser(strings.NewReader(a.body)), Request: r}, nil
}

// FuzzSearchOrdersDecode feeds searchOrders answers of any status, body and
// rate-limit header to the client, then the decoded orders to the
// normaliser (spapi.BuyerEvents, what the poller stores). No input may panic;
// an error comes with no page; a page's orders keep their raw JSON.
func FuzzSearchOrdersDecode(f *testing.F) {
	f.Add(200, "0.0056", `{"orders":[],"lastUpdatedBefore":"2026-11-20T11:58:00Z"}`)
	f.Add(200, "", `{"orders":[{"orderId":"402-1","lastUpdatedTime":"2026-11-20T10:00:00Z","salesChannel":{"marketplaceId":"A13V1IB3VIYZZH"},`+
		`"buyer":{"buyerName":"Jo","buyerEmail":"x@marketplace.amazon.fr"},"orderItems":[{"orderItemId":"1","product":{"title":"Mug"},`+
		`"cancellation":{"cancellationRequest":{"requester":"BUYER","cancelReason":"Ordered by mistake"}}}]}],`+
		`"pagination":{"nextToken":"abc"},"lastUpdatedBefore":"2026-11-20T11:58:00Z"}`)
	f.Add(200, "1e309", `{"orders":[{"orderId":1}]}`)
	f.Add(200, "NaN", `{"orders":[null,{"orderItems":[null,{"cancellation":null},{"cancellation":{"cancellationRequest":null}}]}]}`)
	f.Add(200, "-1", `{"orders":[{"orderId":"x","createdTime":"not a time"}]}`)
	f.Add(403, "", `{"errors":[{"code":"Unauthorized","message":"Access to requested resource is denied.","details":"The access token you provided has expired."}]}`)
	f.Add(429, "", `{"errors":[{"code":"QuotaExceeded","message":"You exceeded your quota for the requested resource."}]}`)
	f.Add(400, "", `{"errors":[{"code":"InvalidInput","message":"Invalid paginationToken"}]}`)
	f.Add(500, "", `<html>oops</html>`)
	f.Add(200, "", ``)
	f.Add(200, "", `{"orders":{}}`)
	f.Fuzz(func(t *testing.T, status int, rateLimit, body string) {
		if status < 100 || status > 599 {
			status = 200 + (status%400+400)%400
		}
		h := http.Header{}
		if rateLimit != "" {
			h.Set("x-amzn-RateLimit-Limit", rateLimit)
		}
		c := spapi.New(spapi.WithHTTPClient(&http.Client{Transport: answer{status: status, header: h, body: body}, Timeout: 5 * time.Second}))
		page, err := c.SearchOrders(context.Background(), "http://sp-api.invalid", spapi.StaticToken("Atza|fuzz-access-token"),
			spapi.SearchOrdersQuery{LastUpdatedAfter: time.Unix(0, 0), MarketplaceIDs: []string{"A13V1IB3VIYZZH"}})
		if err != nil {
			if page != nil {
				t.Fatalf("error %v with a page", err)
			}
			if strings.Contains(err.Error(), "fuzz-access-token") {
				t.Fatalf("the access token is in the error: %v", err)
			}
			return
		}
		if status != http.StatusOK {
			t.Fatalf("HTTP %d decoded as a page", status)
		}
		if page.RateLimit < 0 || page.RateLimit != page.RateLimit || page.RateLimit > 1e300 {
			t.Fatalf("rate limit %v from header %q", page.RateLimit, rateLimit)
		}
		for i, o := range page.Orders {
			if len(o.Raw) == 0 {
				t.Fatalf("order %d without its raw JSON", i)
			}
		}
		checkBuyerEvents(t, page.Orders)
	})
}

// checkBuyerEvents: the normaliser's messages are whole records (what
// IngestPage stores), one per buyer cancellation request.
func checkBuyerEvents(t *testing.T, orders []spapi.Order) {
	t.Helper()
	want := 0
	usable := func(id string) bool { return strings.TrimSpace(id) != "" && !strings.Contains(id, ":") }
	for _, o := range orders {
		if !usable(o.OrderID) {
			continue // skipped: such an event cannot be stored exactly once (spapi.BuyerEvents)
		}
		for _, it := range o.OrderItems {
			if usable(it.OrderItemID) && it.Cancellation != nil && it.Cancellation.CancellationRequest != nil &&
				strings.EqualFold(it.Cancellation.CancellationRequest.Requester, "BUYER") {
				want++
			}
		}
	}
	msgs := spapi.BuyerEvents(orders)
	if len(msgs) != want {
		t.Fatalf("%d messages for %d buyer cancellation requests", len(msgs), want)
	}
	for _, m := range msgs {
		if m.ThreadKey != m.OrderID || !strings.HasSuffix(m.ExternalID, ":cancellation") || m.Body == "" || m.ReceivedAt.IsZero() && m.Raw == nil {
			t.Fatalf("half-formed message %+v", m)
		}
	}
}
