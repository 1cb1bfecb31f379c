package sandbox_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

func TestTokenGrants(t *testing.T) {
	e := start(t)
	s1 := seller1()

	t.Run("authorization_code, form", func(t *testing.T) {
		a := e.postForm(t, "/auth/o2/token", e.clientForm("authorization_code", "code", e.consentCode(t, s1)))
		if a.status != 200 {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
		m := a.json(t)
		if !strings.HasPrefix(m["access_token"].(string), "Atza|") || !strings.HasPrefix(m["refresh_token"].(string), "Atzr|") ||
			m["token_type"] != "bearer" || m["expires_in"] != float64(3600) {
			t.Errorf("answer %v", m)
		}
		if ct := a.header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
			t.Errorf("Content-Type %q", ct)
		}
	})
	t.Run("authorization_code, JSON body", func(t *testing.T) {
		a := e.postJSON(t, http.MethodPost, "/auth/o2/token", map[string]string{
			"grant_type": "authorization_code", "code": e.consentCode(t, s1),
			"client_id": e.cfg.ClientID, "client_secret": e.cfg.ClientSecret,
		})
		if a.status != 200 || a.json(t)["refresh_token"] == nil {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	})
	t.Run("refresh_token returns the same refresh token", func(t *testing.T) {
		rt, _ := e.authorize(t, s1)
		a := e.postForm(t, "/auth/o2/token", e.clientForm("refresh_token", "refresh_token", rt))
		m := a.json(t)
		if a.status != 200 || m["refresh_token"] != rt || !strings.HasPrefix(m["access_token"].(string), "Atza|") {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	})
	t.Run("client_credentials", func(t *testing.T) {
		for _, scope := range []string{"sellingpartnerapi::notifications", "sellingpartnerapi::client_credential:rotation"} {
			a := e.postForm(t, "/auth/o2/token", e.clientForm("client_credentials", "scope", scope))
			m := a.json(t)
			if a.status != 200 || m["refresh_token"] != nil || !strings.HasPrefix(m["access_token"].(string), "Atza|") {
				t.Fatalf("scope %s: status %d: %s", scope, a.status, a.body)
			}
			// a grantless token does not open a seller's orders
			if o := e.get(t, "/orders/2026-01-01/orders/x", m["access_token"].(string)); o.status != 403 {
				t.Errorf("grantless token on getOrder: %d", o.status)
			}
		}
	})
}

func TestTokenErrors(t *testing.T) {
	e := start(t)
	s1 := seller1()
	used := e.consentCode(t, s1)
	if a := e.postForm(t, "/auth/o2/token", e.clientForm("authorization_code", "code", used)); a.status != 200 {
		t.Fatalf("first exchange: %d", a.status)
	}
	old := e.consentCode(t, s1)
	e.clock.Advance(5*time.Minute + time.Second)
	almost := e.consentCode(t, s1)
	e.clock.Advance(5*time.Minute - time.Second)
	revokedSeller := sandbox.SellerID(2)
	revoked, _ := e.authorize(t, revokedSeller)
	e.srv.RevokeSeller(revokedSeller)
	otherRT, _ := e.authorize(t, s1)

	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"missing grant_type", url.Values{"client_id": {e.cfg.ClientID}, "client_secret": {e.cfg.ClientSecret}}, 400, "invalid_request"},
		{"unknown grant", e.clientForm("password"), 400, "unsupported_grant_type"},
		{"missing client_secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {otherRT}, "client_id": {e.cfg.ClientID}}, 400, "invalid_request"},
		{"wrong client secret", func() url.Values {
			f := e.clientForm("refresh_token", "refresh_token", otherRT)
			f.Set("client_secret", "nope")
			return f
		}(), 401, "invalid_client"},
		{"wrong client id", func() url.Values {
			f := e.clientForm("refresh_token", "refresh_token", otherRT)
			f.Set("client_id", "amzn1.application-oa2-client.other")
			return f
		}(), 401, "invalid_client"},
		{"missing code", e.clientForm("authorization_code"), 400, "invalid_request"},
		{"unknown code", e.clientForm("authorization_code", "code", "ANnope"), 400, "invalid_grant"},
		{"reused code", e.clientForm("authorization_code", "code", used), 400, "invalid_grant"},
		{"expired code (5m+1s)", e.clientForm("authorization_code", "code", old), 400, "invalid_grant"},
		{"missing refresh_token", e.clientForm("refresh_token"), 400, "invalid_request"},
		{"unknown refresh token", e.clientForm("refresh_token", "refresh_token", "Atzr|nope"), 400, "invalid_grant"},
		{"revoked refresh token", e.clientForm("refresh_token", "refresh_token", revoked), 400, "invalid_grant"},
		{"missing scope", e.clientForm("client_credentials"), 400, "invalid_request"},
		{"unknown scope", e.clientForm("client_credentials", "scope", "sellingpartnerapi::orders"), 400, "invalid_scope"},
		{"code just before expiry (4m59s) works", e.clientForm("authorization_code", "code", almost), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.postForm(t, "/auth/o2/token", tt.form)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.code == "" {
				return
			}
			m := a.json(t)
			if m["error"] != tt.code || m["error_description"] == "" || len(m) != 2 {
				t.Errorf("body %s, want error %s", a.body, tt.code)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	if rt, _ := e.authorize(t, s1); rt == "" {
		t.Error("other sellers are not affected by a revocation")
	}
}

func TestRotationAndAccessTokenExpiry(t *testing.T) {
	e := start(t)
	s1 := seller1()
	rt, access := e.authorize(t, s1)
	orderPath := "/orders/2026-01-01/orders/000-0000000-0000000"

	e.srv.RotateRefreshTokens(s1, true)
	a := e.postForm(t, "/auth/o2/token", e.clientForm("refresh_token", "refresh_token", rt))
	rotated, _ := a.json(t)["refresh_token"].(string)
	if a.status != 200 || rotated == rt || !strings.HasPrefix(rotated, "Atzr|") {
		t.Fatalf("rotation: %d %s", a.status, a.body)
	}
	for _, tok := range []string{rt, rotated} {
		if a := e.postForm(t, "/auth/o2/token", e.clientForm("refresh_token", "refresh_token", tok)); a.status != 200 {
			t.Errorf("refresh after rotation: %d", a.status)
		}
	}
	e.srv.RotateRefreshTokens(s1, false)
	if a := e.postForm(t, "/auth/o2/token", e.clientForm("refresh_token", "refresh_token", rotated)); a.json(t)["refresh_token"] != rotated {
		t.Errorf("rotation off still rotates")
	}

	if a := e.get(t, orderPath, access); a.status != 404 {
		t.Fatalf("fresh token: %d", a.status)
	}
	e.clock.Advance(time.Hour)
	a = e.get(t, orderPath, access)
	if a.status != 403 || !strings.Contains(string(a.body), "has expired") {
		t.Errorf("token after 1h: %d %s", a.status, a.body)
	}
	secrets := strings.Join(e.srv.IssuedSecrets(), "\n")
	for _, s := range []string{rt, rotated, access} {
		if !strings.Contains(secrets, s) {
			t.Errorf("IssuedSecrets lacks %.8s…", s)
		}
	}
}

// A seller who removes the app: its refresh tokens answer invalid_grant
// and the access tokens issued before stop working at once.
func TestRevokeSellerEndsItsAccessTokens(t *testing.T) {
	e := start(t)
	s := sandbox.SellerID(2)
	_, access := e.authorize(t, s)
	path := "/orders/2026-01-01/orders?marketplaceIds=A13V1IB3VIYZZH&lastUpdatedAfter=2026-01-01T00:00:00Z"
	if a := e.call(t, "GET", path, access, nil); a.status != http.StatusOK {
		t.Fatalf("before the revocation: %d %s", a.status, a.body)
	}
	e.srv.RevokeSeller(s)
	if a := e.call(t, "GET", path, access, nil); a.status != http.StatusForbidden {
		t.Fatalf("after the revocation: %d %s, want 403", a.status, a.body)
	}
}
