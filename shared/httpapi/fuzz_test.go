package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
)

// FuzzCallbackQuery: whatever query the callback gets, it answers a client
// error (never a 5xx), and no connection becomes CONNECTED without a
// consent's code.
func FuzzCallbackQuery(f *testing.F) {
	s := newStack(f, stackOption{})
	tenant := testenv.ID("tenant")
	pending := s.start(tenant)
	state := pending.Query().Get("state")
	for _, q := range []string{
		"", "state=" + state, "state=" + state + "&spapi_oauth_code=x&selling_partner_id=A1B2C3D4E5",
		"state=" + strings.Repeat("A", 43) + "&spapi_oauth_code=ANDx&selling_partner_id=A13YSNECFL0GHD",
		"state=%zz", "state=a&state=b", "error=access_denied", "spapi_oauth_code=" + strings.Repeat("x", 5000),
		"state=" + url.QueryEscape("'; DROP TABLE \"Ticket\";--") + "&spapi_oauth_code=a&selling_partner_id=A1",
		"selling_partner_id=%00&state=%0a", ";;;&&&===",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		if len(rawQuery) > 6000 || strings.ContainsFunc(rawQuery, func(r rune) bool { return r <= ' ' || r == '#' || r >= 0x7f }) {
			return // not a query a URL can carry
		}
		a := s.doWith(t, http.MethodGet, httpapi.CallbackPath+"?"+rawQuery, "")
		if a.status < 400 || a.status >= 500 {
			t.Fatalf("query %q: %d %s", rawQuery, a.status, a.body)
		}
		if code := a.errorCode(t); code != "invalid_request" && code != "invalid_state" && code != "token_exchange_failed" && code != "browser_mismatch" {
			t.Fatalf("query %q: code %q", rawQuery, code)
		}
	})
	var connected int
	if err := s.pool.QueryRow(f.Context(), `SELECT count(*) FROM "MarketplaceConnection" WHERE "status" = 'CONNECTED'`).Scan(&connected); err != nil || connected != 0 {
		f.Fatalf("fuzzing connected %d tenants (%v)", connected, err)
	}
}
