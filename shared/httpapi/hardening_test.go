package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

// connectAs runs the whole consent for tenant as sandbox seller n, in the
// browser that started it.
func (s *stack) connectAs(tenant string, seller int) {
	s.t.Helper()
	cb := s.consent(s.start(tenant), seller)
	remember(cb.Get("spapi_oauth_code"))
	if a := s.callback(cb); a.status != http.StatusOK {
		s.t.Fatalf("connect %s as seller %d: %d %s", tenant, seller, a.status, a.body)
	}
}

func (s *stack) hasSecret(tenant string) bool {
	s.t.Helper()
	_, err := s.secrets.Tenant(context.Background(), tenant)
	if err != nil && !errors.Is(err, marketplace.ErrNoCredentials) {
		s.t.Fatalf("read secret: %v", err)
	}
	return err == nil
}

// Account-linking CSRF: tenant A starts Connect and hands its consent URL
// to someone else, who approves it. Whatever client brings Amazon's
// redirect back without A's binding cookie (none, another tenant's, a
// forged one), nothing is attached to A, no secret is written, A's
// connection keeps its previous state, and the answer says why. A's own
// browser can still complete the same consent afterwards.
func TestConsentCompletesOnlyInTheStartingBrowser(t *testing.T) {
	s := newStack(t, stackOption{})
	tenantA, tenantB := testenv.ID("tenant-a"), testenv.ID("tenant-b")
	cbA := s.consent(s.start(tenantA), 2) // approved by seller 2, in someone else's browser
	remember(cbA.Get("spapi_oauth_code"))
	_, bCookie := s.startWith(tenantB, "") // tenant B's own session in that browser

	forged := &http.Cookie{Name: "kb_amazon_binding", Value: strings.Repeat("x", 43)}
	secureName := &http.Cookie{Name: "__Host-kb_amazon_binding", Value: s.bindings.get(cbA.Get("state")).Value}
	for _, tc := range []struct {
		name   string
		cookie *http.Cookie
	}{
		{"fresh client, no cookie", nil},
		{"another tenant's session", bCookie},
		{"forged cookie", forged},
		{"A's value under the https name on an http host", secureName},
		{"malformed cookie", &http.Cookie{Name: "kb_amazon_binding", Value: "'; DROP TABLE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := s.callbackFrom(cbA, tc.cookie)
			openapicheck.ValidateResponse(t, http.MethodGet, httpapi.CallbackPath, a.status, a.header.Get("Content-Type"), a.body)
			if a.status != http.StatusForbidden || a.errorCode(t) != "browser_mismatch" {
				t.Fatalf("callback: %d %s, want 403 browser_mismatch", a.status, a.body)
			}
			if msg := a.json(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "not started in this browser") ||
				!strings.Contains(msg, "nothing was connected") {
				t.Errorf("message %q does not say what happened", msg)
			}
			if a.header.Get("Referrer-Policy") != "no-referrer" {
				t.Error("no Referrer-Policy: no-referrer")
			}
			if status, lastError := s.connectionStatus(tenantA); status != "PENDING" || lastError != "" {
				t.Errorf("tenant A %s %q, want PENDING untouched", status, lastError)
			}
			if s.hasSecret(tenantA) || s.hasSecret(tenantB) {
				t.Error("a secret was written")
			}
		})
	}
	if st := s.status(tenantA); st["connected"] != false {
		t.Errorf("tenant A %v", st)
	}
	// The starter's browser still completes it (the attempts consumed nothing).
	if a := s.callback(cbA); a.status != http.StatusOK {
		t.Fatalf("A's own browser: %d %s", a.status, a.body)
	}
	if !s.hasSecret(tenantA) || s.status(tenantA)["connected"] != true {
		t.Error("A's own browser did not connect A")
	}
}

