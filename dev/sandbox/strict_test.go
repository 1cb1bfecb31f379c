package sandbox_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

// everyRateHeader sends x-amzn-RateLimit-Limit on every 200/400/404, for
// the tests that check its value; by default every fourth answer lacks it
// (TestRateLimitHeaderSometimesAbsent).
func everyRateHeader(c *sandbox.Config) { c.OmitRateLimitEvery = 0 }

// Amazon sends x-amzn-RateLimit-Limit "when available": by default every
// fourth admitted answer of a seller goes without it, the others carry the
// plan's rate; a 429 never does.
func TestRateLimitHeaderSometimesAbsent(t *testing.T) {
	e := start(t)
	_, access := e.authorize(t, seller1())
	with, without := 0, 0
	for i := 0; i < 8; i++ {
		a := e.get(t, "/sellers/v1/marketplaceParticipations", access)
		if a.status != http.StatusOK {
			t.Fatalf("call %d: %d %s", i, a.status, a.body)
		}
		switch v, ok := a.header["X-Amzn-Ratelimit-Limit"]; {
		case !ok:
			without++
		case v[0] == "0.016":
			with++
		default:
			t.Fatalf("x-amzn-RateLimit-Limit %q", v)
		}
	}
	if with != 6 || without != 2 {
		t.Errorf("%d answers with the header, %d without; want 6 and 2", with, without)
	}
}

// LWA's code exchange repeats the consent request's redirect_uri (RFC 6749
// 4.1.3): missing, it is invalid_request; another one, invalid_grant (the
// code stays usable); the same one, tokens. A consent that named none needs
// none.
func TestCodeExchangeChecksRedirectURI(t *testing.T) {
	e := start(t)
	redirect := e.cfg.RedirectURIs[1]
	q := url.Values{"application_id": {e.cfg.ApplicationID}, "state": {"st"}, "version": {"beta"}, "redirect_uri": {redirect},
		"sandbox_auto_approve": {"true"}, "sandbox_seller": {seller1()}}
	a := e.get(t, "/apps/authorize/consent?"+q.Encode(), "")
	loc, err := url.Parse(a.header.Get("Location"))
	if a.status != http.StatusFound || err != nil {
		t.Fatalf("consent: %d %v", a.status, err)
	}
	code := loc.Query().Get("spapi_oauth_code")
	for _, tt := range []struct {
		redirect, wantErr string
		status            int
	}{
		{"", "invalid_request", http.StatusBadRequest},
		{e.cfg.RedirectURIs[0], "invalid_grant", http.StatusBadRequest},
		{redirect, "", http.StatusOK},
	} {
		f := e.clientForm("authorization_code", "code", code)
		if tt.redirect != "" {
			f.Set("redirect_uri", tt.redirect)
		}
		a := e.postForm(t, "/auth/o2/token", f)
		if a.status != tt.status || (tt.wantErr != "" && a.json(t)["error"] != tt.wantErr) {
			t.Errorf("exchange with redirect_uri %q: %d %s, want %d %s", tt.redirect, a.status, a.body, tt.status, tt.wantErr)
		}
	}
	// A consent without redirect_uri: the exchange needs none.
	if _, access := e.authorize(t, seller1()); access == "" {
		t.Error("no access token")
	}
}
