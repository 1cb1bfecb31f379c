package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

const connectionColumns = `"id", "tenantId", "status"::text, COALESCE("displayName", ''), COALESCE("region", ''),
	COALESCE("marketplaceId", ''), COALESCE("sellingPartnerId", ''), COALESCE("vaultPath", ''),
	"lastSyncAt", COALESCE("lastError", ''), "connectedAt", "appSource", "authorizedAt", COALESCE("reauthReason", ''),
	"createdAt", "updatedAt"`

func scanConnection(row pgx.Row) (marketplace.Connection, error) {
	var c marketplace.Connection
	err := row.Scan(&c.ID, &c.TenantID, &c.Status, &c.DisplayName, &c.Region, &c.MarketplaceID,
		&c.SellingPartnerID, &c.VaultPath, &c.LastSyncAt, &c.LastError, &c.ConnectedAt,
		&c.AppSource, &c.AuthorizedAt, &c.ReauthReason, &c.CreatedAt, &c.UpdatedAt)
	return c, err
}

// BeginConnect creates the tenant's Amazon connection PENDING on its first
// start (an existing connection keeps its status until a consent completes:
// a connected seller keeps polling, a disconnected one stays DISABLED),
// records the hashed OAuth state bound to it and to the browser, and drops
// the tenant's expired states: one statement, atomic.
func (s *Store) BeginConnect(ctx context.Context, b marketplace.Begin) (marketplace.Connection, error) {
	c, err := scanConnection(s.pool.QueryRow(ctx, `
		WITH conn AS (
			INSERT INTO "MarketplaceConnection" ("tenantId", "type", "status", "displayName", "region", "appSource")
			VALUES ($1, $2, 'PENDING', 'Amazon (pending)', 'EU', $8)
			ON CONFLICT ("tenantId", "type") DO UPDATE SET "updatedAt" = $5::timestamptz AT TIME ZONE 'UTC'
			RETURNING *
		), state AS (
			INSERT INTO "MarketplaceOAuthState" ("stateHash", "tenantId", "connectionId", "expiresAt",
				"bindingHash", "returnUrl", "appSource", "sellingPartnerId")
			SELECT $3, $1, conn."id", $4::timestamptz, $6, NULLIF($7, ''), $8, NULLIF($9, '') FROM conn
		), expired AS (
			DELETE FROM "MarketplaceOAuthState" WHERE "tenantId" = $1 AND "expiresAt" < $5::timestamptz
		)
		SELECT `+connectionColumns+` FROM conn`,
		b.TenantID, marketplace.Type, b.StateHash, b.ExpiresAt, s.now(), b.BindingHash, b.ReturnURL,
		string(b.AppSource), b.SellingPartnerID))
	if err != nil {
		return marketplace.Connection{}, unavailable("begin connect", err)
	}
	return c, nil
}

// ConsumeState marks the state used, atomically, only when bindingHash is
// the one recorded with it: of two concurrent callbacks only one succeeds,
// and a callback from another browser consumes nothing (the starter's
// browser may still complete). Unknown, used or expired states are
// marketplace.ErrInvalidState; a live state with another binding is
// marketplace.ErrBrowserMismatch, with the claim (for the return URL).
func (s *Store) ConsumeState(ctx context.Context, stateHash, bindingHash string) (marketplace.StateClaim, error) {
	var sc marketplace.StateClaim
	now := s.now()
	err := s.pool.QueryRow(ctx, `
		UPDATE "MarketplaceOAuthState" SET "consumedAt" = $2
		WHERE "stateHash" = $1 AND "consumedAt" IS NULL AND "expiresAt" > $2 AND "bindingHash" = $3
		RETURNING "tenantId", "connectionId", COALESCE("returnUrl", ''), "appSource", COALESCE("sellingPartnerId", '')`,
		stateHash, now, bindingHash).Scan(&sc.TenantID, &sc.ConnectionID, &sc.ReturnURL, &sc.AppSource, &sc.SellingPartnerID)
	if err == nil {
		return sc, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return marketplace.StateClaim{}, unavailable("consume state", err)
	}
	err = s.pool.QueryRow(ctx, `
		SELECT "tenantId", "connectionId", COALESCE("returnUrl", ''), "appSource", COALESCE("sellingPartnerId", '')
		FROM "MarketplaceOAuthState" WHERE "stateHash" = $1 AND "consumedAt" IS NULL AND "expiresAt" > $2`,
		stateHash, now).Scan(&sc.TenantID, &sc.ConnectionID, &sc.ReturnURL, &sc.AppSource, &sc.SellingPartnerID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return marketplace.StateClaim{}, fmt.Errorf("consume state: %w", marketplace.ErrInvalidState)
	case err != nil:
		return marketplace.StateClaim{}, unavailable("consume state", err)
	}
	return sc, fmt.Errorf("consume state: %w", marketplace.ErrBrowserMismatch)
}