// A connected tenant whose consent URL is approved elsewhere stays
// connected to its own seller.
func TestForeignCallbackKeepsAConnectedTenantAsItWas(t *testing.T) {
	s := newStack(t, stackOption{})
	tenant := testenv.ID("tenant")
	s.connectAs(tenant, 1)
	before, _ := s.secrets.Tenant(context.Background(), tenant)
	cb := s.consent(s.start(tenant), 2)
	remember(cb.Get("spapi_oauth_code"))
	if a := s.callbackFrom(cb, nil); a.status != http.StatusForbidden {
		t.Fatalf("fresh client: %d %s", a.status, a.body)
	}
	after, err := s.secrets.Tenant(context.Background(), tenant)
	if err != nil || after.SellerID != sandbox.SellerID(1) || after.Version != before.Version {
		t.Errorf("secret changed: seller %s v%d -> v%d (%v)", after.SellerID, before.Version, after.Version, err)
	}
	if st := s.status(tenant); st["status"] != "CONNECTED" || st["displayName"] != s.sandbox.Sellers()[0].Name {
		t.Errorf("status %v", st)
	}
}

// One seller, one tenant: S on A, then S for B is refused before the code
// is exchanged; A is unaffected and B gets no secret.
func TestSellerBelongsToOneTenant(t *testing.T) {
	s := newStack(t, stackOption{returnURL: "https://app.keybuzz.test/amazon"})
	tenantA, tenantB := testenv.ID("tenant-a"), testenv.ID("tenant-b")
	cb := s.consent(s.start(tenantA), 3)
	remember(cb.Get("spapi_oauth_code"))
	if a := s.callback(cb); a.status != http.StatusSeeOther {
		t.Fatalf("A: %d %s", a.status, a.body)
	}
	secretA, _ := s.secrets.Tenant(context.Background(), tenantA)

	cb = s.consent(s.start(tenantB), 3)
	remember(cb.Get("spapi_oauth_code"))
	a := s.callback(cb)
	loc, _ := url.Parse(a.header.Get("Location"))
	if a.status != http.StatusSeeOther || loc.Query().Get("amazon_error") != "seller_already_connected" {
		t.Fatalf("B: %d %s", a.status, a.header.Get("Location"))
	}
	if s.hasSecret(tenantB) {
		t.Error("tenant B got a secret")
	}
	if status, lastError := s.connectionStatus(tenantB); status != "PENDING" ||
		lastError != "This Amazon seller account is already connected to another KeyBuzz account" {
		t.Errorf("tenant B %s %q", status, lastError)
	}
	after, err := s.secrets.Tenant(context.Background(), tenantA)
	if err != nil || after.Version != secretA.Version || after.RefreshToken != secretA.RefreshToken {
		t.Errorf("tenant A's secret changed (%v)", err)
	}
	if st := s.status(tenantA); st["status"] != "CONNECTED" {
		t.Errorf("tenant A %v", st)
	}
	// Without a return URL the refusal is JSON with a clear message.
	s2 := newStack(t, stackOption{})
	s2.connectAs(tenantA, 3)
	cb = s2.consent(s2.start(tenantB), 3)
	remember(cb.Get("spapi_oauth_code"))
	a = s2.callback(cb)
	openapicheck.ValidateResponse(t, http.MethodGet, httpapi.CallbackPath, a.status, a.header.Get("Content-Type"), a.body)
	if a.status != http.StatusConflict || a.errorCode(t) != "seller_already_connected" ||
		!strings.Contains(string(a.body), "already connected to another KeyBuzz account") {
		t.Errorf("JSON refusal: %d %s", a.status, a.body)
	}
	// Once A disconnects, the seller is free for B.
	if d := s2.do(http.MethodPost, httpapi.DisconnectPath, token(t, tenantA)); d.status != http.StatusOK {
		t.Fatalf("disconnect: %d %s", d.status, d.body)
	}
	s2.connectAs(tenantB, 3)
}

