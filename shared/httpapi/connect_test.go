package httpapi_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
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

// The seed's Test 1: start answers an authUrl on the consent host with the
// app id, a fresh state, version=beta for a Draft app and the redirect URI.
func TestSeed1StartReturnsConsentURL(t *testing.T) {
	s := newStack(t, stackOption{})
	tenant := testenv.ID("tenant")
	a := s.do(http.MethodPost, httpapi.StartPath, token(t, tenant))
	openapicheck.ValidateResponse(t, http.MethodPost, httpapi.StartPath, a.status, a.header.Get("Content-Type"), a.body)
	if a.status != http.StatusOK {
		t.Fatalf("start: %d %s", a.status, a.body)
	}
	body := a.json(t)
	u, err := url.Parse(body["authUrl"].(string))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if got := u.Scheme + "://" + u.Host + u.Path; got != s.sbURL+"/apps/authorize/consent" {
		t.Errorf("consent URL %s", got)
	}
	def := sandbox.DefaultConfig()
	if q.Get("application_id") != def.ApplicationID || q.Get("version") != "beta" || q.Get("redirect_uri") != def.RedirectURIs[0] {
		t.Errorf("consent query %v", q)
	}
	if len(q.Get("state")) != 43 {
		t.Errorf("state %d chars, want 43 (256 bits)", len(q.Get("state")))
	}
	exp, err := time.Parse(time.RFC3339, body["expiresAt"].(string))
	if err != nil || exp.Sub(s.clock.Now()) > 15*time.Minute || exp.Sub(s.clock.Now()) < 14*time.Minute {
		t.Errorf("expiresAt %v (%v)", body["expiresAt"], err)
	}
	if status, _ := s.connectionStatus(tenant); status != "PENDING" {
		t.Errorf("connection %s, want PENDING", status)
	}
	// Only a hash of the state is stored.
	var stored string
	if err := s.pool.QueryRow(context.Background(), `SELECT "stateHash" FROM keybuzz_amazon."ConnectState" WHERE "tenantId" = $1`, tenant).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored == q.Get("state") || len(stored) != 64 {
		t.Errorf("stored state %q is not a SHA-256 of it", stored)
	}
	// A second start gives a different state.
	if again := s.start(tenant); again.Query().Get("state") == q.Get("state") {
		t.Error("two starts gave the same state")
	}
}

