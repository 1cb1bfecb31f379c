package sandbox

import (
	"fmt"
	"net/http"
	"net/url"
)

// noRedirect stops at the consent page's redirect, where a browser would
// leave the sandbox for the app's callback.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// AutoApprove is a seller approving the consent page at authURL (a consent
// URL the connector built) as sellerID, with sandbox_auto_approve: it
// returns the query Amazon sends the browser back to the app's callback
// with (state, selling_partner_id, spapi_oauth_code).
func AutoApprove(authURL, sellerID string) (url.Values, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, fmt.Errorf("consent url: %w", err)
	}
	q := u.Query()
	q.Set("sandbox_auto_approve", "true")
	q.Set("sandbox_seller", sellerID)
	u.RawQuery = q.Encode()
	resp, err := noRedirect.Get(u.String())
	if err != nil {
		return nil, fmt.Errorf("consent: %w", err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("consent: HTTP %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query(), nil
}