// A tenant reconnecting with another seller replaces it explicitly: the old
// seller's subscriptions are ended, every version of its secret destroyed,
// its sync state dropped.
func TestReconnectWithAnotherSellerReplacesIt(t *testing.T) {
	s := newStack(t, stackOption{})
	tenant := testenv.ID("tenant")
	s.connectAs(tenant, 1)
	s.connectAs(tenant, 1) // the same seller again: nothing replaced
	if got := s.unsubscribed.list(); len(got) != 0 {
		t.Fatalf("same-seller reconnect ended subscriptions of %v", got)
	}
	s.connectAs(tenant, 2)
	if got := s.unsubscribed.list(); len(got) != 1 || got[0] != sandbox.SellerID(1) {
		t.Errorf("unsubscribed %v, want seller 1", got)
	}
	creds, err := s.secrets.Tenant(context.Background(), tenant)
	if err != nil || creds.SellerID != sandbox.SellerID(2) {
		t.Fatalf("secret seller %s (%v)", creds.SellerID, err)
	}
	meta, err := testenv.Vault(t).KVv2("secret").GetMetadata(context.Background(), "keybuzz/tenants/"+tenant+"/amazon")
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Versions) != 1 {
		t.Errorf("%d versions kept: the old seller's refresh token survives", len(meta.Versions))
	}
	if st := s.status(tenant); st["displayName"] != s.sandbox.Sellers()[1].Name {
		t.Errorf("status %v", st)
	}
}

// Disconnect: Vault secret destroyed, DISABLED "Disconnected by user", not
// claimed by the next fan-out, tickets kept, idempotent.
func TestDisconnect(t *testing.T) {
	s := newStack(t, stackOption{})
	ctx := context.Background()
	tenant, other := testenv.ID("tenant"), testenv.ID("tenant-other")
	s.connectAs(tenant, 1)
	s.connectAs(other, 2)
	var connID string
	if err := s.pool.QueryRow(ctx, `SELECT "id" FROM "MarketplaceConnection" WHERE "tenantId" = $1`, tenant).Scan(&connID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO "Ticket" ("id", "tenantId", "channel", "subject", "customerName", "updatedAt")
		VALUES ('ckbticket' || md5($1), $1, 'AMAZON', 'Order 1', 'Buyer', now() AT TIME ZONE 'UTC')`, tenant); err != nil {
		t.Fatal(err)
	}
	// The tenant's inbound mail address (KeyBuzz's inbound_addresses), live.
	if _, err := s.pool.Exec(ctx, `WITH ic AS (INSERT INTO "inbound_connections" ("id", "tenantId", "marketplace", "countries", "status", "updatedAt")
		VALUES ('ckbconn' || md5($1), $1, 'amazon', '["FR"]', 'READY', now() AT TIME ZONE 'UTC') RETURNING "id")
		INSERT INTO "inbound_addresses" ("id", "connectionId", "tenantId", "marketplace", "country", "token", "emailAddress", "pipelineStatus", "updatedAt")
		SELECT 'ckbaddr' || md5($1), ic."id", $1, 'amazon', 'FR', 'tok123', 'amazon.'||$1||'.fr.tok123@inbound.keybuzz.io', 'VALIDATED', now() AT TIME ZONE 'UTC' FROM ic`, tenant); err != nil {
		t.Fatal(err)
	}

	if a := s.do(http.MethodPost, httpapi.DisconnectPath, ""); a.status != http.StatusUnauthorized {
		t.Errorf("no JWT: %d", a.status)
	}
	for i := range 2 { // idempotent
		a := s.do(http.MethodPost, httpapi.DisconnectPath, token(t, tenant))
		openapicheck.ValidateResponse(t, http.MethodPost, httpapi.DisconnectPath, a.status, a.header.Get("Content-Type"), a.body)
		if b := a.json(t); a.status != http.StatusOK || b["status"] != "DISABLED" || b["connected"] != false ||
			b["lastError"] != "Disconnected by user" {
			t.Fatalf("disconnect #%d: %d %s", i+1, a.status, a.body)
		}
	}
	if got := s.unsubscribed.list(); len(got) != 1 || got[0] != sandbox.SellerID(1) {
		t.Errorf("unsubscribed %v, want seller 1 once", got)
	}
	if s.hasSecret(tenant) {
		t.Error("secret still readable")
	}
	if _, err := testenv.Vault(t).KVv2("secret").GetMetadata(ctx, "keybuzz/tenants/"+tenant+"/amazon"); !errors.Is(err, api.ErrSecretNotFound) {
		t.Errorf("metadata kept (soft delete, old versions recoverable): %v", err)
	}
	if st := s.status(tenant); st["status"] != "DISABLED" || st["connected"] != false || st["lastError"] != "Disconnected by user" ||
		st["authorizationExpiresAt"] != nil {
		t.Errorf("status %v", st)
	}
	// The next fan-out claims the other tenant, not this one.
	s.clock.Advance(time.Hour)
	jobs, _, err := postgres.New(s.pool, postgres.WithClock(s.clock.Now)).ClaimDue(ctx, 100, time.Minute, marketplace.ClaimCursor{})
	if err != nil {
		t.Fatal(err)
	}
	var claimed []string
	for _, j := range jobs {
		claimed = append(claimed, j.TenantID)
	}
	if len(claimed) != 1 || claimed[0] != other {
		t.Errorf("fan-out claimed %v, want only %s", claimed, other)
	}
	var tickets int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM "Ticket" WHERE "tenantId" = $1`, tenant).Scan(&tickets); err != nil || tickets != 1 {
		t.Errorf("tickets %d (%v), want kept", tickets, err)
	}
	if !s.hasSecret(other) {
		t.Error("the other tenant lost its secret")
	}
	var pipeline, inboundErr string
	if err := s.pool.QueryRow(ctx, `SELECT "pipelineStatus"::text, COALESCE("lastError", '') FROM "inbound_addresses" WHERE "tenantId" = $1`, tenant).
		Scan(&pipeline, &inboundErr); err != nil || pipeline != "FAILED" || inboundErr != "Disconnected by user" {
		t.Errorf("inbound address %s %q (%v), want FAILED: it must stop accepting", pipeline, inboundErr, err)
	}
	// A tenant that never connected: 200, nothing to do.
	a := s.do(http.MethodPost, httpapi.DisconnectPath, token(t, testenv.ID("tenant-never")))
	if b := a.json(t); a.status != http.StatusOK || b["status"] != "DISCONNECTED" {
		t.Errorf("never connected: %d %s", a.status, a.body)
	}
	// Reconnecting after a disconnect works, in the browser that starts it.
	s.connectAs(tenant, 1)
	if st := s.status(tenant); st["status"] != "CONNECTED" || st["lastError"] != nil {
		t.Errorf("reconnect: %v", st)
	}
	_ = connID
}

