package vaultstore_test

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// The Vault secrets KeyBuzz reads, transcribed in testdata/contract/vault.json.
type secretContract struct {
	Fields    []string `json:"fields"`
	Optional  []string `json:"optional"`
	Additions []string `json:"additions"`
}

func loadVaultContract(t *testing.T) (app, tenant secretContract) {
	t.Helper()
	b, err := os.ReadFile("../../testdata/contract/vault.json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ App, Tenant secretContract }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.App.Fields) == 0 || len(c.Tenant.Fields) == 0 {
		t.Fatal("vault.json lists no field")
	}
	return c.App, c.Tenant
}

// holdFields fails on a field of the contract missing or empty, and on a
// field neither the contract's nor a declared addition.
func holdFields(t *testing.T, what string, data map[string]any, c secretContract) {
	t.Helper()
	for _, f := range c.Fields {
		if s, _ := data[f].(string); s == "" {
			t.Errorf("%s: field %s missing or empty", what, f)
		}
	}
	var keys []string
	for k := range data {
		keys = append(keys, k)
		if !slices.Contains(c.Fields, k) && !slices.Contains(c.Optional, k) && !slices.Contains(c.Additions, k) {
			t.Errorf("%s: field %s is not in the contract", what, k)
		}
	}
	sort.Strings(keys)
	t.Logf("%s fields: %v", what, keys)
}

var (
	awsRegionRe     = regexp.MustCompile(`^[a-z]{2}-[a-z]+-[0-9]$`)
	marketplaceIDRe = regexp.MustCompile(`^A[0-9A-Z]{9,14}$`)
)

func TestWrittenSecretsHoldTheSeedsFields(t *testing.T) {
	appC, tenantC := loadVaultContract(t)
	ctx := context.Background()
	vc := testenv.Vault(t)
	appPath := "keybuzz/test/" + testenv.ID("app")
	s := vaultstore.New(vc, "secret", appPath)
	tenant := testenv.ID("tenant")

	if err := s.PutApp(ctx, marketplace.AppCredentials{ClientID: "amzn1.application-oa2-client.x", ClientSecret: "s3cr3t",
		ApplicationID: "amzn1.sp.solution.x", RedirectURI: "https://api.keybuzz.io/cb", Region: "eu"}); err != nil {
		t.Fatal(err)
	}
	app, err := vc.KVv2("secret").Get(ctx, appPath)
	if err != nil {
		t.Fatal(err)
	}
	holdFields(t, "app", app.Data, appC)
	if app.Data["region"] != "eu-west-1" {
		t.Errorf("app region %v, want the AWS region eu-west-1", app.Data["region"])
	}

	created := time.Date(2026, 12, 1, 9, 30, 0, 123e6, time.UTC)
	stored, err := s.PutTenant(ctx, tenant, marketplace.TenantCredentials{RefreshToken: "Atzr|one", SellerID: "A2SELLER",
		MarketplaceID: "A13V1IB3VIYZZH", MarketplaceIDs: []string{"A1RKKUPIHCS9HS", "A13V1IB3VIYZZH", "A1PA6795UKMFR9"},
		Region: "eu", CreatedAt: created})
	if err != nil {
		t.Fatal(err)
	}
	if stored != "secret/keybuzz/tenants/"+tenant+"/amazon" {
		t.Errorf("vaultPath %q, want the seed's secret/keybuzz/tenants/<id>/amazon", stored)
	}
	raw, err := vc.KVv2("secret").Get(ctx, "keybuzz/tenants/"+tenant+"/amazon")
	if err != nil {
		t.Fatal(err)
	}
	d := raw.Data
	holdFields(t, "tenant", d, tenantC)
	if r, _ := d["region"].(string); !awsRegionRe.MatchString(r) || r != "eu-west-1" {
		t.Errorf("tenant region %q, want the AWS region eu-west-1", r)
	}
	if m, _ := d["marketplace_id"].(string); !marketplaceIDRe.MatchString(m) || m != "A13V1IB3VIYZZH" {
		t.Errorf("marketplace_id %q, want one id, the primary A13V1IB3VIYZZH", m)
	}
	if d["marketplace_ids"] != "A13V1IB3VIYZZH,A1RKKUPIHCS9HS,A1PA6795UKMFR9" {
		t.Errorf("marketplace_ids %v", d["marketplace_ids"])
	}
	if d["created_at"] != "2026-12-01T09:30:00.123Z" {
		t.Errorf("created_at %v, want ISO 8601 as the seed writes it", d["created_at"])
	}
}