// MarkConnected sets the connection CONNECTED (the secret is already in
// Vault) on the consent's app, records the consent time, clears its error
// and reauthorization reason and makes it due for polling at once. The same
// seller reconnecting starts from its stored cursor; another seller starts
// afresh (its sync state is dropped; tickets stay). A seller connected to
// another tenant is marketplace.ErrSellerTaken, and nothing changes.
func (s *Store) MarkConnected(ctx context.Context, connectionID string, c marketplace.Connected) (marketplace.Connection, error) {
	now := s.now()
	var conn marketplace.Connection
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			DELETE FROM "MarketplaceSyncState" ss USING "MarketplaceConnection" mc
			WHERE ss."connectionId" = $1 AND mc."id" = $1
			  AND mc."sellingPartnerId" IS DISTINCT FROM $2 AND mc."sellingPartnerId" IS NOT NULL`,
			connectionID, c.SellingPartnerID); err != nil {
			return err
		}
		var err error
		conn, err = scanConnection(tx.QueryRow(ctx, `
			UPDATE "MarketplaceConnection" SET
				"status" = 'CONNECTED', "displayName" = $2, "region" = upper($3), "marketplaceId" = $4,
				"sellingPartnerId" = $5, "vaultPath" = $6, "lastError" = NULL, "reauthReason" = NULL,
				"appSource" = $8, "authorizedAt" = $7::timestamptz,
				"connectedAt" = $7::timestamptz, "nextPollAt" = $7::timestamptz, "pollClaimedUntil" = NULL,
				"updatedAt" = $7::timestamptz AT TIME ZONE 'UTC'
			WHERE "id" = $1
			RETURNING `+connectionColumns,
			connectionID, c.DisplayName, c.Region, c.MarketplaceID, c.SellingPartnerID, c.VaultPath, now, string(c.AppSource)))
		return err
	})
	switch {
	case uniqueViolation(err, "MarketplaceConnection_seller_key"):
		return marketplace.Connection{}, fmt.Errorf("mark connected: %w", marketplace.ErrSellerTaken)
	case errors.Is(err, pgx.ErrNoRows):
		return marketplace.Connection{}, fmt.Errorf("mark connected: %w", marketplace.ErrNotFound)
	case err != nil:
		return marketplace.Connection{}, unavailable("mark connected", err)
	}
	return conn, nil
}

// SellerTenant returns the tenant the seller account (selling partner id and
// region) is connected to; ok is false when it is connected to none.
func (s *Store) SellerTenant(ctx context.Context, sellingPartnerID, region string) (string, bool, error) {
	var tenant string
	err := s.pool.QueryRow(ctx, `SELECT "tenantId" FROM "MarketplaceConnection"
		WHERE "type" = $1 AND "sellingPartnerId" = $2 AND lower(COALESCE("region", '')) = lower($3)`,
		marketplace.Type, sellingPartnerID, region).Scan(&tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, unavailable("read seller's tenant", err)
	}
	return tenant, true, nil
}

// RecordConnectError stores a failure of the Connect flow on the connection
// (a code such as "Token exchange failed: invalid_grant", never a secret).
func (s *Store) RecordConnectError(ctx context.Context, connectionID, message string) error {
	_, err := s.pool.Exec(ctx, `UPDATE "MarketplaceConnection" SET "lastError" = $2, "updatedAt" = $3::timestamptz AT TIME ZONE 'UTC' WHERE "id" = $1`,
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

// Disconnect sets the tenant's connection DISABLED with KeyBuzz's lastError
// "Disconnected by user", releases its seller (another tenant may connect
// it), stops its polling, drops its pending consents and, where KeyBuzz's
// inbound_addresses table exists, stops its Amazon inbound addresses. In one
// transaction; tickets and messages stay. ok is false when the tenant has no
// connection. Calling it again changes nothing but "updatedAt".
func (s *Store) Disconnect(ctx context.Context, tenantID string) (marketplace.Connection, bool, error) {
	now := s.now()
	var conn marketplace.Connection
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		conn, err = scanConnection(tx.QueryRow(ctx, `
			UPDATE "MarketplaceConnection" SET
				"status" = 'DISABLED', "lastError" = $3, "sellingPartnerId" = NULL, "vaultPath" = NULL,
				"reauthReason" = NULL, "pollClaimedUntil" = NULL, "updatedAt" = $4::timestamptz AT TIME ZONE 'UTC'
			WHERE "tenantId" = $1 AND "type" = $2
			RETURNING `+connectionColumns, tenantID, marketplace.Type, marketplace.DisconnectedMessage, now))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM "MarketplaceOAuthState" WHERE "connectionId" = $1`, conn.ID); err != nil {
			return err
		}
		return stopInboundAddresses(ctx, tx, tenantID, now)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return marketplace.Connection{}, false, nil
	}
	if err != nil {
		return marketplace.Connection{}, false, unavailable("disconnect", err)
	}
	return conn, true, nil
}

// stopInboundAddresses marks the tenant's Amazon inbound addresses as no
// longer accepting mail, when KeyBuzz's inbound_addresses table exists.
func stopInboundAddresses(ctx context.Context, tx pgx.Tx, tenantID string, now time.Time) error {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('inbound_addresses') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return err
	}
	_, err := tx.Exec(ctx, inboundStopSQL, tenantID, now, marketplace.DisconnectedMessage)
	return err
}

// inboundStopSQL sets the disconnected tenant's Amazon addresses' pipeline
// status to FAILED with lastError "Disconnected by user": KeyBuzz's
// InboundValidationStatus has no DISABLED (PENDING, VALIDATED, FAILED), and
// a value its Prisma client does not know would break its reads.
const inboundStopSQL = `UPDATE "inbound_addresses" SET "pipelineStatus" = 'FAILED', "lastError" = $3,
	"updatedAt" = $2::timestamptz AT TIME ZONE 'UTC'
	WHERE "tenantId" = $1 AND upper("marketplace"::text) = 'AMAZON'`