// The whole flow, and the seed's Test 2 (callback connects and status says so).
func TestConnectEndToEnd(t *testing.T) {
	s := newStack(t, stackOption{})
	tenant := testenv.ID("tenant")
	// KeyBuzz's frontend convention: no connection is 200 DISCONNECTED with nulls.
	if st := s.status(tenant); st["connected"] != false || st["status"] != "DISCONNECTED" || st["displayName"] != nil ||
		st["region"] != nil || st["lastSyncAt"] != nil || st["lastError"] != nil {
		t.Fatalf("status before start: %v", st)
	}
	cb := s.consent(s.start(tenant), 2)
	remember(cb.Get("spapi_oauth_code"))
	a := s.callback(cb)
	openapicheck.ValidateResponse(t, http.MethodGet, httpapi.CallbackPath, a.status, a.header.Get("Content-Type"), a.body)
	if a.status != http.StatusOK {
		t.Fatalf("callback: %d %s", a.status, a.body)
	}
	if a.header.Get("Referrer-Policy") != "no-referrer" || a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("callback headers %v", a.header)
	}
	seller := sandbox.SellerID(2)
	if b := a.json(t); b["success"] != true || b["sellingPartnerId"] != seller || b["tenantId"] != tenant {
		t.Errorf("callback body %s", a.body)
	}

	st := s.status(tenant)
	sa := s.do(http.MethodGet, httpapi.StatusPath, token(t, tenant))
	openapicheck.ValidateResponse(t, http.MethodGet, httpapi.StatusPath, sa.status, sa.header.Get("Content-Type"), sa.body)
	if st["connected"] != true || st["status"] != "CONNECTED" || st["displayName"] != s.sandbox.Sellers()[1].Name || st["region"] != "EU" || st["lastError"] != nil ||
		st["appSource"] != "external_test" || st["authorizationExpiresAt"] == nil || st["reauthReason"] != nil {
		t.Errorf("status after connect: %v", st)
	}

	// The refresh token is in Vault at the tenant's path, and only the path
	// is in the database.
	creds, err := s.secrets.Tenant(context.Background(), tenant)
	if err != nil {
		t.Fatalf("vault: %v", err)
	}
	rt := creds.RefreshToken.Reveal()
	// Every marketplace the seller sells on, as the Sellers API lists them.
	var sellerMarkets string
	for _, sl := range s.sandbox.Sellers() {
		if sl.ID == seller {
			sellerMarkets = strings.Join(sl.MarketplaceIDs, ",")
		}
	}
	if sellerMarkets == "" || !strings.Contains(sellerMarkets, ",") {
		t.Fatalf("sandbox seller 2 sells on %q; the test wants several marketplaces", sellerMarkets)
	}
	// The seed's marketplace_id is one id, the primary marketplace (Amazon.fr
	// in Europe when the seller sells there); every one is polled.
	markets := strings.Split(sellerMarkets, ",")
	primary := markets[0]
	if slices.Contains(markets, "A13V1IB3VIYZZH") {
		primary = "A13V1IB3VIYZZH"
	}
	all := creds.Marketplaces()
	if !strings.HasPrefix(rt, "Atzr|") || creds.SellerID != seller || creds.MarketplaceID != primary || creds.Region != "eu" ||
		len(all) != len(markets) || all[0] != primary {
		t.Errorf("vault secret: seller %s marketplace %s of %v region %s", creds.SellerID, creds.MarketplaceID, all, creds.Region)
	}
	for _, m := range markets {
		if !slices.Contains(all, m) {
			t.Errorf("vault secret lacks marketplace %s: %v", m, all)
		}
	}
	issued := false
	for _, v := range s.sandbox.IssuedSecrets() {
		issued = issued || v == rt
	}
	if !issued {
		t.Error("the refresh token in Vault is not one the sandbox issued")
	}
	var vaultPath, marketplaceID string
	if err := s.pool.QueryRow(context.Background(), `SELECT "vaultPath", "marketplaceId" FROM "MarketplaceConnection" WHERE "tenantId" = $1`, tenant).Scan(&vaultPath, &marketplaceID); err != nil {
		t.Fatal(err)
	}
	if vaultPath != "secret/keybuzz/tenants/"+tenant+"/amazon" || marketplaceID != primary {
		t.Errorf("vaultPath %q marketplace %q", vaultPath, marketplaceID)
	}
	scanDatabase(t, s, append(s.sandbox.IssuedSecrets(), cb.Get("state"))...)

	// Replaying the callback fails and changes nothing.
	if r := s.callback(cb); r.status != http.StatusBadRequest || r.errorCode(t) != "invalid_state" {
		t.Errorf("replay: %d %s", r.status, r.body)
	}
	if status, _ := s.connectionStatus(tenant); status != "CONNECTED" {
		t.Errorf("replay changed status to %s", status)
	}
	// Starting again keeps the tenant CONNECTED until the new consent completes.
	s.start(tenant)
	if status, _ := s.connectionStatus(tenant); status != "CONNECTED" {
		t.Errorf("restart set %s, want CONNECTED kept", status)
	}
}

