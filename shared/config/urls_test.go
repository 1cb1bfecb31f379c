package config

import (
	"strings"
	"testing"
)

// Outside loopback, LWA, JWKS, Seller Central, SP-API and the frontend's
// URLs must be https; loopback http (the local stack) is allowed.
func TestLoadRefusesPlainHTTPOutsideLoopback(t *testing.T) {
	for _, k := range []string{"AMAZON_LWA_TOKEN_URL", "AUTH_JWKS_URL", "AMAZON_SELLER_CENTRAL_URL", "AMAZON_SPAPI_ENDPOINT",
		"FRONTEND_RETURN_URL", "FRONTEND_LOGIN_URL"} {
		for _, tc := range []struct {
			url string
			ok  bool
		}{
			{"https://example.test/x", true},
			{"http://127.0.0.1:4580/x", true},
			{"http://localhost:3000/", true},
			{"http://[::1]:3000/", true},
			{"http://example.test/x", false},
			{"http://10.0.0.5/x", false},
			{"http://127.0.0.1.example.test/x", false},
			{"ftp://example.test/x", false},
		} {
			_, err := Load(func(name string) string {
				if name == k {
					return tc.url
				}
				return ""
			})
			if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), k)) {
				t.Errorf("%s=%s: %v", k, tc.url, err)
			}
		}
	}
	// Vault inside a VPC may be plain http.
	if _, err := Load(func(k string) string {
		if k == "VAULT_ADDR" {
			return "http://vault.internal:8200"
		}
		return ""
	}); err != nil {
		t.Errorf("VAULT_ADDR over http: %v", err)
	}
}

func TestFrontendReturnHosts(t *testing.T) {
	c, err := Load(func(k string) string {
		return map[string]string{"FRONTEND_RETURN_URL": "https://app.keybuzz.io/settings", "FRONTEND_RETURN_HOSTS": " Admin.keybuzz.io , x.test:8443 "}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.FrontendReturnHosts, ","); got != "admin.keybuzz.io,x.test:8443,app.keybuzz.io" || c.FrontendLoginURL != "https://app.keybuzz.io/settings" {
		t.Errorf("hosts %s, login %s", got, c.FrontendLoginURL)
	}
	if _, err := Load(func(k string) string { return map[string]string{"FRONTEND_RETURN_HOSTS": "evil.test/path"}[k] }); err == nil {
		t.Error("a host with a path was accepted")
	}
}
