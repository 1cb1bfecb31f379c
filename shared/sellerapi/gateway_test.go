package sellerapi_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// secrets is the credential store: the tenant's secret is stale until the
// store is told to forget it (a reconnect wrote a new one to Vault).
type secrets struct {
	mu          sync.Mutex
	app         marketplace.AppCredentials
	cached      marketplace.TenantCredentials
	vault       marketplace.TenantCredentials
	forgotten   int
	forgotApp   int
	writtenBack []secret.Value
}

func (s *secrets) AppFor(context.Context, marketplace.AppSource) (marketplace.AppCredentials, error) {
	return s.app, nil
}

func (s *secrets) Tenant(context.Context, string) (marketplace.TenantCredentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cached, nil
}

func (s *secrets) UpdateRefreshToken(_ context.Context, _ string, _ marketplace.TenantCredentials, tok secret.Value) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writtenBack = append(s.writtenBack, tok)
	return 2, nil
}

func (s *secrets) ForgetApp() { s.mu.Lock(); s.forgotApp++; s.mu.Unlock() }

func (s *secrets) ForgetTenant(string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgotten++
	s.cached = s.vault
}

// budget grants what the test says and records what it was told.
type budget struct {
	grant      marketplace.Grant
	throttleAt time.Time
	calls      []string
}

func (b *budget) TakeToken(_ context.Context, _, op string, plan marketplace.RatePlan) (marketplace.Grant, error) {
	b.calls = append(b.calls, "take "+op)
	g := b.grant
	g.Plan = plan
	return g, nil
}

func (b *budget) RecordThrottle(_ context.Context, _, op string) (time.Time, error) {
	b.calls = append(b.calls, "throttle "+op)
	return b.throttleAt, nil
}

func (b *budget) RecordSuccess(_ context.Context, _, op string, rate float64) error {
	b.calls = append(b.calls, "success "+op)
	return nil
}