func TestCallbackRedirectsToFrontend(t *testing.T) {
	s := newStack(t, stackOption{returnURL: "https://app.keybuzz.test/settings/amazon?tab=1"})
	tenant := testenv.ID("tenant")
	cb := s.consent(s.start(tenant), 1)
	remember(cb.Get("spapi_oauth_code"))
	a := s.callback(cb)
	if a.status != http.StatusSeeOther {
		t.Fatalf("callback: %d %s", a.status, a.body)
	}
	loc, _ := url.Parse(a.header.Get("Location"))
	if loc.Host != "app.keybuzz.test" || loc.Query().Get("amazon_connected") != "true" || loc.Query().Get("tenant_id") != tenant ||
		loc.Query().Get("tab") != "1" || strings.Count(a.header.Get("Location"), "?") != 1 {
		t.Errorf("Location %s", loc)
	}
	if strings.Contains(loc.RawQuery, cb.Get("spapi_oauth_code")) || strings.Contains(loc.RawQuery, cb.Get("state")) {
		t.Error("redirect leaks the code or the state")
	}
	if a.header.Get("Referrer-Policy") != "no-referrer" || a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", a.header)
	}
	a = s.callback(cb) // replay
	loc, _ = url.Parse(a.header.Get("Location"))
	if a.status != http.StatusSeeOther || loc.Query().Get("amazon_error") != "invalid_state" || loc.Query().Has("amazon_connected") ||
		strings.Count(a.header.Get("Location"), "?") != 1 {
		t.Errorf("replay redirect %d %s", a.status, loc)
	}
}

func TestCallbackRejectsBadStates(t *testing.T) {
	s := newStack(t, stackOption{})
	tenantA, tenantB := testenv.ID("tenant-a"), testenv.ID("tenant-b")

	expired := s.consent(s.start(tenantA), 1)
	s.clock.Advance(15*time.Minute + time.Second)
	fresh := s.consent(s.start(tenantB), 1)
	remember(expired.Get("spapi_oauth_code"), fresh.Get("spapi_oauth_code"))

	unknown := url.Values{}
	for k, v := range fresh {
		unknown[k] = v
	}
	unknown.Set("state", strings.Repeat("A", 43))

	tests := []struct {
		name       string
		query      string
		wantStatus int
		wantCode   string
	}{
		{"expired state", expired.Encode(), 400, "invalid_state"},
		{"unknown state", unknown.Encode(), 400, "invalid_state"},
		{"malformed state", strings.Replace(fresh.Encode(), "state=", "state=%27%3B--", 1), 400, "invalid_state"},
		{"missing everything", "", 400, "invalid_request"},
		{"missing code", "state=" + fresh.Get("state") + "&selling_partner_id=" + fresh.Get("selling_partner_id"), 400, "invalid_request"},
		{"garbage seller", strings.Replace(fresh.Encode(), "selling_partner_id=", "selling_partner_id=%3Cscript%3E", 1), 400, "invalid_request"},
		{"repeated state", fresh.Encode() + "&state=x", 400, "invalid_request"},
		{"bad escape", "state=%zz", 400, "invalid_request"},
		{"consent refused", "error=access_denied&state=" + fresh.Get("state"), 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.do(http.MethodGet, httpapi.CallbackPath+"?"+tt.query, "")
			openapicheck.ValidateResponse(t, http.MethodGet, httpapi.CallbackPath, a.status, a.header.Get("Content-Type"), a.body)
			if a.status != tt.wantStatus || a.errorCode(t) != tt.wantCode {
				t.Errorf("got %d %s, want %d %s", a.status, a.body, tt.wantStatus, tt.wantCode)
			}
		})
	}
	// None of that touched tenant B's pending state: it still connects B.
	if a := s.callback(fresh); a.status != http.StatusOK {
		t.Fatalf("fresh state after bad attempts: %d %s", a.status, a.body)
	}
	if status, _ := s.connectionStatus(tenantB); status != "CONNECTED" {
		t.Errorf("tenant B %s", status)
	}
	if status, _ := s.connectionStatus(tenantA); status != "PENDING" {
		t.Errorf("tenant A %s, want PENDING (its state expired)", status)
	}
	if st := s.status(tenantA); st["connected"] != false {
		t.Errorf("tenant A status %v", st)
	}
}

