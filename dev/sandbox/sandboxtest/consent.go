package sandboxtest

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// Consent follows the sandbox's auto-approved consent page at sbURL for
// sellerID, as that seller's browser would, and returns the
// spapi_oauth_code it redirects with. The test fails on any other answer.
func Consent(t testing.TB, sbURL, sellerID string) secret.Value {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	q := url.Values{"application_id": {cfg.ApplicationID}, "state": {"test-state"}, "version": {"beta"},
		"sandbox_seller": {sellerID}, "sandbox_auto_approve": {"true"}}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(sbURL + "/apps/authorize/consent?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("consent: HTTP %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if loc.Query().Get("selling_partner_id") != sellerID {
		t.Fatalf("consent for the wrong seller: %v", loc.Query())
	}
	return secret.Value(loc.Query().Get("spapi_oauth_code"))
}
