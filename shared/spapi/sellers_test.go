package spapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// connectAccessToken runs the Connect flow's first half against the
// sandbox: auto-approved consent, then the LWA code exchange. It returns the
// exchanged access token, as the callback holds it.
func connectAccessToken(t *testing.T, base string, cfg sandbox.Config, sellerID string) secret.Value {
	t.Helper()
	q := url.Values{"application_id": {cfg.ApplicationID}, "state": {"st"}, "version": {"beta"},
		"sandbox_auto_approve": {"true"}, "sandbox_seller": {sellerID}}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(base + "/apps/authorize/consent?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("consent: %d %v", resp.StatusCode, err)
	}
	app := lwa.App{ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret)}
	tok, err := lwa.New(base+"/auth/o2/token").Exchange(context.Background(), app, secret.Value(loc.Query().Get("spapi_oauth_code")))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func TestMarketplaceParticipations(t *testing.T) {
	cases := []struct {
		name   string
		seller int // 1-based
		// setup returns the tokens to call with
		setup func(t *testing.T, sb *sandbox.Server, base string, cfg sandbox.Config, id string) spapi.Tokens
		is    error // nil: success
		// status of the *Error; requests the client must have sent
		status, requests int
	}{
		{"connect flow, seller 1", 1, static, nil, 0, 1},
		{"connect flow, seller 2", 2, static, nil, 0, 1},
		{"connect flow, seller 3", 3, static, nil, 0, 1},
		{"refreshing source", 1, refreshing, nil, 0, 1},
		{"expired token refreshed once", 1, func(t *testing.T, sb *sandbox.Server, base string, cfg sandbox.Config, id string) spapi.Tokens {
			tok := refreshing(t, sb, base, cfg, id)
			if _, err := tok.Token(); err != nil {
				t.Fatal(err)
			}
			sb.ExpireAccessTokens(id)
			return tok
		}, nil, 0, 2},
		{"expired static token not retried", 1, func(t *testing.T, sb *sandbox.Server, base string, cfg sandbox.Config, id string) spapi.Tokens {
			tok := static(t, sb, base, cfg, id)
			sb.ExpireAccessTokens(id)
			return tok
		}, spapi.ErrUnauthorized, 403, 1},
		{"invalid token", 1, func(*testing.T, *sandbox.Server, string, sandbox.Config, string) spapi.Tokens {
			return spapi.StaticToken("Atza|garbage")
		}, spapi.ErrUnauthorized, 403, 1},
		{"429", 1, faulted("429"), spapi.ErrThrottled, 429, 1},
		{"500", 1, faulted("500"), spapi.ErrServer, 500, 1},
		{"503", 1, faulted("503"), spapi.ErrServer, 503, 1},
		{"quota exhausted", 1, func(t *testing.T, sb *sandbox.Server, base string, cfg sandbox.Config, id string) spapi.Tokens {
			sb.SetRatePlan(id, sandbox.OpGetMarketplaceParticipations, 0, 1)
			tok := static(t, sb, base, cfg, id)
			if _, err := spapi.New().MarketplaceParticipations(context.Background(), base, tok); err != nil {
				t.Fatal(err)
			}
			return tok
		}, spapi.ErrThrottled, 429, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := sandbox.DefaultConfig()
			cfg.Clock = sandbox.NewManualClock(t0)
			sb, base := sandboxtest.Start(t, cfg)
			seller := sb.Sellers()[c.seller-1]
			tokens := c.setup(t, sb, base, cfg, seller.ID)

			var rt countingTransport
			got, err := spapi.New(spapi.WithHTTPClient(&http.Client{Transport: &rt})).MarketplaceParticipations(context.Background(), base, tokens)

			if n := rt.n.Load(); n != int64(c.requests) {
				t.Errorf("client sent %d requests, want %d", n, c.requests)
			}
			if c.is != nil {
				var e *spapi.Error
				if !errors.Is(err, c.is) || !errors.As(err, &e) || e.Status != c.status || len(e.Errors) == 0 || e.RequestID == "" {
					t.Fatalf("err = %v, want %v with status %d", err, c.is, c.status)
				}
				if got != nil {
					t.Errorf("participations %v with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, p := range got {
				ids = append(ids, p.MarketplaceID)
				if !p.Participating || p.SuspendedListings || len(p.CountryCode) != 2 || p.StoreName != seller.Name {
					t.Errorf("participation %+v", p)
				}
			}
			if !slices.Equal(ids, seller.MarketplaceIDs) {
				t.Errorf("marketplaces %v, want %v", ids, seller.MarketplaceIDs)
			}
			if got[0].MarketplaceID != sandbox.MarketplaceFR || got[0].CountryCode != "FR" {
				t.Errorf("first participation %+v, want Amazon.fr", got[0])
			}
		})
	}
}

// The client sends what Amazon expects and keeps non-participating
// marketplaces, flagged.
func TestMarketplaceParticipationsWire(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/sellers/v1/marketplaceParticipations" || r.URL.RawQuery != "" ||
			r.Header.Get("x-amz-access-token") != "Atza|tok" || r.Header.Get("user-agent") != spapi.UserAgent || r.Header.Get("Authorization") != "" {
			t.Errorf("request %s %s %v", r.Method, r.URL, r.Header)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"payload":[
			{"marketplace":{"id":"A13V1IB3VIYZZH","countryCode":"FR","name":"Amazon.fr","defaultCurrencyCode":"EUR","defaultLanguageCode":"fr_FR","domainName":"www.amazon.fr"},"participation":{"isParticipating":true,"hasSuspendedListings":true},"storeName":"Shop"},
			{"marketplace":{"id":"A1PA6795UKMFR9","countryCode":"DE","name":"Amazon.de","defaultCurrencyCode":"EUR","defaultLanguageCode":"de_DE","domainName":"www.amazon.de"},"participation":{"isParticipating":false,"hasSuspendedListings":false},"storeName":"Shop"}]}`))
	}))
	defer srv.Close()
	got, err := spapi.New().MarketplaceParticipations(context.Background(), srv.URL+"/", spapi.StaticToken("Atza|tok"))
	want := []spapi.Participation{
		{MarketplaceID: "A13V1IB3VIYZZH", CountryCode: "FR", StoreName: "Shop", Participating: true, SuspendedListings: true},
		{MarketplaceID: "A1PA6795UKMFR9", CountryCode: "DE", StoreName: "Shop"},
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	if _, err := spapi.New().MarketplaceParticipations(context.Background(), srv.URL, spapi.StaticToken("")); err == nil {
		t.Error("empty access token accepted")
	}
}

type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func static(t *testing.T, _ *sandbox.Server, base string, cfg sandbox.Config, id string) spapi.Tokens {
	return spapi.StaticToken(connectAccessToken(t, base, cfg, id))
}

func refreshing(t *testing.T, sb *sandbox.Server, base string, cfg sandbox.Config, id string) spapi.Tokens {
	rt, err := sb.IssueRefreshToken(id)
	if err != nil {
		t.Fatal(err)
	}
	app := lwa.App{ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret)}
	src := lwa.New(base+"/auth/o2/token").NewRotatingSource(context.Background(), app, secret.Value(rt))
	return lwa.NewCachedSource(src)
}

func faulted(kind string) func(*testing.T, *sandbox.Server, string, sandbox.Config, string) spapi.Tokens {
	return func(t *testing.T, sb *sandbox.Server, base string, cfg sandbox.Config, id string) spapi.Tokens {
		tok := static(t, sb, base, cfg, id)
		sb.InjectFault(id, sandbox.Fault{Kind: kind, Count: 1})
		return tok
	}
}

// getAccount against the sandbox: the seller's registered business name;
// a seller who did not grant the role answers 403.
func TestAccountAgainstSandbox(t *testing.T) {
	cfg := sandbox.DefaultConfig()
	cfg.Clock = sandbox.NewManualClock(t0)
	sb, base := sandboxtest.Start(t, cfg)
	seller := sb.Sellers()[0]
	a, err := spapi.New().Account(context.Background(), base, static(t, sb, base, cfg, seller.ID))
	if err != nil {
		t.Fatal(err)
	}
	if a.BusinessName != seller.Name || a.SellingPlan != "PROFESSIONAL" || a.BusinessType == "" || len(a.Participations) != len(seller.MarketplaceIDs) || len(a.Raw) == 0 {
		t.Fatalf("account %+v", a)
	}
	sb.SetAccountAccess(seller.ID, false)
	_, err = spapi.New().Account(context.Background(), base, static(t, sb, base, cfg, seller.ID))
	var e *spapi.Error
	if !errors.Is(err, spapi.ErrUnauthorized) || !errors.As(err, &e) || e.Expired() || spapi.Transient(err) {
		t.Fatalf("denied getAccount: %v", err)
	}
	if sb.Stats(seller.ID).Calls[spapi.OpGetAccount] != 2 {
		t.Fatalf("calls %v", sb.Stats(seller.ID).Calls)
	}
}