type counting struct{ n *atomic.Int64 }

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestGatewayProtocol: every call goes budget, cached token, call; an empty
// budget sends nothing, a 429 records the back-off, a rate Amazon announces
// is recorded, a refused refresh token is retried once with Vault's
// current secret, and a warm call asks LWA for nothing.
func TestGatewayProtocol(t *testing.T) {
	cfg := sandbox.DefaultConfig()
	sb, url := sandboxtest.Start(t, cfg)
	seller := sandbox.SellerID(1)
	rt, err := sb.IssueRefreshToken(seller)
	if err != nil {
		t.Fatal(err)
	}
	good := marketplace.TenantCredentials{RefreshToken: secret.Value(rt), SellerID: seller, Region: "eu"}
	app := marketplace.AppCredentials{ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret), Region: "eu"}
	acct := marketplace.SellerAccount{TenantID: "t1", ConnectionID: "c1", Region: "eu", SellingPartnerID: seller}
	plan := marketplace.RatePlan{Rate: 1, Burst: 5}
	const op = "someOperation"
	throttleAt := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

	type result struct {
		called int
		rate   float64
		err    error
	}
	cases := []struct {
		name      string
		cached    marketplace.TenantCredentials // what the cache holds first
		grant     marketplace.Grant
		f         func(calls int) (float64, error)
		check     func(t *testing.T, r result, b *budget, s *secrets)
		lwaCalls  int64 // token requests for two calls in a row
		wantCalls []string
	}{
		{name: "empty budget: nothing sent", cached: good, grant: marketplace.Grant{OK: false, RetryAt: throttleAt},
			f: func(int) (float64, error) { return 0, nil }, lwaCalls: 1,
			wantCalls: []string{"take " + op, "take " + op},
			check: func(t *testing.T, r result, _ *budget, _ *secrets) {
				var nb *sellerapi.NoBudgetError
				if r.called != 0 || !errors.As(r.err, &nb) || !nb.RetryAt.Equal(throttleAt) {
					t.Fatalf("called %d, err %v; want a NoBudgetError until %v and no call", r.called, r.err, throttleAt)
				}
			}},
		{name: "429 records the back-off", cached: good, grant: marketplace.Grant{OK: true},
			f: func(int) (float64, error) { return 0, spapi.ErrThrottled }, lwaCalls: 1,
			wantCalls: []string{"take " + op, "throttle " + op, "take " + op, "throttle " + op},
			check: func(t *testing.T, r result, _ *budget, _ *secrets) {
				var th *sellerapi.ThrottledError
				if !errors.As(r.err, &th) || !th.RetryAt.Equal(throttleAt) || !errors.Is(r.err, spapi.ErrThrottled) {
					t.Fatalf("err %v; want a ThrottledError until %v wrapping ErrThrottled", r.err, throttleAt)
				}
			}},
		{name: "announced rate recorded", cached: good, grant: marketplace.Grant{OK: true},
			f: func(int) (float64, error) { return 0.5, nil }, lwaCalls: 1,
			wantCalls: []string{"take " + op, "success " + op, "take " + op, "success " + op},
			check: func(t *testing.T, r result, _ *budget, _ *secrets) {
				if r.err != nil || r.called != 2 {
					t.Fatalf("called %d, err %v", r.called, r.err)
				}
			}},
		{name: "refused refresh token: Vault's current secret", cached: marketplace.TenantCredentials{RefreshToken: "Atzr|revoked", SellerID: seller, Region: "eu"},
			grant: marketplace.Grant{OK: true}, f: func(int) (float64, error) { return 0, nil }, lwaCalls: 2,
			wantCalls: []string{"take " + op, "take " + op},
			check: func(t *testing.T, r result, _ *budget, s *secrets) {
				if r.err != nil || r.called != 2 || s.forgotten != 1 {
					t.Fatalf("called %d, err %v, forgotten %d; want both calls on the fresh secret, read once", r.called, r.err, s.forgotten)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var lwaCalls atomic.Int64
			s := &secrets{app: app, cached: c.cached, vault: good}
			b := &budget{grant: c.grant, throttleAt: throttleAt}
			gw := sellerapi.New(s, lwa.New(url+"/auth/o2/token", lwa.WithHTTPClient(&http.Client{Transport: counting{&lwaCalls}, Timeout: 5 * time.Second})),
				spapi.New(), b, sellerapi.WithEndpoint(url))
			var r result
			for range 2 {
				r.err = gw.Call(context.Background(), acct, op, plan, func(endpoint string, tokens spapi.Tokens) (float64, error) {
					if endpoint != url {
						t.Errorf("endpoint %q, want the override %q", endpoint, url)
					}
					if tok, err := tokens.Token(); err != nil || tok.AccessToken == "" {
						t.Errorf("token %v, %v", tok, err)
					}
					r.called++
					return c.f(r.called)
				})
			}
			c.check(t, r, b, s)
			if got := lwaCalls.Load(); got != c.lwaCalls {
				t.Errorf("%d LWA requests for two calls, want %d (the access token cached)", got, c.lwaCalls)
			}
			if len(b.calls) != len(c.wantCalls) {
				t.Fatalf("budget told %v, want %v", b.calls, c.wantCalls)
			}
			for i := range b.calls {
				if b.calls[i] != c.wantCalls[i] {
					t.Fatalf("budget told %v, want %v", b.calls, c.wantCalls)
				}
			}
		})
	}

	// A seller whose refresh token is refused and whose Vault secret is the
	// same ends in re-auth, before any rate token is spent.
	s := &secrets{app: app, cached: marketplace.TenantCredentials{RefreshToken: "Atzr|revoked", Region: "eu"}}
	s.vault = s.cached
	b := &budget{grant: marketplace.Grant{OK: true}}
	gw := sellerapi.New(s, lwa.New(url+"/auth/o2/token"), spapi.New(), b, sellerapi.WithEndpoint(url))
	err = gw.Call(context.Background(), acct, op, plan, func(string, spapi.Tokens) (float64, error) { return 0, nil })
	if !sellerapi.IsReauth(err) || len(b.calls) != 0 {
		t.Fatalf("err %v, budget %v; want re-auth and no rate token spent", err, b.calls)
	}
}
