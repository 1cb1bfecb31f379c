package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
)

func TestRun(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{name: "local defaults", args: []string{"-tenant", "tenant-demo-0001"}, env: map[string]string{}},
		{name: "dev.env values", args: []string{"-tenant", "t1", "-ttl", "5m"}, env: map[string]string{
			"AUTH_JWT_HS256_SECRET": strings.Repeat("s", 64), "AUTH_JWT_ISSUER": "iss-x",
			"AUTH_JWT_AUDIENCE": "aud-y", "AUTH_TENANT_CLAIM": "org",
		}},
		{name: "no tenant", args: nil, env: map[string]string{}, wantErr: "-tenant"},
		{name: "invalid tenant", args: []string{"-tenant", "../x"}, env: map[string]string{}, wantErr: "invalid tenant"},
		{name: "tenant too long", args: []string{"-tenant", strings.Repeat("a", 129)}, env: map[string]string{}, wantErr: "invalid tenant"},
		{name: "negative ttl", args: []string{"-tenant", "t1", "-ttl", "-1h"}, env: map[string]string{}, wantErr: "ttl"},
		{name: "stray argument", args: []string{"-tenant", "t1", "extra"}, env: map[string]string{}, wantErr: "unexpected"},
		{name: "JWKS only", args: []string{"-tenant", "t1"}, env: map[string]string{"AUTH_JWKS_URL": "https://idp.example/jwks"}, wantErr: "AUTH_JWKS_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			getenv := func(k string) string { return tt.env[k] }
			err := run(tt.args, getenv, &out, &errOut, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %q", err, tt.wantErr)
				}
				if out.Len() != 0 {
					t.Errorf("stdout %q on error", out.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tok, ok := strings.CutSuffix(out.String(), "\n")
			if !ok || strings.ContainsAny(tok, " \n") || strings.Count(tok, ".") != 2 {
				t.Fatalf("stdout %q is not exactly one token and a newline", out.String())
			}
			// The local run loads the same environment (with config's defaults
			// where dev.env is silent) and must accept the token.
			cfg, err := config.Load(func(k string) string {
				if v := tt.env[k]; v != "" {
					return v
				}
				return localDefaults[k]
			})
			if err != nil {
				t.Fatal(err)
			}
			v, err := auth.NewVerifier(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/api/v1/marketplaces/amazon/status", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			c, err := v.Authenticate(r)
			if err != nil {
				t.Fatalf("local run refuses the token: %v", err)
			}
			if want := tt.args[1]; c.TenantID != want {
				t.Errorf("tenant %q, want %q", c.TenantID, want)
			}
		})
	}
}
