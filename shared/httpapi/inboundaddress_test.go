package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
)

// TestInboundAddress: KeyBuzz's GET inbound-address?country=XX answers the
// tenant's address for a country its seller sells on ({address, country,
// status}), 404 for a country it does not sell on and for a tenant without
// a connection, 400 for a country that is no country code, 401 without a
// JWT; every answer as openapi.yaml says.
func TestInboundAddress(t *testing.T) {
	s := newStack(t, stackOption{})
	tenant, stranger := testenv.ID("tenant"), testenv.ID("tenant-none")
	s.connectAs(tenant, 1)
	get := func(tenant, query string) answer {
		t.Helper()
		bearer := ""
		if tenant != "" {
			bearer = token(t, tenant)
		}
		a := s.do(http.MethodGet, httpapi.InboundAddressPath+query, bearer)
		openapicheck.ValidateResponse(t, http.MethodGet, httpapi.InboundAddressPath, a.status, a.header.Get("Content-Type"), a.body)
		return a
	}
	for _, q := range []string{"?country=FR", "?country=fr", ""} { // FR when none is named, as KeyBuzz's route
		a := get(tenant, q)
		b := a.json(t)
		addr, _ := b["address"].(string)
		if a.status != http.StatusOK || b["country"] != "FR" || b["status"] != "PENDING" ||
			!strings.HasPrefix(addr, "amazon."+tenant+".fr.") || !strings.HasSuffix(addr, "@inbound.keybuzz.test") {
			t.Fatalf("%q: %d %s", q, a.status, a.body)
		}
	}
	for _, c := range []struct {
		tenant, query string
		status        int
		code          string
	}{
		{tenant, "?country=JP", http.StatusNotFound, "not_found"},   // the seller does not sell on Amazon.co.jp
		{stranger, "?country=FR", http.StatusNotFound, "not_found"}, // no connection
		{tenant, "?country=F1", http.StatusBadRequest, "invalid_request"},
		{tenant, "?country=FRA", http.StatusBadRequest, "invalid_request"},
		{"", "?country=FR", http.StatusUnauthorized, "unauthorized"},
	} {
		if a := get(c.tenant, c.query); a.status != c.status || a.errorCode(t) != c.code {
			t.Errorf("%s %s: %d %s, want %d %s", c.tenant, c.query, a.status, a.body, c.status, c.code)
		}
	}
}
