package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
)

// The log-in route follows no amazon_callback_uri but an https Seller or
// Vendor Central address of the app's region (EU here); a refusal is JSON,
// never a redirect.
func TestLoginRefusesForeignCallbackURIs(t *testing.T) {
	s := newStack(t, stackOption{})
	for _, tc := range []struct {
		uri  string
		want int
	}{
		{"https://sellercentral-europe.amazon.com/apps/authorize/confirm/amzn1.sp.solution.x", 200},
		{"https://sellercentral.amazon.nl/apps/authorize/confirm/x", 200},
		{"https://vendorcentral.amazon.de/apps/authorize/confirm/x", 200},
		{"https://evil.test/apps/authorize/confirm", 400},
		{"http://sellercentral-europe.amazon.com/apps/authorize/confirm", 400},
		{"https://sellercentral-europe.amazon.com.evil.test/apps", 400},
		{"https://sellercentral-europe.amazon.com@evil.test/apps", 400},
		{"https://user@sellercentral-europe.amazon.com/apps", 400},
		{"https://sellercentral-europe.amazon.com:8443/apps", 400},
		{"https://sellercentral.amazon.com/apps/authorize/confirm", 400}, // NA: not the app's region
		{"//sellercentral-europe.amazon.com/apps", 400},
		{"/apps/authorize/confirm", 400},
		{"javascript:alert(1)", 400},
		{"", 400},
	} {
		q := url.Values{"amazon_callback_uri": {tc.uri}, "amazon_state": {"amzn1.state.x"}, "selling_partner_id": {sandbox.SellerID(1)}}
		a := s.do(http.MethodGet, httpapi.LoginPath+"?"+q.Encode(), "")
		openapicheck.ValidateResponse(t, http.MethodGet, httpapi.LoginPath, a.status, a.header.Get("Content-Type"), a.body)
		if a.status != tc.want || a.header.Get("Location") != "" {
			t.Errorf("%q: %d %s (Location %q)", tc.uri, a.status, a.body, a.header.Get("Location"))
		}
		if tc.want == 400 && tc.uri != "" && a.errorCode(t) != "invalid_amazon_callback_uri" {
			t.Errorf("%q: code %s", tc.uri, a.errorCode(t))
		}
	}
	for name, q := range map[string]string{
		"malformed seller": "amazon_callback_uri=https://sellercentral-europe.amazon.com/x&amazon_state=s&selling_partner_id=%3Cx%3E",
		"version alpha":    "amazon_callback_uri=https://sellercentral-europe.amazon.com/x&amazon_state=s&version=alpha",
		"repeated uri":     "amazon_callback_uri=https://sellercentral-europe.amazon.com/x&amazon_callback_uri=https://evil.test&amazon_state=s",
		"state with space": "amazon_callback_uri=https://sellercentral-europe.amazon.com/x&amazon_state=a%20b",
	} {
		if a := s.do(http.MethodGet, httpapi.LoginPath+"?"+q, ""); a.status != 400 || a.errorCode(t) != "invalid_request" {
			t.Errorf("%s: %d %s", name, a.status, a.body)
		}
	}
}