// return_url: only absolute URLs on allowed hosts, kept with the state; the
// browser comes back there with KeyBuzz's parameters (never a double "?").
func TestStartReturnURL(t *testing.T) {
	s := newStack(t, stackOption{returnURL: "https://app.keybuzz.test/settings", returnHosts: []string{"admin.keybuzz.test"}})
	tenant := testenv.ID("tenant")
	for _, tc := range []struct {
		returnURL string
		ok        bool
	}{
		{"https://admin.keybuzz.test/onboarding?step=2#top", true},
		{"https://ADMIN.keybuzz.test/x", true},
		{"/onboarding", false},
		{"//evil.test/x", false},
		{"https://evil.test/x", false},
		{"https://admin.keybuzz.test.evil.test/x", false},
		{"https://user@admin.keybuzz.test/x", false},
		{"http://admin.keybuzz.test/x", false},
		{"javascript:alert(1)", false},
	} {
		a := s.doBody(http.MethodPost, httpapi.StartPath, token(t, tenant), `{"return_url":"`+tc.returnURL+`"}`)
		if tc.ok != (a.status == http.StatusOK) || (!tc.ok && a.errorCode(t) != "invalid_return_url") {
			t.Errorf("return_url %q: %d %s", tc.returnURL, a.status, a.body)
		}
	}
	if a := s.doBody(http.MethodPost, httpapi.StartPath, token(t, tenant), `{"return_url":`); a.status != http.StatusBadRequest {
		t.Errorf("bad JSON: %d", a.status)
	}
	u, _ := s.startWith(tenant, `{"return_url":"https://admin.keybuzz.test/onboarding?step=2&amazon_error=old#top"}`)
	cb := s.consent(u, 1)
	remember(cb.Get("spapi_oauth_code"))
	a := s.callback(cb)
	loc := a.header.Get("Location")
	if a.status != http.StatusSeeOther || !strings.HasPrefix(loc, "https://admin.keybuzz.test/onboarding?") ||
		strings.Count(loc, "?") != 1 || strings.Contains(loc, "#") {
		t.Fatalf("callback: %d %s", a.status, loc)
	}
	lu, _ := url.Parse(loc)
	if q := lu.Query(); q.Get("step") != "2" || q.Get("amazon_connected") != "true" || q.Get("tenant_id") != tenant || q.Has("amazon_error") {
		t.Errorf("Location query %v", q)
	}
	// A failure of a live state goes back to its page (another browser).
	u, _ = s.startWith(tenant, `{"return_url":"https://admin.keybuzz.test/onboarding"}`)
	cb = s.consent(u, 1)
	remember(cb.Get("spapi_oauth_code"))
	if a := s.callbackFrom(cb, nil); a.header.Get("Location") != "https://admin.keybuzz.test/onboarding?amazon_error=browser_mismatch" {
		t.Errorf("foreign browser: %s", a.header.Get("Location"))
	}
	// A used state is unknown: the configured page.
	if a := s.callback(cb); a.status != http.StatusSeeOther {
		t.Fatalf("own browser: %d %s", a.status, a.body)
	}
	if a := s.callback(cb); a.header.Get("Location") != "https://app.keybuzz.test/settings?amazon_error=invalid_state" {
		t.Errorf("replay: %s", a.header.Get("Location"))
	}
}

