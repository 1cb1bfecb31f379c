package vaultstore_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

func TestTenantCredentialsAgainstVault(t *testing.T) {
	ctx := context.Background()
	vc := testenv.Vault(t)
	s := vaultstore.New(vc, "secret", "keybuzz/ai/"+testenv.ID("app"))
	tenant := testenv.ID("tenant")

	if _, err := s.Tenant(ctx, tenant); !errors.Is(err, marketplace.ErrNoCredentials) {
		t.Fatalf("missing secret: %v", err)
	}
	if _, err := s.App(ctx); !errors.Is(err, marketplace.ErrAppMisconfigured) {
		t.Fatalf("missing app: %v", err)
	}
	stored, err := s.PutTenant(ctx, tenant, marketplace.TenantCredentials{RefreshToken: "Atzr|one", SellerID: "A1", MarketplaceID: "A13V1IB3VIYZZH", Region: "eu"})
	path := "keybuzz/tenants/" + tenant + "/amazon"
	if err != nil || stored != "secret/"+path {
		t.Fatalf("put: %q %v", stored, err)
	}
	// The secret sits at the documented KV v2 path.
	raw, err := vc.KVv2("secret").Get(ctx, path)
	if err != nil || raw.Data["refresh_token"] != "Atzr|one" || raw.Data["seller_id"] != "A1" || raw.Data["created_at"] == "" {
		t.Fatalf("raw secret: %v %v", raw, err)
	}
	got, err := s.Tenant(ctx, tenant)
	if err != nil || got.RefreshToken.Reveal() != "Atzr|one" || got.Version != 1 || got.Region != "eu" {
		t.Fatalf("get: %+v %v", got, err)
	}
	// Check-and-set: the first writer wins, a stale version conflicts.
	v2, err := s.UpdateRefreshToken(ctx, tenant, got, secret.Value("Atzr|two"))
	if err != nil || v2 != 2 {
		t.Fatalf("cas update: %d %v", v2, err)
	}
	if _, err := s.UpdateRefreshToken(ctx, tenant, got, secret.Value("Atzr|stale")); !errors.Is(err, marketplace.ErrConflict) {
		t.Fatalf("stale cas: %v", err)
	}
	if got, _ := s.Tenant(ctx, tenant); got.RefreshToken.Reveal() != "Atzr|two" {
		t.Fatalf("after cas: %q", got.RefreshToken.Reveal())
	}
	// A soft delete reads as no credentials; DeleteTenant removes all.
	if err := vc.KVv2("secret").Delete(ctx, path); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tenant(ctx, tenant); !errors.Is(err, marketplace.ErrNoCredentials) {
		t.Fatalf("soft-deleted: %v", err)
	}
	if err := s.DeleteTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutTenant(ctx, "../evil", marketplace.TenantCredentials{RefreshToken: "x"}); !errors.Is(err, marketplace.ErrBadRequest) {
		t.Fatalf("traversal: %v", err)
	}
}

func TestVaultUnreachableIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close()
	vc, err := testenv.Vault(t).Clone()
	if err != nil {
		t.Fatal(err)
	}
	if err := vc.SetAddress(addr); err != nil {
		t.Fatal(err)
	}
	vc.SetMaxRetries(0)
	s := vaultstore.New(vc, "secret", "keybuzz/ai/app")
	if _, err := s.Tenant(context.Background(), "tenant-1"); !errors.Is(err, marketplace.ErrUnavailable) || errors.Is(err, marketplace.ErrNoCredentials) {
		t.Fatalf("tenant: %v", err)
	}
	if _, err := s.App(context.Background()); !errors.Is(err, marketplace.ErrUnavailable) {
		t.Fatalf("app: %v", err)
	}
	if _, err := s.PutTenant(context.Background(), "tenant-1", marketplace.TenantCredentials{RefreshToken: "x"}); !errors.Is(err, marketplace.ErrUnavailable) {
		t.Fatalf("put: %v", err)
	}
}
