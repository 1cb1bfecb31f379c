package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", env: map[string]string{}, check: func(t *testing.T, c Config) {
			if c.VaultKVMount != "secret" || c.AppSource != "external_test" || c.PollInterval != time.Minute ||
				c.PollLookback != 7*24*time.Hour || c.TenantClaim != "tenantId" || c.LWATokenURL != "https://api.amazon.com/auth/o2/token" {
				t.Errorf("defaults: %+v", c)
			}
			if c.AppVaultPath() != "keybuzz/ai/amazon_spapi_app_temp" {
				t.Errorf("app path %s", c.AppVaultPath())
			}
			// docs/push.md: the longest a lost notification's event waits.
			if c.PollFallbackInterval != 30*time.Minute {
				t.Errorf("PollFallbackInterval = %s, want 30m (docs/push.md)", c.PollFallbackInterval)
			}
		}},
		{name: "keybuzz app", env: map[string]string{"AMAZON_SPAPI_APP_SOURCE": "keybuzz"}, check: func(t *testing.T, c Config) {
			if c.AppVaultPath() != "keybuzz/ai/amazon_spapi_app" {
				t.Errorf("app path %s", c.AppVaultPath())
			}
		}},
		{name: "seed layout by default", env: map[string]string{}, check: func(t *testing.T, c Config) {
			got := []string{c.AppVaultPathFor("external_test"), c.AppVaultPathFor("keybuzz"), c.TenantVaultPath()}
			want := []string{"keybuzz/ai/amazon_spapi_app_temp", "keybuzz/ai/amazon_spapi_app", "keybuzz/tenants/{tenantId}/amazon"}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("seed paths %q, want %q", got, want)
			}
		}},
		{name: "keybuzz layout", env: map[string]string{"AMAZON_VAULT_LAYOUT": "keybuzz", "AMAZON_SPAPI_APP_SOURCE": "keybuzz"}, check: func(t *testing.T, c Config) {
			got := []string{c.AppVaultPath(), c.AppVaultPathFor("external_test"), c.TenantVaultPath()}
			want := []string{"keybuzz/amazon_spapi/app", "keybuzz/ai/amazon_spapi_app_temp", "keybuzz/tenants/{tenantId}/amazon_spapi"}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("keybuzz paths %q, want %q", got, want)
			}
		}},
		{name: "bad layout", env: map[string]string{"AMAZON_VAULT_LAYOUT": "new"}, wantErr: "AMAZON_VAULT_LAYOUT"},
		{name: "bad source", env: map[string]string{"AMAZON_SPAPI_APP_SOURCE": "prod"}, wantErr: "AMAZON_SPAPI_APP_SOURCE"},
		{name: "bad interval", env: map[string]string{"MARKETPLACE_POLL_INTERVAL_SECONDS": "-3"}, wantErr: "MARKETPLACE_POLL_INTERVAL_SECONDS"},
		{name: "bad mock", env: map[string]string{"AMAZON_USE_MOCK": "maybe"}, wantErr: "AMAZON_USE_MOCK"},
		{name: "bad url", env: map[string]string{"AMAZON_SPAPI_ENDPOINT": "ftp://x"}, wantErr: "AMAZON_SPAPI_ENDPOINT"},
		{name: "bad vault auth", env: map[string]string{"VAULT_AUTH_METHOD": "ldap"}, wantErr: "VAULT_AUTH_METHOD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestRequire(t *testing.T) {
	c, _ := Load(env(map[string]string{}))
	if err := c.RequireStore(); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || !strings.Contains(err.Error(), "VAULT_TOKEN") {
		t.Errorf("RequireStore = %v", err)
	}
	if err := c.RequireAuth(); err == nil {
		t.Error("RequireAuth accepted no verifier")
	}
	c, _ = Load(env(map[string]string{"AUTH_JWT_HS256_SECRET": "short", "AUTH_JWT_ISSUER": "i", "AUTH_JWT_AUDIENCE": "a"}))
	if err := c.RequireAuth(); err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Errorf("short secret: %v", err)
	}
	if err := c.RequireQueue(); err == nil {
		t.Error("RequireQueue accepted no queue")
	}
}