// TestSecretsOfEitherFormRead: the connector's older secrets (region "eu",
// a comma-separated marketplace_id), the seed's and KeyBuzz's newer layout
// all read; a rotated refresh token is written back in the seed's form.
func TestSecretsOfEitherFormRead(t *testing.T) {
	_, tenantC := loadVaultContract(t)
	ctx := context.Background()
	vc := testenv.Vault(t)
	kv := vc.KVv2("secret")

	older := testenv.ID("tenant")
	if _, err := kv.Put(ctx, "keybuzz/tenants/"+older+"/amazon", map[string]any{"refresh_token": "Atzr|old", "seller_id": "A1",
		"marketplace_id": "A13V1IB3VIYZZH,A1RKKUPIHCS9HS", "region": "eu", "created_at": "2026-11-27T10:00:00Z"}); err != nil {
		t.Fatal(err)
	}
	s := vaultstore.New(vc, "secret", "keybuzz/test/"+testenv.ID("app"))
	got, err := s.Tenant(ctx, older)
	if err != nil || got.MarketplaceID != "A13V1IB3VIYZZH" || !slices.Equal(got.Marketplaces(), []string{"A13V1IB3VIYZZH", "A1RKKUPIHCS9HS"}) ||
		got.Region != "eu" || !got.CreatedAt.Equal(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("older secret: %+v %v", got, err)
	}
	if _, err := s.UpdateRefreshToken(ctx, older, got, secret.Value("Atzr|rotated")); err != nil {
		t.Fatal(err)
	}
	raw, err := kv.Get(ctx, "keybuzz/tenants/"+older+"/amazon")
	if err != nil {
		t.Fatal(err)
	}
	holdFields(t, "rewritten older secret", raw.Data, tenantC)
	if raw.Data["marketplace_id"] != "A13V1IB3VIYZZH" || raw.Data["region"] != "eu-west-1" || raw.Data["marketplace_ids"] != "A13V1IB3VIYZZH,A1RKKUPIHCS9HS" {
		t.Errorf("rewritten older secret %v", raw.Data)
	}

	// KeyBuzz's newer layout, as its backend writes it.
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"AMAZON_VAULT_LAYOUT": "keybuzz", "AMAZON_SPAPI_APP_SOURCE": "keybuzz"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	newer := testenv.ID("tenant")
	if _, err := kv.Put(ctx, "keybuzz/tenants/"+newer+"/amazon_spapi", map[string]any{"refresh_token": "Atzr|new", "seller_id": "A2",
		"marketplace_id": "A13V1IB3VIYZZH", "region": "eu-west-1", "created_at": "2026-01-22T04:27:27.123Z"}); err != nil {
		t.Fatal(err)
	}
	appPath := cfg.AppVaultPath()
	if appPath != "keybuzz/amazon_spapi/app" {
		t.Fatalf("keybuzz layout app path %s", appPath)
	}
	// A path of this test's own, so parallel runs sharing Vault do not meet.
	appPath = "keybuzz/test/" + testenv.ID("amazon_spapi_app")
	if _, err := kv.Put(ctx, appPath, map[string]any{"client_id": "c", "client_secret": "s", "application_id": "a",
		"redirect_uri": "https://api.keybuzz.io/cb", "login_uri": "https://app.keybuzz.io/amazon/login", "region": "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	ks := vaultstore.New(vc, "secret", appPath, vaultstore.WithTenantPath(cfg.TenantVaultPath()))
	tc, err := ks.Tenant(ctx, newer)
	if err != nil || tc.RefreshToken.Reveal() != "Atzr|new" || tc.MarketplaceID != "A13V1IB3VIYZZH" || tc.Region != "eu" ||
		!tc.CreatedAt.Equal(time.Date(2026, 1, 22, 4, 27, 27, 123e6, time.UTC)) {
		t.Fatalf("newer tenant secret: %+v %v", tc, err)
	}
	app, err := ks.App(ctx)
	if err != nil || app.Region != "eu" || app.LoginURI != "https://app.keybuzz.io/amazon/login" || app.RedirectURI != "https://api.keybuzz.io/cb" {
		t.Fatalf("newer app secret: %+v %v", app, err)
	}
	if p, err := ks.PutTenant(ctx, newer, tc); err != nil || p != "secret/keybuzz/tenants/"+newer+"/amazon_spapi" {
		t.Fatalf("put in the keybuzz layout: %q %v", p, err)
	}
}