// An Appstore-initiated consent against the sandbox: the Appstore sends
// the browser to the log-in route, the frontend signs the seller in and
// starts with appstore_login, Amazon's amazon_callback_uri gets
// amazon_state (checked by the sandbox) with our state, and the callback,
// in the same browser, connects the seller the Appstore named.
func TestAppstoreInitiatedConsent(t *testing.T) {
	s := newStack(t, stackOption{loginURL: "https://app.keybuzz.test/amazon/appstore?x=1"})
	tenant := testenv.ID("tenant")
	seller := sandbox.SellerID(2)

	// 1. The Appstore page: "Authorize now".
	start := s.sbURL + "/_sandbox/appstore/authorize?" + url.Values{
		"seller": {seller}, "login_uri": {s.server.URL + httpapi.LoginPath}}.Encode()
	resp, err := noRedirect.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	toLogin, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || toLogin.Path != httpapi.LoginPath || toLogin.Query().Get("selling_partner_id") != seller ||
		toLogin.Query().Get("version") != "beta" {
		t.Fatalf("appstore start: %d %s", resp.StatusCode, toLogin)
	}
	amazonState := toLogin.Query().Get("amazon_state")

	// 2. Our log-in route: to the frontend's sign-in page with a log-in id.
	a := s.do(http.MethodGet, httpapi.LoginPath+"?"+toLogin.RawQuery, "")
	openapicheck.ValidateResponse(t, http.MethodGet, httpapi.LoginPath, a.status, a.header.Get("Content-Type"), a.body)
	signIn, _ := url.Parse(a.header.Get("Location"))
	login := signIn.Query().Get("amazon_appstore_login")
	if a.status != http.StatusSeeOther || signIn.Host != "app.keybuzz.test" || signIn.Query().Get("x") != "1" || len(login) != 43 ||
		strings.Count(a.header.Get("Location"), "?") != 1 || a.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("log-in: %d %s", a.status, a.header.Get("Location"))
	}
	remember(login)

	// 3. Signed in, the frontend starts with the log-in id: authUrl is
	// Amazon's amazon_callback_uri with amazon_state, our state, version=beta.
	authURL, _ := s.startWith(tenant, `{"appstore_login":"`+login+`"}`)
	aq := authURL.Query()
	if authURL.Path != "/apps/authorize/confirm" || aq.Get("amazon_state") != amazonState || len(aq.Get("state")) != 43 || aq.Get("version") != "beta" {
		t.Fatalf("authUrl %s", authURL)
	}
	// The log-in id is single use.
	if a := s.doBody(http.MethodPost, httpapi.StartPath, token(t, tenant), `{"appstore_login":"`+login+`"}`); a.status != 400 || a.errorCode(t) != "invalid_state" {
		t.Errorf("log-in reused: %d %s", a.status, a.body)
	}

	// 4. Amazon checks amazon_state, the seller confirms, the browser comes back.
	cb := s.consent(authURL, 2)
	remember(cb.Get("spapi_oauth_code"))
	if cb.Get("selling_partner_id") != seller {
		t.Fatalf("consent for %s, want %s", cb.Get("selling_partner_id"), seller)
	}
	// A callback naming another seller than the Appstore's is refused.
	other := url.Values{}
	for k, v := range cb {
		other[k] = v
	}
	other.Set("selling_partner_id", sandbox.SellerID(1))
	if a := s.callback(other); a.status != http.StatusBadRequest || a.errorCode(t) != "seller_mismatch" {
		t.Errorf("seller mismatch: %d %s", a.status, a.body)
	}

	// The same once more, completed properly.
	resp, _ = noRedirect.Get(start)
	resp.Body.Close()
	toLogin, _ = url.Parse(resp.Header.Get("Location"))
	signIn, _ = url.Parse(s.do(http.MethodGet, httpapi.LoginPath+"?"+toLogin.RawQuery, "").header.Get("Location"))
	authURL, _ = s.startWith(tenant, `{"appstore_login":"`+signIn.Query().Get("amazon_appstore_login")+`"}`)
	cb = s.consent(authURL, 2)
	remember(cb.Get("spapi_oauth_code"))
	if a := s.callback(cb); a.status != http.StatusOK {
		t.Fatalf("callback: %d %s", a.status, a.body)
	}
	if st := s.status(tenant); st["status"] != "CONNECTED" {
		t.Errorf("status %v", st)
	}
	if creds, err := s.secrets.Tenant(context.Background(), tenant); err != nil || creds.SellerID != seller {
		t.Errorf("connected seller %q (%v), want %s", creds.SellerID, err, seller)
	}
	// Amazon refuses a replayed amazon_state.
	q := authURL.Query()
	q.Set("sandbox_auto_approve", "true")
	authURL.RawQuery = q.Encode()
	resp, err = noRedirect.Get(authURL.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed amazon_state: %d", resp.StatusCode)
	}
}

// Without a frontend the log-in answers JSON with the id to start with.
func TestLoginWithoutFrontendAnswersJSON(t *testing.T) {
	s := newStack(t, stackOption{})
	q := url.Values{"amazon_callback_uri": {s.sbURL + "/apps/authorize/confirm"}, "amazon_state": {"amzn1.state.x"}}
	a := s.do(http.MethodGet, httpapi.LoginPath+"?"+q.Encode(), "")
	b := a.json(t)
	if a.status != http.StatusOK || len(b["appstoreLogin"].(string)) != 43 || !strings.Contains(b["message"].(string), "appstore_login") {
		t.Fatalf("%d %s", a.status, a.body)
	}
	remember(b["appstoreLogin"].(string))
}
