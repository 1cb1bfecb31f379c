package security

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
)

// The attack matrix against the real local server (cmd/local): open
// redirects on every route that redirects, a tenant reaching another
// tenant's connection through any route, and the account-linking attack
// (a consent completed by a browser other than the one that started it).

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// evilTargets are return/redirect values an attacker would try.
var evilTargets = []string{
	"https://evil.example/steal", "http://evil.example/", "//evil.example/x", "/\\evil.example", "https:evil.example",
	"https://evil.example@127.0.0.1/", "https://127.0.0.1.evil.example/", "https://evil.example%2F@127.0.0.1/",
	"javascript:alert(document.domain)", "data:text/html,<script>alert(1)</script>", " https://evil.example", "https://EVIL.example/",
	"https://evil.example\\@127.0.0.1/", "https://127.0.0.1:1@evil.example/",
}

// offSite reports whether a Location leaves the local server (and the
// loopback hosts the local setup uses).
func offSite(base, loc string) bool {
	if loc == "" {
		return false
	}
	b, _ := url.Parse(base)
	u, err := url.Parse(loc)
	if err != nil {
		return true
	}
	u = b.ResolveReference(u)
	if u.Scheme != "http" && u.Scheme != "https" {
		return true
	}
	h := strings.ToLower(u.Hostname())
	return strings.Contains(strings.ToLower(loc), "evil") || !(h == "127.0.0.1" || h == "localhost" || h == "::1")
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestOpenRedirects(t *testing.T) {
	base, _ := localServer(t)
	tenant := testenv.ID("tenant")
	tok := jwt(t, tenant)
	redirectParams := []string{"return_url", "returnUrl", "redirect_uri", "redirect", "next", "amazon_callback_uri", "url", "continue"}
	for _, evil := range evilTargets {
		// start: the return_url of the body is refused, never stored.
		body, _ := json.Marshal(map[string]string{"return_url": evil})
		req, _ := http.NewRequest(http.MethodPost, base+httpapi.StartPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, text := do(t, req)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("start with return_url %q: %d %s, want 400", evil, resp.StatusCode, text)
		}
		// Every route, every redirect-ish parameter, GET and POST.
		for _, path := range []string{httpapi.CallbackPath, httpapi.LoginPath, httpapi.StatusPath, httpapi.DisconnectPath, httpapi.StartPath, "/"} {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				q := url.Values{"state": {"x"}, "spapi_oauth_code": {"x"}, "selling_partner_id": {"A1B2C3D4E5"}, "amazon_state": {"s"}}
				for _, p := range redirectParams {
					q.Set(p, evil)
				}
				req, _ := http.NewRequest(method, base+path+"?"+q.Encode(), nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Referer", evil)
				resp, _ := do(t, req)
				if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && offSite(base, loc) {
					t.Errorf("%s %s with %q: redirect to %q", method, path, evil, loc)
				}
			}
		}
	}
}

// connectTenant connects tenant to sandbox seller n through the local
// server and the sandbox of the stack, with the browser-binding cookie.
func connectTenant(t *testing.T, base, tenant string, n int) {
	t.Helper()
	authURL, cookies := startFlow(t, base, tenant)
	q := sandboxtest.Approve(t, authURL, sandbox.SellerID(n))
	req, _ := http.NewRequest(http.MethodGet, base+httpapi.CallbackPath+"?"+q.Encode(), nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, text := do(t, req)
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback for %s: %d %s", tenant, resp.StatusCode, text)
	}
}

func startFlow(t *testing.T, base, tenant string) (string, []*http.Cookie) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+httpapi.StartPath, nil)
	req.Header.Set("Authorization", "Bearer "+jwt(t, tenant))
	resp, text := do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("start for %s: %d %s", tenant, resp.StatusCode, text)
	}
	var started struct {
		AuthURL string `json:"authUrl"`
	}
	if err := json.Unmarshal([]byte(text), &started); err != nil {
		t.Fatal(err)
	}
	return started.AuthURL, resp.Cookies()
}

