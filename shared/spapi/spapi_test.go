package spapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func sellerTokens(t *testing.T) (*sandbox.Server, string, *lwa.CachedSource) {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	cfg.Clock = sandbox.NewManualClock(t0)
	sb, url := sandboxtest.Start(t, cfg)
	rt, _ := sb.IssueRefreshToken(sandbox.SellerID(1))
	client := lwa.New(url + "/auth/o2/token")
	app := lwa.App{ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret)}
	return sb, url, lwa.NewCachedSource(client.NewRotatingSource(context.Background(), app, secret.Value(rt)))
}

func TestSearchOrdersAgainstSandbox(t *testing.T) {
	sb, url, tokens := sellerTokens(t)
	seller := sb.Sellers()[0]
	c := spapi.New()
	ctx := context.Background()
	q := spapi.SearchOrdersQuery{LastUpdatedAfter: t0.Add(-30 * 24 * time.Hour), MarketplaceIDs: seller.MarketplaceIDs}
	var orders, cancellations int
	pages := 0
	for {
		page, err := c.SearchOrders(ctx, url, tokens, q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		// The sandbox leaves x-amzn-RateLimit-Limit off every fourth answer
		// (Amazon sends it "when available"): RateLimit is 0 then.
		wantRate := spapi.SearchOrdersRate
		if pages%4 == 0 {
			wantRate = 0
		}
		if page.RateLimit != wantRate || !page.LastUpdatedBefore.Equal(t0.Add(-2*time.Minute)) || page.RequestID == "" {
			t.Fatalf("page %d: rate %v, lastUpdatedBefore %v, request id %q", pages, page.RateLimit, page.LastUpdatedBefore, page.RequestID)
		}
		for _, o := range page.Orders {
			orders++
			// buyerEmail only for a seller-fulfilled order (the Orders model).
			if o.OrderID == "" || o.LastUpdatedTime.IsZero() || o.Buyer == nil || (o.Buyer.BuyerEmail != "") != sb.SellerFulfilled(seller.ID, o.OrderID) || len(o.Raw) == 0 || o.SalesChannel.MarketplaceID == "" {
				t.Fatalf("order not decoded: %+v", o)
			}
			for _, it := range o.OrderItems {
				if it.Cancellation != nil && it.Cancellation.CancellationRequest != nil && it.Cancellation.CancellationRequest.Requester == "BUYER" {
					cancellations++
				}
			}
		}
		if page.NextToken == "" {
			break
		}
		q.PaginationToken = page.NextToken
	}
	if pages < 3 || cancellations != len(sb.BuyerEvents(seller.ID)) {
		t.Fatalf("%d pages, %d orders, %d cancellation requests; sandbox has %d", pages, orders, cancellations, len(sb.BuyerEvents(seller.ID)))
	}
}

// A next page is asked with the token and the first page's filters, to the
// second (the model's SearchOrdersResponse.pagination).
func TestSearchOrdersQueryValues(t *testing.T) {
	after := time.Date(2026, 11, 13, 12, 0, 0, 987_000_000, time.FixedZone("CET", 3600))
	q := spapi.SearchOrdersQuery{LastUpdatedAfter: after, MarketplaceIDs: []string{"A13V1IB3VIYZZH", "A1PA6795UKMFR9"}}
	first, err := q.Values()
	if err != nil {
		t.Fatal(err)
	}
	q.PaginationToken = "tok"
	next, err := q.Values()
	if err != nil {
		t.Fatal(err)
	}
	want := "includedData=BUYER%2CCANCELLATION&lastUpdatedAfter=2026-11-13T11%3A00%3A00Z&marketplaceIds=A13V1IB3VIYZZH%2CA1PA6795UKMFR9&maxResultsPerPage=100"
	if first.Encode() != want || next.Encode() != want+"&paginationToken=tok" {
		t.Fatalf("first %s\nnext  %s", first.Encode(), next.Encode())
	}
	for _, bad := range []spapi.SearchOrdersQuery{{MarketplaceIDs: []string{"X"}, PaginationToken: "tok"}, {LastUpdatedAfter: after}} {
		if _, err := bad.Values(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestSearchOrdersErrors(t *testing.T) {
	cases := []struct {
		name   string
		fault  func(sb *sandbox.Server, id string)
		q      func(q *spapi.SearchOrdersQuery)
		is     error
		status int
	}{
		{"429", func(sb *sandbox.Server, id string) { sb.InjectFault(id, sandbox.Fault{Kind: "429", Count: 1}) }, nil, spapi.ErrThrottled, 429},
		{"500", func(sb *sandbox.Server, id string) { sb.InjectFault(id, sandbox.Fault{Kind: "500", Count: 1}) }, nil, spapi.ErrServer, 500},
		{"503", func(sb *sandbox.Server, id string) { sb.InjectFault(id, sandbox.Fault{Kind: "503", Count: 1}) }, nil, spapi.ErrServer, 503},
		{"bad marketplace", nil, func(q *spapi.SearchOrdersQuery) { q.MarketplaceIDs = []string{"ATVPDKIKX0DER"} }, spapi.ErrInvalidInput, 400},
		{"stale page token", nil, func(q *spapi.SearchOrdersQuery) { q.PaginationToken = "nope" }, spapi.ErrInvalidInput, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sb, url, tokens := sellerTokens(t)
			seller := sb.Sellers()[0]
			if c.fault != nil {
				c.fault(sb, seller.ID)
			}
			q := spapi.SearchOrdersQuery{LastUpdatedAfter: t0.Add(-time.Hour), MarketplaceIDs: seller.MarketplaceIDs}
			if c.q != nil {
				c.q(&q)
			}
			_, err := spapi.New().SearchOrders(context.Background(), url, tokens, q)
			var e *spapi.Error
			if !errors.Is(err, c.is) || !errors.As(err, &e) || e.Status != c.status || len(e.Errors) == 0 {
				t.Fatalf("err = %v, want %v with status %d", err, c.is, c.status)
			}
			if spapi.Transient(err) != (c.status >= 429 && c.status != 400) {
				t.Fatalf("Transient(%v) = %v", err, spapi.Transient(err))
			}
		})
	}
	t.Run("network", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		_, err := spapi.New().SearchOrders(context.Background(), srv.URL, staticTokens{}, spapi.SearchOrdersQuery{LastUpdatedAfter: t0, PaginationToken: "secret-ish", MarketplaceIDs: []string{"X"}})
		if !spapi.Transient(err) || strings.Contains(err.Error(), "secret-ish") {
			t.Fatalf("network error %v: want transient, without the query string", err)
		}
	})
}

// An expired access token is refreshed once and the call retried; a second
// 403 is returned.
func TestExpiredTokenRefreshedOnce(t *testing.T) {
	sb, url, tokens := sellerTokens(t)
	seller := sb.Sellers()[0]
	if _, err := tokens.Token(); err != nil {
		t.Fatal(err)
	}
	sb.ExpireAccessTokens(seller.ID)
	q := spapi.SearchOrdersQuery{LastUpdatedAfter: t0.Add(-time.Hour), MarketplaceIDs: seller.MarketplaceIDs}
	if _, err := spapi.New().SearchOrders(context.Background(), url, tokens, q); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	var seen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if r.Header.Get("x-amz-access-token") != "tok" || r.Header.Get("user-agent") != spapi.UserAgent || r.Header.Get("Authorization") != "" {
			t.Errorf("headers %v", r.Header)
		}
		w.WriteHeader(403)
		w.Write([]byte(`{"errors":[{"code":"Unauthorized","message":"Access to requested resource is denied.","details":"The access token you provided has expired."}]}`))
	}))
	defer srv.Close()
	_, err := spapi.New().SearchOrders(context.Background(), srv.URL, staticTokens{}, q)
	var e *spapi.Error
	if !errors.As(err, &e) || !e.Expired() || !errors.Is(err, spapi.ErrUnauthorized) || seen.Load() != 2 {
		t.Fatalf("err %v after %d calls, want the expired 403 after exactly 2", err, seen.Load())
	}
}

type staticTokens struct{}

func (staticTokens) Token() (*oauth2.Token, error) { return &oauth2.Token{AccessToken: "tok"}, nil }
func (staticTokens) Invalidate()                   {}

func TestEndpoint(t *testing.T) {
	for _, c := range []struct{ override, region, want string }{
		{"", "eu", "https://sellingpartnerapi-eu.amazon.com"},
		{"", "NA", "https://sellingpartnerapi-na.amazon.com"},
		{"http://127.0.0.1:4580/", "eu", "http://127.0.0.1:4580"},
	} {
		if got, err := spapi.Endpoint(c.override, c.region); err != nil || got != c.want {
			t.Errorf("Endpoint(%q, %q) = %q, %v", c.override, c.region, got, err)
		}
	}
	if _, err := spapi.Endpoint("", "mars"); err == nil {
		t.Error("unknown region accepted")
	}
}
