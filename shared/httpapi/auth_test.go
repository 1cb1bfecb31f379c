package httpapi_test

import (
	"encoding/base64"

	"github.com/golang-jwt/jwt/v5"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
)

// Every way a caller can present a bad bearer token gets 401 on both
// authenticated routes, and nothing is created.
func TestRoutesRejectBadTokens(t *testing.T) {
	s := newStack(t, stackOption{})
	tenant := testenv.ID("tenant")
	// Minted with the JWT library directly: auth.Issue refuses bad tenants.
	mint := func(key, iss, aud, tenantID string, ttl time.Duration, at time.Time) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": iss, "aud": aud, "tenantId": tenantID, "iat": at.Unix(), "exp": at.Add(ttl).Unix(),
		}).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := token(t, tenant)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + jwtIssuer + `","aud":"` + jwtAudience + `","tenantId":"` + tenant + `","exp":` + "9999999999" + `}`))
	parts := strings.Split(good, ".")

	tests := []struct {
		name   string
		header []string
	}{
		{"no header", nil},
		{"not bearer", []string{"Authorization", "Basic " + good}},
		{"expired", []string{"Authorization", "Bearer " + mint(string(jwtSecret), jwtIssuer, jwtAudience, tenant, time.Minute, time.Now().Add(-time.Hour))}},
		{"wrong signature", []string{"Authorization", "Bearer " + mint("another-secret-0123456789abcdef0123456789", jwtIssuer, jwtAudience, tenant, time.Hour, time.Now())}},
		{"wrong audience", []string{"Authorization", "Bearer " + mint(string(jwtSecret), jwtIssuer, "someone-else", tenant, time.Hour, time.Now())}},
		{"wrong issuer", []string{"Authorization", "Bearer " + mint(string(jwtSecret), "evil", jwtAudience, tenant, time.Hour, time.Now())}},
		{"alg none", []string{"Authorization", "Bearer " + header + "." + claims + "."}},
		{"tampered claims", []string{"Authorization", "Bearer " + parts[0] + "." + claims + "." + parts[2]}},
		{"traversal tenant", []string{"Authorization", "Bearer " + mint(string(jwtSecret), jwtIssuer, jwtAudience, "../../ai", time.Hour, time.Now())}},
		{"garbage", []string{"Authorization", "Bearer not.a.jwt"}},
		{"oversized", []string{"Authorization", "Bearer " + strings.Repeat("a", 12<<10)}},
	}
	for _, tt := range tests {
		for _, route := range []struct{ method, path string }{{http.MethodPost, httpapi.StartPath}, {http.MethodGet, httpapi.StatusPath}} {
			t.Run(tt.name+" "+route.path, func(t *testing.T) {
				a := s.do(route.method, route.path, "", tt.header...)
				openapicheck.ValidateResponse(t, route.method, route.path, a.status, a.header.Get("Content-Type"), a.body)
				if a.status != http.StatusUnauthorized || a.errorCode(t) != "unauthorized" {
					t.Errorf("%d %s", a.status, a.body)
				}
			})
		}
	}
	var n int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM "MarketplaceConnection"`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rejected requests created %d connections (%v)", n, err)
	}
	// Wrong method and an oversized body are client errors too.
	if a := s.do(http.MethodGet, httpapi.StartPath, good); a.status != http.StatusMethodNotAllowed {
		t.Errorf("GET start: %d", a.status)
	}
}

// Status only ever shows the caller's own tenant.
func TestStatusIsPerTenant(t *testing.T) {
	s := newStack(t, stackOption{})
	a, b := testenv.ID("tenant-a"), testenv.ID("tenant-b")
	cb := s.consent(s.start(a), 1)
	remember(cb.Get("spapi_oauth_code"))
	if r := s.callback(cb); r.status != http.StatusOK {
		t.Fatalf("callback %d %s", r.status, r.body)
	}
	if st := s.status(a); st["connected"] != true {
		t.Errorf("A: %v", st)
	}
	if st := s.status(b); st["connected"] != false || st["status"] != "DISCONNECTED" || st["displayName"] != nil {
		t.Errorf("B sees %v", st)
	}
}
