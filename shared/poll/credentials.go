package poll

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// SecretStore is the part of vaultstore.Store the poller uses.
type SecretStore interface {
	App(ctx context.Context) (marketplace.AppCredentials, error)
	Tenant(ctx context.Context, tenantID string) (marketplace.TenantCredentials, error)
	UpdateRefreshToken(ctx context.Context, tenantID string, tc marketplace.TenantCredentials, token secret.Value) (int, error)
}

// credentials caches Vault reads per warm container for ttl, and one LWA
// token source per tenant, so a warm poll makes no Vault and no LWA call.
type credentials struct {
	store SecretStore
	lwa   *lwa.Client
	ttl   time.Duration
	early time.Duration
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex
	app     *cached[marketplace.AppCredentials]
	tenants map[string]*cached[marketplace.TenantCredentials]
	sources map[string]*tenantSource
}

type cached[T any] struct {
	v       T
	expires time.Time
}

// tenantSource is a tenant's cached access-token source and what it was
// built from, to notice a reconnect (a new refresh token) or a new app secret.
type tenantSource struct {
	*lwa.CachedSource
	rotating *lwa.RotatingSource
	initial  secret.Value
	appKey   string
}

func newCredentials(store SecretStore, client *lwa.Client, ttl, early time.Duration, now func() time.Time, log *slog.Logger) *credentials {
	return &credentials{store: store, lwa: client, ttl: ttl, early: early, now: now, log: log,
		tenants: map[string]*cached[marketplace.TenantCredentials]{}, sources: map[string]*tenantSource{}}
}

func (c *credentials) appCredentials(ctx context.Context) (marketplace.AppCredentials, error) {
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
	c.app = &cached[marketplace.AppCredentials]{app, c.now().Add(c.ttl)}
	c.mu.Unlock()
	return app, nil
}

func (c *credentials) tenant(ctx context.Context, tenantID string) (marketplace.TenantCredentials, error) {
	c.mu.Lock()
	if t := c.tenants[tenantID]; t != nil && c.now().Before(t.expires) {
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

func (c *credentials) putTenant(tenantID string, tc marketplace.TenantCredentials) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.tenants) > 10_000 { // a container that served many tenants: drop the stale ones
		for k, v := range c.tenants {
			if !now.Before(v.expires) {
				delete(c.tenants, k)
			}
		}
	}
	c.tenants[tenantID] = &cached[marketplace.TenantCredentials]{tc, now.Add(c.ttl)}
}

func (c *credentials) forget(tenantID string) {
	c.mu.Lock()
	delete(c.tenants, tenantID)
	c.mu.Unlock()
}

// tokens returns the tenant's cached access-token source, built with
// context.Background() so that later refreshes outlive this invocation.
func (c *credentials) tokens(tenantID string, app marketplace.AppCredentials, tc marketplace.TenantCredentials) *tenantSource {
	appKey := app.ClientID + "\x00" + app.ClientSecret.Reveal()
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sources[tenantID]; s != nil && s.appKey == appKey &&
		(tc.RefreshToken == s.initial || tc.RefreshToken == s.rotating.RefreshToken()) {
		return s
	}
	persist := func(ctx context.Context, tok secret.Value) error { return c.persistRotated(ctx, tenantID, tok) }
	onErr := func(err error) {
		c.log.Warn("rotated refresh token not saved to Vault; retrying on next refresh", "tenant_id", tenantID, "err", err)
	}
	rot := c.lwa.NewRotatingSource(context.Background(), lwa.App{ClientID: app.ClientID, ClientSecret: app.ClientSecret}, tc.RefreshToken, persist, onErr)
	s := &tenantSource{CachedSource: lwa.NewCachedSource(rot, c.early), rotating: rot, initial: tc.RefreshToken, appKey: appKey}
	c.sources[tenantID] = s
	return s
}

// persistRotated writes a rotated refresh token back to Vault with
// check-and-set on the version read; on a conflict (a reconnect wrote a new
// secret meanwhile) the cache is dropped and Vault's secret wins.
func (c *credentials) persistRotated(ctx context.Context, tenantID string, tok secret.Value) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tc, err := c.tenant(ctx, tenantID)
	if err != nil {
		return err
	}
	if tc.RefreshToken == tok {
		return nil
	}
	v, err := c.store.UpdateRefreshToken(ctx, tenantID, tc, tok)
	if errors.Is(err, vaultstore.ErrConflict) {
		c.forget(tenantID)
		return nil
	}
	if err != nil {
		return err
	}
	tc.RefreshToken, tc.Version = tok, v
	c.putTenant(tenantID, tc)
	return nil
}

var _ oauth2.TokenSource = (*tenantSource)(nil)