// A state is bound to the tenant that started: completed in its browser,
// it connects that tenant and no other.
func TestStateIsBoundToItsTenant(t *testing.T) {
	s := newStack(t, stackOption{})
	tenantA, tenantB := testenv.ID("tenant-a"), testenv.ID("tenant-b")
	cbA := s.consent(s.start(tenantA), 1)
	remember(cbA.Get("spapi_oauth_code"))
	s.start(tenantB)
	if a := s.callback(cbA); a.status != http.StatusOK {
		t.Fatalf("callback: %d %s", a.status, a.body)
	}
	if st := s.status(tenantA); st["connected"] != true {
		t.Errorf("tenant A: %v", st)
	}
	if st := s.status(tenantB); st["connected"] != false || st["status"] != "PENDING" {
		t.Errorf("tenant B got connected by A's state: %v", st)
	}
	if _, err := s.secrets.Tenant(context.Background(), tenantB); !errors.Is(err, marketplace.ErrNoCredentials) {
		t.Errorf("tenant B has credentials: %v", err)
	}
}

func TestTokenExchangeFailures(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":"server_error","error_description":"boom"}`))
	}))
	defer down.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()

	tests := []struct {
		name       string
		opt        stackOption
		mangle     func(s *stack, q url.Values) // before the callback
		wantError  string                       // in lastError
		wantStatus int
	}{
		{name: "code used twice (invalid_grant)", mangle: func(s *stack, q url.Values) {
			// Someone (an attacker with the URL) used the code first.
			// It repeats the consent's redirect_uri, as LWA requires.
			form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("spapi_oauth_code")},
				"client_id": {sandbox.DefaultConfig().ClientID}, "client_secret": {sandbox.DefaultConfig().ClientSecret},
				"redirect_uri": {sandbox.DefaultConfig().RedirectURIs[0]}}
			resp, err := http.PostForm(s.sbURL+"/auth/o2/token", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}, wantError: "Token exchange failed: invalid_grant", wantStatus: http.StatusBadRequest},
		{name: "wrong client secret (invalid_client)", opt: stackOption{appSecret: "not-the-sandbox-secret"}, wantError: "Token exchange failed: invalid_client", wantStatus: http.StatusBadGateway},
		{name: "LWA 5xx", wantError: "Token exchange failed: server_error", wantStatus: http.StatusBadGateway},
		{name: "LWA timeout", opt: stackOption{lwaTimeout: 300 * time.Millisecond}, wantError: "Token exchange failed: timeout", wantStatus: http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := tt.opt
			switch tt.name {
			case "LWA 5xx":
				opt.lwaURL = down.URL
			case "LWA timeout":
				opt.lwaURL = slow.URL
			}
			s := newStack(t, opt)
			tenant := testenv.ID("tenant")
			cb := s.consent(s.start(tenant), 1)
			remember(cb.Get("spapi_oauth_code"))
			if tt.mangle != nil {
				tt.mangle(s, cb)
			}
			a := s.callback(cb)
			openapicheck.ValidateResponse(t, http.MethodGet, httpapi.CallbackPath, a.status, a.header.Get("Content-Type"), a.body)
			if a.status != tt.wantStatus || a.errorCode(t) != "token_exchange_failed" {
				t.Errorf("callback: %d %s", a.status, a.body)
			}
			status, lastError := s.connectionStatus(tenant)
			if status != "PENDING" || lastError != tt.wantError {
				t.Errorf("connection %s %q, want PENDING %q", status, lastError, tt.wantError)
			}
			if st := s.status(tenant); st["lastError"] != tt.wantError || st["connected"] != false {
				t.Errorf("status %v", st)
			}
			if _, err := s.secrets.Tenant(context.Background(), tenant); !errors.Is(err, marketplace.ErrNoCredentials) {
				t.Errorf("a secret was written: %v", err)
			}
		})
	}
}

