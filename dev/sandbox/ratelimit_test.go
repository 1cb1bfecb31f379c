package sandbox_test

import (
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

// TestRateLimiter drains the bucket at every step of a driven clock: the
// admitted calls are exactly burst + floor(rate*t), every other call gets 429.
func TestRateLimiter(t *testing.T) {
	tests := []struct {
		name     string
		op       string
		setPlan  bool
		rate     float64
		burst    int
		step     time.Duration
		steps    int
		rateHead string
	}{
		{"fast getOrder plan", sandbox.OpGetOrder, true, 1, 5, 700 * time.Millisecond, 10, "1"},
		{"default searchOrders plan over 30 min", sandbox.OpSearchOrders, false, 0.0056, 20, time.Minute, 30, "0.0056"},
		{"default getOrder plan", sandbox.OpGetOrder, false, 0.5, 30, 3 * time.Second, 20, "0.5"},
		{"default getMarketplaceParticipations plan", sandbox.OpGetMarketplaceParticipations, false, 0.016, 15, 50 * time.Second, 12, "0.016"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, everyRateHeader)
			s1 := seller1()
			_, access := e.authorize(t, s1)
			if tt.setPlan {
				e.srv.SetRatePlan(s1, tt.op, tt.rate, tt.burst)
			}
			path := "/orders/2026-01-01/orders/000-0000000-0000000"
			switch tt.op {
			case sandbox.OpGetMarketplaceParticipations:
				path = "/sellers/v1/marketplaceParticipations"
			case sandbox.OpSearchOrders:
				path = "/orders/2026-01-01/orders?" + url.Values{
					"lastUpdatedAfter": {t0.Add(-time.Hour).Format(time.RFC3339)},
					"marketplaceIds":   {sandbox.MarketplaceFR},
				}.Encode()
			}
			admitted, throttled := 0, 0
			drain := func() {
				for {
					a := e.get(t, path, access)
					if a.status == 429 {
						throttled++
						if _, ok := a.header["X-Amzn-Ratelimit-Limit"]; ok {
							t.Fatalf("429 carries x-amzn-RateLimit-Limit")
						}
						return
					}
					if got := a.header.Get("x-amzn-RateLimit-Limit"); got != tt.rateHead {
						t.Fatalf("status %d, x-amzn-RateLimit-Limit %q, want %q", a.status, got, tt.rateHead)
					}
					admitted++
					if admitted > 10_000 {
						t.Fatal("never throttled")
					}
				}
			}
			drain()
			if admitted != tt.burst {
				t.Fatalf("first burst admitted %d, want %d", admitted, tt.burst)
			}
			for i := 0; i < tt.steps; i++ {
				e.clock.Advance(tt.step)
				drain()
			}
			elapsed := time.Duration(tt.steps) * tt.step
			want := tt.burst + int(math.Floor(tt.rate*elapsed.Seconds()))
			if admitted != want {
				t.Errorf("admitted %d over %s, want %d", admitted, elapsed, want)
			}
			if st := e.srv.Stats(s1); st.Throttled != throttled || st.Calls[tt.op] != admitted+throttled {
				t.Errorf("stats %+v, admitted %d throttled %d", st, admitted, throttled)
			}
		})
	}
}

// TestRateLimiterRefillCapsAtBurst: a long idle period refills to burst, not beyond.
func TestRateLimiterRefillCapsAtBurst(t *testing.T) {
	e := start(t)
	s1 := seller1()
	_, access := e.authorize(t, s1)
	e.srv.SetRatePlan(s1, sandbox.OpGetOrder, 1, 3)
	e.clock.Advance(59 * time.Minute)
	n := 0
	for e.get(t, "/orders/2026-01-01/orders/x", access).status == 404 {
		n++
	}
	if n != 3 {
		t.Errorf("admitted %d after idling, want 3", n)
	}
	// buckets are per seller
	_, other := e.authorize(t, sandbox.SellerID(2))
	if a := e.get(t, "/orders/2026-01-01/orders/x", other); a.status != 404 {
		t.Errorf("other seller throttled: %d", a.status)
	}
}
