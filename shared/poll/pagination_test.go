package poll_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
)

// recording keeps the query of every searchOrders request, in order.
type recording struct {
	next http.RoundTripper
	mu   sync.Mutex
	qs   []url.Values
}

func (r *recording) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/orders/2026-01-01/orders" {
		r.mu.Lock()
		r.qs = append(r.qs, req.URL.Query())
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

func (r *recording) take() []url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	qs := r.qs
	r.qs = nil
	return qs
}

// A first sync of 30 days at 50 orders a page (more than 5 pages), through
// the real poller against the strict sandbox: a 429 in the middle ends the
// poll with the token and its filters stored, and the SQS retry resumes the
// window with them; an access token expires in the middle (refreshed, the
// page retried); a server error ends another poll mid-window, and when the
// retry comes 25 hours later the stored pagination token has expired, so
// the window restarts and completes. Every request is valid per Amazon's
// model (the sandbox checks each, sandboxtest fails the test otherwise),
// every next page carries its window's filters, and the tickets match the
// sandbox's ground truth.
func TestLongWindowFollowsThePaginationContract(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.Lookback = 30 * 24 * time.Hour
	s := e.connect(2)
	claim(t, e, s)
	rec := &recording{next: counting{&e.apiCalls, &e.beforeAPI}}
	sp := spapiClient(&http.Client{Transport: rec, Timeout: 5 * time.Second})
	src := poll.NewAmazonSource(e.gateway(credcache.New(e.Vault, credcache.WithClock(e.Clock.Now)), sp), sp,
		poll.WithAmazonConfig(poll.AmazonConfig{PageSize: 50}), poll.WithClock(e.Clock.Now))

	p := e.poller(src)
	ctx := context.Background()
	start := t0.Add(-30 * 24 * time.Hour)

	// Poll 1: pages 1-2, then a 429 on page 3.
	fault := func(n int64) {
		if n == 3 {
			e.SB.InjectFault(s.ID, sandbox.Fault{Kind: "429", Count: 1})
		}
	}
	e.beforeAPI.Store(&fault)
	res, err := p.PollResult(ctx, message(s))
	var throttled *sellerapi.ThrottledError
	if !errors.As(err, &throttled) || res.Pages != 2 {
		t.Fatalf("poll 1: %+v, %v; want 2 pages then a 429", res, err)
	}
	mid := e.pageFilters(s)
	if mid.token == "" || mid.windowStart == nil || !mid.windowStart.Equal(start) || !slices.Equal(mid.marketplaces, s.Marketplaces) {
		t.Fatalf("after the 429: stored token %q, window start %v, marketplaces %v; want the window's filters (%v, %v)",
			mid.token, mid.windowStart, mid.marketplaces, start, s.Marketplaces)
	}
	window := rec.take()

	// Poll 2 (SQS's retry, once the back-off is over and the emptied budget
	// has refilled): the stored token with the stored filters; the access
	// token has expired (403, refreshed, the page asked again), and a 500
	// ends the poll on its fourth page.
	e.Clock.Advance(time.Hour)
	calls := e.apiCalls.Load()
	fault = func(n int64) {
		switch n - calls {
		case 1:
			e.SB.ExpireAccessTokens(s.ID)
		case 5: // the fourth page (call 2 was the expired token's retry)
			e.SB.InjectFault(s.ID, sandbox.Fault{Kind: "500", Count: 1})
		}
	}
	e.beforeAPI.Store(&fault)
	res, err = p.PollResult(ctx, message(s))
	if err == nil || res.Pages != 3 {
		t.Fatalf("poll 2: %+v, %v; want 3 pages then a 500", res, err)
	}
	window = append(window, rec.take()...)
	if n := len(window); n != 8 { // 2 pages, the 429; a page, the expired token and its retry, a page, the 500
		t.Fatalf("%d searchOrders requests in polls 1 and 2, want 8", n)
	}
	e.checkWindow(window, start, s.Marketplaces, false)

	// Poll 3, 25 hours later: the token has expired (400), the window
	// restarts from the same start and completes.
	e.beforeAPI.Store(nil)
	e.Clock.Advance(25 * time.Hour)
	res, err = p.PollResult(ctx, message(s))
	if err != nil || res.Cursor == nil {
		t.Fatalf("poll 3: %+v, %v", res, err)
	}
	// The stored token first (once more after the access token, expired
	// again by 25 hours, is refreshed), refused; then the whole window anew.
	restart := rec.take()
	i0 := slices.IndexFunc(restart, func(q url.Values) bool { return q.Get("paginationToken") == "" })
	if i0 < 1 || restart[0].Get("paginationToken") != mid.token && restart[0].Get("paginationToken") == "" {
		t.Fatalf("poll 3 did not start with the stored token then restart the window: first token-less request at %d", i0)
	}
	e.checkWindow(restart[:i0], start, s.Marketplaces, true)
	e.checkWindow(restart[i0:], start, s.Marketplaces, false)
	if pages := len(restart) - i0; pages < 5 || res.Pages != pages {
		t.Fatalf("the restarted window has %d pages (poll counted %d), want at least 5", pages, res.Pages)
	}

	st := e.checkMatches(s, start)
	if st.Token != nil || st.LastError != "" {
		t.Fatalf("after the window: %+v", st)
	}
	if f := e.pageFilters(s); f.windowStart != nil || f.marketplaces != nil {
		t.Fatalf("filters kept after the window ended: %+v", f)
	}
	if v := e.SB.TakeViolations(); len(v) != 0 {
		t.Fatalf("requests outside Amazon's contract: %v", v)
	}
	if stats := e.SB.Stats(s.ID); stats.Throttled+stats.FaultsServed < 2 || e.SB.Checked() < len(window)+len(restart) {
		t.Fatalf("sandbox stats %+v, %d requests checked", stats, e.SB.Checked())
	}
}

// checkWindow asserts that the requests of one window all carry the same
// filters (lastUpdatedAfter = start to the second, the marketplaces) and
// that every request but the first carries a token (every one when
// resumed).
func (e *env) checkWindow(qs []url.Values, start time.Time, marketplaces []string, resumed bool) {
	e.T.Helper()
	for i, q := range qs {
		if q.Get("lastUpdatedAfter") != start.UTC().Format(time.RFC3339) || q.Get("marketplaceIds") != strings.Join(marketplaces, ",") ||
			q.Get("includedData") != "BUYER,CANCELLATION" || q.Get("maxResultsPerPage") != "50" {
			e.T.Errorf("request %d of the window: %v", i, q)
		}
		if (i == 0 && !resumed) != (q.Get("paginationToken") == "") {
			e.T.Errorf("request %d of the window: token %q", i, q.Get("paginationToken"))
		}
	}
}

type pageFilters struct {
	token        string
	windowStart  *time.Time
	marketplaces []string
}

func (e *env) pageFilters(s seller) pageFilters {
	e.T.Helper()
	var f pageFilters
	var tok *string
	if err := e.Pool.QueryRow(context.Background(), `SELECT "paginationToken", "pageWindowStart", "pageMarketplaceIds" FROM keybuzz_amazon."SyncState" WHERE "connectionId" = $1`,
		s.ConnectionID).Scan(&tok, &f.windowStart, &f.marketplaces); err != nil {
		e.T.Fatal(err)
	}
	if tok != nil {
		f.token = *tok
	}
	return f
}
