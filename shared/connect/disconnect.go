package connect

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// DisconnectResult is the connection after a disconnect; nil when the
// tenant never connected.
type DisconnectResult struct {
	Connection *marketplace.Connection
}

// DisconnectStore is the part of the database the disconnect route needs.
type DisconnectStore interface {
	ConnectionByTenant(ctx context.Context, tenantID string) (marketplace.Connection, bool, error)
	Disconnect(ctx context.Context, tenantID string) (marketplace.Connection, bool, error)
}

// TenantSecrets destroys a tenant's Vault secret (credcache.Cache).
type TenantSecrets interface {
	DeleteTenant(ctx context.Context, tenantID string) error
}

// DisconnectConfig tunes a Disconnect; zero fields take the defaults.
type DisconnectConfig struct {
	// Unsubscriber ends the connection's Amazon subscriptions first (push);
	// default none.
	Unsubscriber Unsubscriber
	Log          *slog.Logger // default slog.Default()
}

// Disconnect is the disconnect route's flow.
type Disconnect struct {
	store        DisconnectStore
	secrets      TenantSecrets
	unsubscriber Unsubscriber
	log          *slog.Logger
}

// NewDisconnect returns the disconnect flow on store, destroying secrets in
// secrets.
func NewDisconnect(store DisconnectStore, secrets TenantSecrets, cfg DisconnectConfig) *Disconnect {
	return &Disconnect{store: store, secrets: secrets, unsubscriber: cfg.Unsubscriber, log: logOr(cfg.Log)}
}

// Disconnect ends the tenant's Amazon connection: its subscriptions are
// ended (Unsubscriber) while its secret still exists, then the connection
// becomes DISABLED ("Disconnected by user"; not polled, inbound addresses
// stopped, seller released), then every version of its Vault secret is
// destroyed. Tickets and messages stay. Calling it again does the same and
// succeeds: a Vault failure after the database step is repaired by a retry.
func (s *Disconnect) Run(ctx context.Context, tenantID string) (DisconnectResult, error) {
	if !marketplace.ValidTenantID(tenantID) {
		return DisconnectResult{}, fmt.Errorf("tenant id: %w", marketplace.ErrBadRequest)
	}
	before, ok, err := s.store.ConnectionByTenant(ctx, tenantID)
	if err != nil {
		return DisconnectResult{}, fmt.Errorf("disconnect: %w", err)
	}
	if ok && before.Status != marketplace.StatusDisabled {
		unsubscribe(ctx, s.unsubscriber, s.log, before)
	}
	conn, ok, err := s.store.Disconnect(ctx, tenantID)
	if err != nil {
		return DisconnectResult{}, fmt.Errorf("disconnect: %w", err)
	}
	if err := s.secrets.DeleteTenant(ctx, tenantID); err != nil {
		return DisconnectResult{}, fmt.Errorf("disconnect: destroy credentials: %w", err)
	}
	if !ok {
		return DisconnectResult{}, nil
	}
	s.log.InfoContext(ctx, "amazon disconnected", "tenant_id", tenantID, "previous_status", string(before.Status))
	return DisconnectResult{Connection: &conn}, nil
}
