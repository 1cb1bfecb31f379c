package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// TestUniqueViolations: a unique index a write runs into becomes the named
// error of that write, and another failure does not.
func TestUniqueViolations(t *testing.T) {
	store, pool, _ := newStore(t)
	ctx := context.Background()
	ids := addConnections(t, pool, 2)

	if err := store.SaveSubscription(ctx, ids[0], "sub-1", "dest-1"); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveSubscription(ctx, ids[1], "sub-1", "dest-1"); !errors.Is(err, marketplace.ErrBadRequest) {
		t.Fatalf("second connection with the same subscription id: %v, want ErrBadRequest", err)
	}

	seller := marketplace.Connected{DisplayName: "Seller", Region: "eu", MarketplaceID: "A13V1IB3VIYZZH", SellingPartnerID: "ASELLERUNIQUE1", VaultPath: "p",
		AppSource: marketplace.AppExternalTest}
	if _, err := store.MarkConnected(ctx, ids[0], seller); err != nil {
		t.Fatal(err)
	}
	_, err := store.MarkConnected(ctx, ids[1], seller)
	if !errors.Is(err, marketplace.ErrSellerTaken) || errors.Is(err, marketplace.ErrBadRequest) {
		t.Fatalf("second connection of the same seller: %v, want ErrSellerTaken", err)
	}
	if _, err := store.MarkConnected(ctx, "no-such-connection", seller); !errors.Is(err, marketplace.ErrNotFound) {
		t.Fatalf("unknown connection: %v, want ErrNotFound", err)
	}
}
