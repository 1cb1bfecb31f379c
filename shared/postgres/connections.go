package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

const connectionColumns = `"id", "tenantId", "status", COALESCE("displayName", ''), COALESCE("region", ''),
	COALESCE("marketplaceId", ''), COALESCE("sellingPartnerId", ''), COALESCE("vaultPath", ''),
	"lastSyncAt", COALESCE("lastError", ''), "connectedAt", "createdAt", "updatedAt"`

func scanConnection(row pgx.Row) (marketplace.Connection, error) {
	var c marketplace.Connection
	err := row.Scan(&c.ID, &c.TenantID, &c.Status, &c.DisplayName, &c.Region, &c.MarketplaceID,
		&c.SellingPartnerID, &c.VaultPath, &c.LastSyncAt, &c.LastError, &c.ConnectedAt, &c.CreatedAt, &c.UpdatedAt)
	return c, err
}

// BeginConnect creates the tenant's Amazon connection or, if it exists,
// marks it PENDING unless it is already CONNECTED (reconnecting a connected
// seller keeps polling until the new consent completes), records the hashed
// OAuth state bound to it and drops the tenant's expired states: one
// statement, so one round trip, atomic.
func (s *Store) BeginConnect(ctx context.Context, tenantID, stateHash string, expiresAt time.Time) (marketplace.Connection, error) {
	c, err := scanConnection(s.pool.QueryRow(ctx, `
		WITH conn AS (
			INSERT INTO "MarketplaceConnection" ("tenantId", "type", "status")
			VALUES ($1, $2, 'PENDING')
			ON CONFLICT ("tenantId", "type") DO UPDATE SET
				"status" = CASE WHEN "MarketplaceConnection"."status" = 'CONNECTED' THEN 'CONNECTED' ELSE 'PENDING' END,
				"updatedAt" = $5
			RETURNING *
		), state AS (
			INSERT INTO "MarketplaceOAuthState" ("stateHash", "tenantId", "connectionId", "expiresAt")
			SELECT $3, $1, conn."id", $4 FROM conn
		), expired AS (
			DELETE FROM "MarketplaceOAuthState" WHERE "tenantId" = $1 AND "expiresAt" < $5
		)
		SELECT `+connectionColumns+` FROM conn`, tenantID, marketplace.Type, stateHash, expiresAt, s.now()))
	if err != nil {
		return marketplace.Connection{}, unavailable("begin connect", err)
	}
	return c, nil
}

// ConsumeState marks the state used, atomically: of two concurrent callbacks
// with the same state only one succeeds. Unknown, used or expired states are
// marketplace.ErrInvalidState.
func (s *Store) ConsumeState(ctx context.Context, stateHash string) (marketplace.StateClaim, error) {
	var sc marketplace.StateClaim
	err := s.pool.QueryRow(ctx, `
		UPDATE "MarketplaceOAuthState" SET "consumedAt" = $2
		WHERE "stateHash" = $1 AND "consumedAt" IS NULL AND "expiresAt" > $2
		RETURNING "tenantId", "connectionId"`, stateHash, s.now()).Scan(&sc.TenantID, &sc.ConnectionID)
	if errors.Is(err, pgx.ErrNoRows) {
		return marketplace.StateClaim{}, fmt.Errorf("consume state: %w", marketplace.ErrInvalidState)
	}
	if err != nil {
		return marketplace.StateClaim{}, unavailable("consume state", err)
	}
	return sc, nil
}

// MarkConnected sets the connection CONNECTED (the secret is already in
// Vault), clears its error and makes it due for polling at once. A seller
// reconnecting after a revocation starts from its stored cursor.
func (s *Store) MarkConnected(ctx context.Context, connectionID string, c marketplace.Connected) (marketplace.Connection, error) {
	conn, err := scanConnection(s.pool.QueryRow(ctx, `
		UPDATE "MarketplaceConnection" SET
			"status" = 'CONNECTED', "displayName" = $2, "region" = $3, "marketplaceId" = $4,
			"sellingPartnerId" = $5, "vaultPath" = $6, "lastError" = NULL,
			"connectedAt" = $7, "nextPollAt" = $7, "pollClaimedUntil" = NULL, "updatedAt" = $7
		WHERE "id" = $1
		RETURNING `+connectionColumns,
		connectionID, c.DisplayName, c.Region, c.MarketplaceID, c.SellingPartnerID, c.VaultPath, s.now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return marketplace.Connection{}, fmt.Errorf("mark connected: %w", marketplace.ErrNotFound)
	}
	if err != nil {
		return marketplace.Connection{}, unavailable("mark connected", err)
	}
	return conn, nil
}

// RecordConnectError stores a failure of the Connect flow on the connection
// (a code such as "Token exchange failed: invalid_grant", never a secret).
func (s *Store) RecordConnectError(ctx context.Context, connectionID, message string) error {
	_, err := s.pool.Exec(ctx, `UPDATE "MarketplaceConnection" SET "lastError" = $2, "updatedAt" = $3 WHERE "id" = $1`,
		connectionID, message, s.now())
	return unavailable("record connect error", err)
}

// ConnectionByTenant returns the tenant's Amazon connection; ok is false
// when it has none.
func (s *Store) ConnectionByTenant(ctx context.Context, tenantID string) (marketplace.Connection, bool, error) {
	c, err := scanConnection(s.pool.QueryRow(ctx, `SELECT `+connectionColumns+`
		FROM "MarketplaceConnection" WHERE "tenantId" = $1 AND "type" = $2`, tenantID, marketplace.Type))
	if errors.Is(err, pgx.ErrNoRows) {
		return marketplace.Connection{}, false, nil
	}
	if err != nil {
		return marketplace.Connection{}, false, unavailable("read connection", err)
	}
	return c, true, nil
}