// Renewal: status tells when the authorization ends and asks for renewal 30
// days ahead while still CONNECTED.
func TestStatusAnswersRenewal(t *testing.T) {
	s := newStack(t, stackOption{})
	tenant := testenv.ID("tenant")
	s.connectAs(tenant, 1)
	st := s.status(tenant)
	exp, err := time.Parse(time.RFC3339, st["authorizationExpiresAt"].(string))
	if err != nil || exp.Sub(s.clock.Now()) < 364*24*time.Hour || exp.Sub(s.clock.Now()) > 365*24*time.Hour+time.Minute {
		t.Fatalf("authorizationExpiresAt %v (%v)", st["authorizationExpiresAt"], err)
	}
	other := testenv.ID("tenant-other")
	s.clock.Advance(200 * 24 * time.Hour)
	s.connectAs(other, 2) // consented 200 days later
	store := postgres.New(s.pool, postgres.WithClock(s.clock.Now))
	if r, err := store.Renew(context.Background()); err != nil || r.Expired != 0 || r.DueSoon != 0 {
		t.Errorf("renewal at 200 days: %+v (%v)", r, err)
	}
	s.clock.Advance(136 * 24 * time.Hour) // 336 days after the first consent
	if st := s.status(tenant); st["status"] != "CONNECTED" || st["reauthReason"] != "renewal_due" || st["connected"] != true {
		t.Errorf("30 days ahead: %v", st)
	}
	if st := s.status(other); st["reauthReason"] != nil {
		t.Errorf("the later consent is not due: %v", st)
	}
	if r, err := store.Renew(context.Background()); err != nil || r.Expired != 0 || r.DueSoon != 1 {
		t.Errorf("renewal at 336 days: %+v (%v), want 1 due", r, err)
	}
	// At expiry: re-authorization required (KeyBuzz's ERROR, authorization_expired), no longer claimed.
	s.clock.Advance(30 * 24 * time.Hour)
	if r, err := store.Renew(context.Background()); err != nil || r.Expired != 1 {
		t.Fatalf("renewal at 366 days: %+v (%v), want 1 expired", r, err)
	}
	if st := s.status(tenant); st["status"] != "ERROR" || st["reauthRequired"] != true || st["reauthReason"] != "authorization_expired" || st["connected"] != false {
		t.Errorf("after expiry: %v", st)
	}
	jobs, _, err := store.ClaimDue(context.Background(), 10, time.Minute, marketplace.ClaimCursor{})
	if err != nil || len(jobs) != 1 || jobs[0].TenantID != other {
		t.Errorf("claimed %v (%v), want only %s", jobs, err, other)
	}
	// Renewing (a new consent) clears the reason and restarts the year.
	s.connectAs(tenant, 1)
	if st := s.status(tenant); st["status"] != "CONNECTED" || st["reauthReason"] != nil {
		t.Errorf("after renewal: %v", st)
	}
}
