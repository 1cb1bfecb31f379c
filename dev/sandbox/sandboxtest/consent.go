package sandboxtest

import (
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
	q := url.Values{"application_id": {cfg.ApplicationID}, "state": {"test-state"}, "version": {"beta"}}
	back := Approve(t, sbURL+"/apps/authorize/consent?"+q.Encode(), sellerID)
	if back.Get("selling_partner_id") != sellerID {
		t.Fatalf("consent for the wrong seller: %v", back)
	}
	return secret.Value(back.Get("spapi_oauth_code"))
}

// Approve is sandbox.AutoApprove of authURL as sellerID; the test fails on
// any answer but the redirect back to the app.
func Approve(t testing.TB, authURL, sellerID string) url.Values {
	t.Helper()
	back, err := sandbox.AutoApprove(authURL, sellerID)
	if err != nil {
		t.Fatal(err)
	}
	return back
}
