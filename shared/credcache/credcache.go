// Package credcache serves the application's and the tenants' credentials
// from memory in front of a credential store (vaultstore.Store), so that a
// warm Lambda container reads Vault at most once per TTL and credentials.
//
// One policy for both kinds: an entry lives for the TTL given to New; errors
// are never cached; writes through the cache keep it coherent (a rotated
// refresh token is cached with its new version, a replaced or deleted
// tenant secret is dropped); ForgetApp and ForgetTenant drop entries
// explicitly (after LWA answers invalid_client, or a check-and-set write
// loses to a reconnect). The lock is never held during a store call, so a
// slow Vault blocks no other tenant.
package credcache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// Store is the credential store the cache wraps.
type Store interface {
	App(ctx context.Context) (marketplace.AppCredentials, error)
	AppFor(ctx context.Context, source marketplace.AppSource) (marketplace.AppCredentials, error)
	Tenant(ctx context.Context, tenantID string) (marketplace.TenantCredentials, error)
	PutTenant(ctx context.Context, tenantID string, tc marketplace.TenantCredentials) (string, error)
	UpdateRefreshToken(ctx context.Context, tenantID string, tc marketplace.TenantCredentials, token secret.Value) (int, error)
	DeleteTenant(ctx context.Context, tenantID string) error
}

// DefaultTTL bounds how long a rotated client secret or a reconnect made in
// another container can go unseen (invalid_client and invalid_grant also
// drop entries at once).
const DefaultTTL = 5 * time.Minute

// maxTenants bounds the memory of a container that served many tenants.
const maxTenants = 10_000

// Cache is a Store that remembers what it read.
type Cache struct {
	store Store
	ttl   time.Duration
	now   func() time.Time

	mu      sync.Mutex
	app     *entry[marketplace.AppCredentials]
	apps    map[marketplace.AppSource]entry[marketplace.AppCredentials]
	tenants map[string]entry[marketplace.TenantCredentials]
}

type entry[T any] struct {
	v       T
	expires time.Time
}

// Option configures a Cache.
type Option func(*Cache)

// WithTTL sets how long an entry lives (default DefaultTTL; a TTL <= 0
// keeps it).
func WithTTL(ttl time.Duration) Option {
	return func(c *Cache) {
		if ttl > 0 {
			c.ttl = ttl
		}
	}
}

// WithClock sets the clock of expiries (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *Cache) {
		if now != nil {
			c.now = now
		}
	}
}

// New wraps store.
func New(store Store, opts ...Option) *Cache {
	c := &Cache{store: store, ttl: DefaultTTL, now: time.Now, tenants: map[string]entry[marketplace.TenantCredentials]{},
		apps: map[marketplace.AppSource]entry[marketplace.AppCredentials]{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// App returns the application's credentials, from memory within the TTL.
func (c *Cache) App(ctx context.Context) (marketplace.AppCredentials, error) {
	c.mu.Lock()
	if a := c.app; a != nil && c.now().Before(a.expires) {
		c.mu.Unlock()
		return a.v, nil
	}
	c.mu.Unlock()
	app, err := c.store.App(ctx)
	if err != nil {
		return marketplace.AppCredentials{}, err
	}
	c.mu.Lock()
	c.app = &entry[marketplace.AppCredentials]{app, c.now().Add(c.ttl)}
	c.mu.Unlock()
	return app, nil
}

// AppFor returns the credentials of the application source names (the one
// that authorized a connection), from memory within the TTL.
func (c *Cache) AppFor(ctx context.Context, source marketplace.AppSource) (marketplace.AppCredentials, error) {
	c.mu.Lock()
	if a, ok := c.apps[source]; ok && c.now().Before(a.expires) {
		c.mu.Unlock()
		return a.v, nil
	}
	c.mu.Unlock()
	app, err := c.store.AppFor(ctx, source)
	if err != nil {
		return marketplace.AppCredentials{}, err
	}
	c.mu.Lock()
	c.apps[source] = entry[marketplace.AppCredentials]{app, c.now().Add(c.ttl)}
	c.mu.Unlock()
	return app, nil
}

// Tenant returns a tenant's credentials, from memory within the TTL.
func (c *Cache) Tenant(ctx context.Context, tenantID string) (marketplace.TenantCredentials, error) {
	c.mu.Lock()
	if t, ok := c.tenants[tenantID]; ok && c.now().Before(t.expires) {
		c.mu.Unlock()
		return t.v, nil
	}
	c.mu.Unlock()
	tc, err := c.store.Tenant(ctx, tenantID)
	if err != nil {
		return marketplace.TenantCredentials{}, err
	}
	c.putTenant(tenantID, tc)
	return tc, nil
}

// PutTenant writes a tenant's credentials and drops the cached ones (the
// next read learns the new version).
func (c *Cache) PutTenant(ctx context.Context, tenantID string, tc marketplace.TenantCredentials) (string, error) {
	path, err := c.store.PutTenant(ctx, tenantID, tc)
	c.ForgetTenant(tenantID)
	return path, err
}

// UpdateRefreshToken writes a rotated refresh token with check-and-set on
// tc.Version and caches the result; on a lost check-and-set
// (marketplace.ErrConflict) the entry is dropped, so Vault's secret wins.
func (c *Cache) UpdateRefreshToken(ctx context.Context, tenantID string, tc marketplace.TenantCredentials, token secret.Value) (int, error) {
	v, err := c.store.UpdateRefreshToken(ctx, tenantID, tc, token)
	if err != nil {
		if errors.Is(err, marketplace.ErrConflict) {
			c.ForgetTenant(tenantID)
		}
		return 0, err
	}
	tc.RefreshToken, tc.Version = token, v
	c.putTenant(tenantID, tc)
	return v, nil
}

// DeleteTenant removes a tenant's credentials from the store and the cache.
func (c *Cache) DeleteTenant(ctx context.Context, tenantID string) error {
	err := c.store.DeleteTenant(ctx, tenantID)
	c.ForgetTenant(tenantID)
	return err
}

// ForgetApp drops the cached application credentials: the next App reads
// the store (after LWA answered invalid_client: the secret was rotated).
func (c *Cache) ForgetApp() {
	c.mu.Lock()
	c.app = nil
	clear(c.apps)
	c.mu.Unlock()
}

// ForgetTenant drops a tenant's cached credentials.
func (c *Cache) ForgetTenant(tenantID string) {
	c.mu.Lock()
	delete(c.tenants, tenantID)
	c.mu.Unlock()
}

func (c *Cache) putTenant(tenantID string, tc marketplace.TenantCredentials) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.tenants) >= maxTenants {
		for k, v := range c.tenants {
			if !now.Before(v.expires) {
				delete(c.tenants, k)
			}
		}
	}
	c.tenants[tenantID] = entry[marketplace.TenantCredentials]{tc, now.Add(c.ttl)}
}
