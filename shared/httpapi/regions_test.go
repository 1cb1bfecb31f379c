package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// Connect in each region with the connector's real hosts (no endpoint
// overrides; sandbox.HostTransport takes Amazon's hosts to the sandbox,
// which answers as the host named and refuses a seller of another
// region): the consent URL is on the Seller Central of the app's
// marketplace, the Sellers API is called on the region's SP-API host (a
// wrong host would be answered 403 and leave no marketplaces), Vault holds
// the AWS region and status says "EU", "NA" or "FE".
func TestConnectInEachRegion(t *testing.T) {
	for _, c := range []struct {
		region, appMarketplace, consentHost, seller, vaultRegion, status string
		marketplaces                                                     []string
	}{
		{"eu", "", "sellercentral-europe.amazon.com", sandbox.SellerID(1), "eu-west-1", "EU", nil},
		{"na", "", "sellercentral.amazon.com", sandbox.RegionSellerID("na", 1), "us-east-1", "NA", []string{sandbox.MarketplaceUS, sandbox.MarketplaceCA}},
		{"fe", "", "sellercentral.amazon.co.jp", sandbox.RegionSellerID("fe", 1), "us-west-2", "FE", []string{sandbox.MarketplaceJP, sandbox.MarketplaceAU}},
		{"fe", sandbox.MarketplaceAU, "sellercentral.amazon.com.au", sandbox.RegionSellerID("fe", 1), "us-west-2", "FE", []string{sandbox.MarketplaceJP, sandbox.MarketplaceAU}},
	} {
		t.Run(c.status+"-"+c.consentHost, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackOption{})
			ctx := context.Background()
			sbCfg := sandbox.DefaultConfig()
			if err := s.secrets.PutApp(ctx, marketplace.AppCredentials{
				ClientID: sbCfg.ClientID, ClientSecret: secret.Value(sbCfg.ClientSecret), RedirectURI: sbCfg.RedirectURIs[0],
				ApplicationID: sbCfg.ApplicationID, Region: c.region, MarketplaceID: c.appMarketplace, Draft: true,
			}); err != nil {
				t.Fatal(err)
			}
			hc := &http.Client{Transport: sandbox.HostTransport(s.sbURL, nil), Timeout: 5 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			s.api = regionalAPI(t, s, hc)
			s.server = httptest.NewServer(s.api)
			t.Cleanup(s.server.Close)

			tenant := testenv.ID("tenant")
			authURL := s.start(tenant)
			if authURL.Scheme != "https" || authURL.Host != c.consentHost {
				t.Fatalf("consent URL %s, want on %s", authURL, c.consentHost)
			}
			q := authURL.Query()
			q.Set("sandbox_auto_approve", "true")
			q.Set("sandbox_seller", c.seller)
			authURL.RawQuery = q.Encode()
			resp, err := hc.Get(authURL.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, err := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || err != nil {
				t.Fatalf("consent on %s: %d", c.consentHost, resp.StatusCode)
			}
			if a := s.callback(loc.Query()); a.status != http.StatusOK {
				t.Fatalf("callback: %d %s", a.status, a.body)
			}
			if st := s.status(tenant); st["status"] != "CONNECTED" || st["region"] != c.status {
				t.Errorf("status %v, want CONNECTED in %s", st, c.status)
			}
			creds, err := s.secrets.Tenant(ctx, tenant)
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			var path string
			s.pool.QueryRow(ctx, `SELECT "vaultPath" FROM "MarketplaceConnection" WHERE "tenantId" = $1`, tenant).Scan(&path)
			sec, err := testenv.Vault(t).KVv2("secret").Get(ctx, strings.TrimPrefix(path, "secret/"))
			if err != nil {
				t.Fatalf("read %s: %v", path, err)
			}
			raw = sec.Data
			if raw["region"] != c.vaultRegion || creds.SellerID != c.seller {
				t.Errorf("Vault region %v seller %s, want %s %s", raw["region"], creds.SellerID, c.vaultRegion, c.seller)
			}
			want := c.marketplaces
			if want == nil {
				want = s.sandbox.Sellers()[0].MarketplaceIDs
			}
			got := slices.Sorted(slices.Values(creds.MarketplaceIDs)) // the app's marketplace comes first
			if want = slices.Sorted(slices.Values(want)); !slices.Equal(got, want) {
				t.Errorf("marketplaces %v, want the Sellers API's %v (read on the region's host)", creds.MarketplaceIDs, want)
			}
		})
	}
}

// regionalAPI wires the Connect routes as the functions do in AWS: no
// endpoint overrides, Amazon's hosts by region, through hc.
func regionalAPI(t *testing.T, s *stack, hc *http.Client) *http.ServeMux {
	log := logging.New(&suiteLogs, "debug").With("test", t.Name())
	store := postgres.New(s.pool, postgres.WithClock(s.clock.Now))
	cached := credcache.New(s.secrets, credcache.WithClock(s.clock.Now))
	lwaClient := lwa.New("https://api.amazon.com/auth/o2/token", lwa.WithHTTPClient(hc))
	gw := sellerapi.New(cached, lwaClient, spapi.New(spapi.WithHTTPClient(hc)), store, sellerapi.WithLogger(log))
	verifier, err := auth.NewVerifier(context.Background(), config.Config{
		JWTHS256Secret: jwtSecret, JWTIssuer: jwtIssuer, JWTAudience: jwtAudience, TenantClaim: "tenantId",
	})
	if err != nil {
		t.Fatal(err)
	}
	return httpapi.Mux(
		httpapi.StartRoute(connect.NewStart(store, cached, connect.StartConfig{Now: s.clock.Now}), verifier, log),
		httpapi.CallbackRoute(connect.NewCallback(store, cached, lwaClient, connect.CallbackConfig{Participations: gw, Accounts: gw,
			Unsubscriber: s.unsubscribed, Now: s.clock.Now, Log: log}), log, ""),
		httpapi.LoginRoute(connect.NewLogin(store, cached, connect.LoginConfig{Now: s.clock.Now}), log, ""),
		httpapi.StatusRoute(connect.NewStatus(store, connect.StatusConfig{Now: s.clock.Now, Log: log}), verifier, log),
		httpapi.DisconnectRoute(connect.NewDisconnect(store, cached, connect.DisconnectConfig{Unsubscriber: s.unsubscribed, Log: log}), verifier, log))
}
