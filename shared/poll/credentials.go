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
)

// SecretStore is what the poller needs of the credential store: reads
// (cached by credcache.Cache in a Lambda), the write-back of a rotated
// refresh token, and the explicit invalidations.
type SecretStore interface {
	AppFor(ctx context.Context, source marketplace.AppSource) (marketplace.AppCredentials, error)
	Tenant(ctx context.Context, tenantID string) (marketplace.TenantCredentials, error)
	UpdateRefreshToken(ctx context.Context, tenantID string, tc marketplace.TenantCredentials, token secret.Value) (int, error)
	ForgetApp()
	ForgetTenant(tenantID string)
}

// tokenSources keeps one LWA access-token source per tenant for the life of
// a warm container, so a warm poll makes no LWA call; rotated refresh
// tokens are written back through the store.
type tokenSources struct {
	store SecretStore
	lwa   *lwa.Client
	early time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	sources map[string]*tenantSource
}

// tenantSource is a tenant's cached access-token source and what it was
// built from, to notice a reconnect (a new refresh token) or a new app secret.
type tenantSource struct {
	*lwa.CachedSource
	rotating *lwa.RotatingSource
	initial  secret.Value
	appKey   string
}

func newTokenSources(store SecretStore, client *lwa.Client, early time.Duration, log *slog.Logger) *tokenSources {
	return &tokenSources{store: store, lwa: client, early: early, log: log, sources: map[string]*tenantSource{}}
}

// get returns the tenant's cached access-token source, built with
// context.Background() so that later refreshes outlive this invocation.
func (c *tokenSources) get(tenantID string, app marketplace.AppCredentials, tc marketplace.TenantCredentials) *tenantSource {
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
	rot := c.lwa.NewRotatingSource(context.Background(), lwa.App{ClientID: app.ClientID, ClientSecret: app.ClientSecret}, tc.RefreshToken,
		lwa.WithPersist(persist), lwa.WithPersistError(onErr))
	s := &tenantSource{CachedSource: lwa.NewCachedSource(rot, lwa.WithEarlyExpiry(c.early)), rotating: rot, initial: tc.RefreshToken, appKey: appKey}
	c.sources[tenantID] = s
	return s
}

// persistRotated writes a rotated refresh token back with check-and-set on
// the version read; on a conflict (a reconnect wrote a new secret
// meanwhile) the store drops its cached copy and Vault's secret wins.
func (c *tokenSources) persistRotated(ctx context.Context, tenantID string, tok secret.Value) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tc, err := c.store.Tenant(ctx, tenantID)
	if err != nil {
		return err
	}
	if tc.RefreshToken == tok {
		return nil
	}
	if _, err := c.store.UpdateRefreshToken(ctx, tenantID, tc, tok); err != nil && !errors.Is(err, marketplace.ErrConflict) {
		return err
	}
	return nil
}

var _ oauth2.TokenSource = (*tenantSource)(nil)