func connectionOf(t *testing.T, tenant string) (status, seller string) {
	t.Helper()
	db, err := pgx.Connect(context.Background(), localDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	err = db.QueryRow(context.Background(), `SELECT CASE WHEN mc."status" = 'ERROR' AND k."reauthReason" IS NOT NULL THEN 'NEEDS_REAUTH' ELSE mc."status"::text END,
	COALESCE(k."sellingPartnerId", '')
FROM public."MarketplaceConnection" mc LEFT JOIN keybuzz_amazon."Connection" k ON k."connectionId" = mc."id" WHERE mc."tenantId" = $1
ORDER BY mc."updatedAt" DESC LIMIT 1`, tenant).Scan(&status, &seller)
	if err == pgx.ErrNoRows {
		return "", ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return status, seller
}

// A tenant's token never reaches another tenant's connection, whatever
// the request names: the tenant comes from the token alone.
func TestCrossTenantThroughEveryRoute(t *testing.T) {
	base, out := localServer(t)
	victim, attacker := testenv.ID("tenant-victim"), testenv.ID("tenant-attacker")
	connectTenant(t, base, victim, 2)
	_, victimSeller := connectionOf(t, victim)
	if victimSeller == "" {
		t.Fatalf("the victim is not connected:\n%s", out)
	}
	tok := jwt(t, attacker)
	naming := url.Values{"tenantId": {victim}, "tenant_id": {victim}, "tenant": {victim}}
	body, _ := json.Marshal(map[string]string{"tenantId": victim, "tenant_id": victim})
	// Every route the API serves (the local page "/" is a development tool
	// that signs in as whichever tenant it is told: it never ships).
	for _, path := range []string{httpapi.StatusPath, httpapi.DisconnectPath, httpapi.StartPath, httpapi.LoginPath, httpapi.CallbackPath} {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			req, _ := http.NewRequest(method, base+path+"?"+naming.Encode(), bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("X-Tenant-Id", victim)
			req.Header.Set("Content-Type", "application/json")
			resp, text := do(t, req)
			if strings.Contains(text, victimSeller) || strings.Contains(text, victim) {
				t.Errorf("%s %s as %s naming %s: %d answers with the victim's data: %.300s", method, path, attacker, victim, resp.StatusCode, text)
			}
		}
	}
	if status, seller := connectionOf(t, victim); status != "CONNECTED" || seller != victimSeller {
		t.Errorf("after the attacker's requests the victim is %s/%s, want CONNECTED/%s", status, seller, victimSeller)
	}
}

// The account-linking attack: an attacker starts a consent and gets a
// victim's browser to complete it (or completes it with another start's
// binding): the callback refuses, no account is linked.
func TestAccountLinkingAttack(t *testing.T) {
	base, _ := localServer(t)
	attacker, other := testenv.ID("tenant-attacker"), testenv.ID("tenant-other")
	authURL, _ := startFlow(t, base, attacker)
	q := sandboxtest.Approve(t, authURL, sandbox.SellerID(3)) // the victim seller approves the attacker's consent link
	_, otherCookies := startFlow(t, base, other)
	for name, cookies := range map[string][]*http.Cookie{"no binding cookie": nil, "another start's binding": otherCookies} {
		req, _ := http.NewRequest(http.MethodGet, base+httpapi.CallbackPath+"?"+q.Encode(), nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, text := do(t, req)
		if resp.StatusCode/100 == 2 && strings.Contains(text, `"success":true`) {
			t.Errorf("%s: the callback linked the account: %d %s", name, resp.StatusCode, text)
		}
		if loc := resp.Header.Get("Location"); strings.Contains(loc, "amazon_connected=true") {
			t.Errorf("%s: the callback linked the account: %s", name, loc)
		}
	}
	for _, tn := range []string{attacker, other} {
		if status, _ := connectionOf(t, tn); status == "CONNECTED" {
			t.Errorf("%s is CONNECTED to the victim's seller account", tn)
		}
	}
}