// Vault down: start and callback answer 503 and nothing is half written.
func TestVaultDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	up := newStack(t, stackOption{})
	tenant := testenv.ID("tenant")
	cb := up.consent(up.start(tenant), 1)
	remember(cb.Get("spapi_oauth_code"))

	// The same database and sandbox, seen by a connector whose Vault is unreachable.
	s := up.withVaultAt(closed)

	a := s.do(http.MethodPost, httpapi.StartPath, token(t, testenv.ID("tenant")))
	openapicheck.ValidateResponse(t, http.MethodPost, httpapi.StartPath, a.status, a.header.Get("Content-Type"), a.body)
	if a.status != http.StatusServiceUnavailable || a.errorCode(t) != "service_unavailable" {
		t.Errorf("start with Vault down: %d %s", a.status, a.body)
	}
	a = s.callback(cb)
	if a.status != http.StatusServiceUnavailable {
		t.Errorf("callback with Vault down: %d %s", a.status, a.body)
	}
	if status, _ := up.connectionStatus(tenant); status != "PENDING" {
		t.Errorf("connection %s with Vault down, want PENDING", status)
	}
	if _, err := up.secrets.Tenant(context.Background(), tenant); !errors.Is(err, marketplace.ErrNoCredentials) {
		t.Errorf("secret written: %v", err)
	}
}

// When the Sellers API cannot answer, the seller still connects, polled on
// the app's marketplace.
func TestConnectFallsBackWhenParticipationsFail(t *testing.T) {
	s := newStack(t, stackOption{})
	tenant := testenv.ID("tenant")
	cb := s.consent(s.start(tenant), 3)
	remember(cb.Get("spapi_oauth_code"))
	s.sandbox.InjectFault(sandbox.SellerID(3), sandbox.Fault{Kind: "503", Count: 1})
	if a := s.callback(cb); a.status != http.StatusOK {
		t.Fatalf("callback: %d %s", a.status, a.body)
	}
	creds, err := s.secrets.Tenant(context.Background(), tenant)
	if err != nil || creds.MarketplaceID != "A13V1IB3VIYZZH" {
		t.Fatalf("marketplace %q (%v), want the app's default A13V1IB3VIYZZH", creds.MarketplaceID, err)
	}
	if st := s.status(tenant); st["connected"] != true {
		t.Errorf("status %v", st)
	}
}

// A seller who does not grant getAccount, or a getAccount that fails, keeps
// the connection named after the seller id; the account's budget is the
// connection's own.
func TestConnectNamesTheSellersBusiness(t *testing.T) {
	s := newStack(t, stackOption{})
	for _, c := range []struct {
		seller int
		setup  func(id string)
		want   func(id string) string
	}{
		{1, func(string) {}, func(string) string { return s.sandbox.Sellers()[0].Name }},
		{2, func(id string) { s.sandbox.SetAccountAccess(id, false) }, func(id string) string { return "Amazon Seller " + id }},
		// getMarketplaceParticipations then getAccount answer 429.
		{3, func(id string) { s.sandbox.InjectFault(id, sandbox.Fault{Kind: "429", Count: 2}) }, nil},
	} {
		id := sandbox.SellerID(c.seller)
		tenant := testenv.ID("tenant")
		cb := s.consent(s.start(tenant), c.seller)
		remember(cb.Get("spapi_oauth_code"))
		c.setup(id)
		if a := s.callback(cb); a.status != http.StatusOK {
			t.Fatalf("seller %d: callback %d %s", c.seller, a.status, a.body)
		}
		want := "Amazon Seller " + id
		if c.want != nil {
			want = c.want(id)
		}
		if st := s.status(tenant); st["connected"] != true || st["displayName"] != want {
			t.Errorf("seller %d: status %v, want displayName %q", c.seller, st, want)
		}
		var calls, throttled int
		if err := s.pool.QueryRow(context.Background(), `SELECT "callCount", "count429" FROM keybuzz_amazon."RateBudget" b JOIN public."MarketplaceConnection" c ON c."id" = b."connectionId"
WHERE c."tenantId" = $1 AND b."operation" = 'getAccount'`, tenant).Scan(&calls, &throttled); err != nil || calls != 1 || throttled != map[int]int{3: 1}[c.seller] {
			t.Errorf("seller %d: getAccount budget calls %d, 429s %d (%v)", c.seller, calls, throttled, err)
		}
	}
}

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
