package connect

import (
	"context"
	"fmt"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// DisconnectResult is the connection after a disconnect; nil when the
// tenant never connected.
type DisconnectResult struct {
	Connection *marketplace.Connection
}

// Disconnect ends the tenant's Amazon connection: its subscriptions are
// ended (Unsubscriber) while its secret still exists, then the connection
// becomes DISABLED ("Disconnected by user"; not polled, inbound addresses
// stopped, seller released), then every version of its Vault secret is
// destroyed. Tickets and messages stay. Calling it again does the same and
// succeeds: a Vault failure after the database step is repaired by a retry.
func (s *Service) Disconnect(ctx context.Context, tenantID string) (DisconnectResult, error) {
	if !marketplace.ValidTenantID(tenantID) {
		return DisconnectResult{}, fmt.Errorf("tenant id: %w", marketplace.ErrBadRequest)
	}
	before, ok, err := s.store.ConnectionByTenant(ctx, tenantID)
	if err != nil {
		return DisconnectResult{}, fmt.Errorf("disconnect: %w", err)
	}
	if ok && before.Status != marketplace.StatusDisabled {
		s.unsubscribe(ctx, before)
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
