package credcache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// memStore is an in-memory credential store that counts reads.
type memStore struct {
	app        marketplace.AppCredentials
	appErr     error
	tenants    map[string]marketplace.TenantCredentials
	appReads   int
	tenantRead int
}

func (m *memStore) App(context.Context) (marketplace.AppCredentials, error) {
	m.appReads++
	return m.app, m.appErr
}

func (m *memStore) AppFor(ctx context.Context, _ marketplace.AppSource) (marketplace.AppCredentials, error) {
	return m.App(ctx)
}

func (m *memStore) Tenant(_ context.Context, id string) (marketplace.TenantCredentials, error) {
	m.tenantRead++
	tc, ok := m.tenants[id]
	if !ok {
		return tc, marketplace.ErrNoCredentials
	}
	return tc, nil
}

func (m *memStore) PutTenant(_ context.Context, id string, tc marketplace.TenantCredentials) (string, error) {
	tc.Version = m.tenants[id].Version + 1
	m.tenants[id] = tc
	return "keybuzz/tenants/" + id + "/amazon", nil
}

func (m *memStore) UpdateRefreshToken(_ context.Context, id string, tc marketplace.TenantCredentials, tok secret.Value) (int, error) {
	cur := m.tenants[id]
	if cur.Version != tc.Version {
		return 0, marketplace.ErrConflict
	}
	cur.RefreshToken, cur.Version = tok, cur.Version+1
	m.tenants[id] = cur
	return cur.Version, nil
}

func (m *memStore) DeleteTenant(_ context.Context, id string) error {
	delete(m.tenants, id)
	return nil
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	type env struct {
		store *memStore
		cache *Cache
		now   *time.Time
	}
	cases := []struct {
		name string
		run  func(t *testing.T, e env)
	}{
		{"app read once within the ttl, again after it", func(t *testing.T, e env) {
			for range 3 {
				if app, err := e.cache.App(ctx); err != nil || app.ClientID != "one" {
					t.Fatalf("App = %+v, %v", app, err)
				}
			}
			e.store.app.ClientID = "two"
			if e.store.appReads != 1 {
				t.Fatalf("%d app reads within the ttl, want 1", e.store.appReads)
			}
			*e.now = e.now.Add(time.Minute)
			if app, _ := e.cache.App(ctx); app.ClientID != "two" {
				t.Fatalf("after the ttl: %s", app.ClientID)
			}
		}},
		{"app errors are not cached", func(t *testing.T, e env) {
			e.store.appErr = marketplace.ErrAppMisconfigured
			if _, err := e.cache.App(ctx); !errors.Is(err, marketplace.ErrAppMisconfigured) {
				t.Fatalf("err = %v", err)
			}
			e.store.appErr = nil
			if app, err := e.cache.App(ctx); err != nil || app.ClientID != "one" {
				t.Fatalf("after the error: %+v, %v", app, err)
			}
		}},
		{"ForgetApp reads the rotated secret at once", func(t *testing.T, e env) {
			_, _ = e.cache.App(ctx)
			e.store.app.ClientSecret = "rotated"
			e.cache.ForgetApp()
			if app, _ := e.cache.App(ctx); app.ClientSecret != "rotated" {
				t.Fatal("ForgetApp kept the old secret")
			}
		}},
		{"tenant read once, missing tenant not cached", func(t *testing.T, e env) {
			if _, err := e.cache.Tenant(ctx, "t-2"); !errors.Is(err, marketplace.ErrNoCredentials) {
				t.Fatalf("missing: %v", err)
			}
			_, _ = e.store.PutTenant(ctx, "t-2", marketplace.TenantCredentials{RefreshToken: "Atzr|b"})
			for range 2 {
				if tc, err := e.cache.Tenant(ctx, "t-2"); err != nil || tc.RefreshToken != "Atzr|b" {
					t.Fatalf("Tenant = %v", err)
				}
			}
			if e.store.tenantRead != 2 {
				t.Fatalf("%d tenant reads, want 2 (the miss and one hit)", e.store.tenantRead)
			}
		}},
		{"a rotated token is cached with its new version", func(t *testing.T, e env) {
			tc, _ := e.cache.Tenant(ctx, "t-1")
			v, err := e.cache.UpdateRefreshToken(ctx, "t-1", tc, "Atzr|rotated")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := e.cache.Tenant(ctx, "t-1")
			if got.RefreshToken != "Atzr|rotated" || got.Version != v || e.store.tenantRead != 1 {
				t.Fatalf("after rotation: %v v%d (want v%d), %d reads", got.RefreshToken == "Atzr|rotated", got.Version, v, e.store.tenantRead)
			}
			// A second rotation from the cached value must pass check-and-set.
			if _, err := e.cache.UpdateRefreshToken(ctx, "t-1", got, "Atzr|again"); err != nil {
				t.Fatalf("second rotation: %v", err)
			}
		}},
		{"a lost check-and-set drops the entry so the store wins", func(t *testing.T, e env) {
			tc, _ := e.cache.Tenant(ctx, "t-1")
			_, _ = e.store.PutTenant(ctx, "t-1", marketplace.TenantCredentials{RefreshToken: "Atzr|reconnected"})
			if _, err := e.cache.UpdateRefreshToken(ctx, "t-1", tc, "Atzr|rotated"); !errors.Is(err, marketplace.ErrConflict) {
				t.Fatalf("err = %v, want ErrConflict", err)
			}
			if got, _ := e.cache.Tenant(ctx, "t-1"); got.RefreshToken != "Atzr|reconnected" {
				t.Fatal("the cache kept the stale secret after a conflict")
			}
		}},
		{"PutTenant and DeleteTenant write through", func(t *testing.T, e env) {
			_, _ = e.cache.Tenant(ctx, "t-1")
			if _, err := e.cache.PutTenant(ctx, "t-1", marketplace.TenantCredentials{RefreshToken: "Atzr|new"}); err != nil {
				t.Fatal(err)
			}
			if got, _ := e.cache.Tenant(ctx, "t-1"); got.RefreshToken != "Atzr|new" {
				t.Fatal("PutTenant left the old secret cached")
			}
			if err := e.cache.DeleteTenant(ctx, "t-1"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.cache.Tenant(ctx, "t-1"); !errors.Is(err, marketplace.ErrNoCredentials) {
				t.Fatalf("after DeleteTenant: %v", err)
			}
		}},
		{"ForgetTenant reads the store again", func(t *testing.T, e env) {
			_, _ = e.cache.Tenant(ctx, "t-1")
			e.cache.ForgetTenant("t-1")
			_, _ = e.cache.Tenant(ctx, "t-1")
			if e.store.tenantRead != 2 {
				t.Fatalf("%d reads, want 2", e.store.tenantRead)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
			store := &memStore{
				app:     marketplace.AppCredentials{ClientID: "one", ClientSecret: "s", ApplicationID: "a"},
				tenants: map[string]marketplace.TenantCredentials{"t-1": {RefreshToken: "Atzr|a", Version: 1}},
			}
			c.run(t, env{store: store, cache: New(store, WithTTL(time.Minute), WithClock(func() time.Time { return now })), now: &now})
		})
	}
}
