package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// connectionColumns read a connection from KeyBuzz's "MarketplaceConnection"
// (mc) and the connector's facts about it (k, keybuzz_amazon."Connection";
// NULL for a connection the connector never managed). KeyBuzz's status
// ERROR with a re-authorization reason is the connector's NEEDS_REAUTH:
// KeyBuzz's enum has no such value, so it is never written.
const connectionColumns = `mc."id", mc."tenantId",
	CASE WHEN mc."status" = 'ERROR' AND k."reauthReason" IS NOT NULL THEN 'NEEDS_REAUTH' ELSE mc."status"::text END,
	COALESCE(mc."displayName", ''), COALESCE(mc."region", ''),
	COALESCE(mc."marketplaceId", ''), COALESCE(k."sellingPartnerId", ''), COALESCE(mc."vaultPath", ''),
	mc."lastSyncAt", COALESCE(mc."lastError", ''), k."connectedAt", COALESCE(k."appSource", 'external_test'), k."authorizedAt",
	COALESCE(k."reauthReason", ''), mc."createdAt", mc."updatedAt"`

// connectionFrom joins the two for connectionColumns.
const connectionFrom = `public."MarketplaceConnection" mc LEFT JOIN keybuzz_amazon."Connection" k ON k."connectionId" = mc."id"`

func scanConnection(row pgx.Row) (marketplace.Connection, error) {
	var c marketplace.Connection
	err := row.Scan(&c.ID, &c.TenantID, &c.Status, &c.DisplayName, &c.Region, &c.MarketplaceID,
		&c.SellingPartnerID, &c.VaultPath, &c.LastSyncAt, &c.LastError, &c.ConnectedAt,
		&c.AppSource, &c.AuthorizedAt, &c.ReauthReason, &c.CreatedAt, &c.UpdatedAt)
	return c, err
}

// utc is how a time goes into KeyBuzz's timestamp(3) columns (UTC wall
// clock) from a timestamptz parameter, whatever the session's TimeZone.
func utc(param string) string { return param + "::timestamptz AT TIME ZONE 'UTC'" }

// BeginConnect gives the tenant its Amazon connection and records the
// hashed OAuth state bound to it and to the browser, dropping the tenant's
// expired states, in one transaction. The connection is the one the
// connector already manages for the tenant; else KeyBuzz's own row for the
// tenant (its backend's start may have created it PENDING), adopted; else a
// new KeyBuzz row, PENDING "Amazon (pending)" in "EU" with an id in
// Prisma's cuid shape. An existing connection keeps its status until a
// consent completes. Of two first starts at once, one creates and the other
// uses it (the connector's unique tenant and type).
func (s *Store) BeginConnect(ctx context.Context, b marketplace.Begin) (marketplace.Connection, error) {
	now := s.now()
	var c marketplace.Connection
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `
			WITH mine AS (
				SELECT "connectionId" AS id FROM keybuzz_amazon."Connection" WHERE "tenantId" = $1 AND "type" = $2
			), theirs AS (
				SELECT "id" FROM public."MarketplaceConnection"
				WHERE "tenantId" = $1 AND "type" = $2::"MarketplaceType" AND NOT EXISTS (SELECT 1 FROM mine)
				ORDER BY ("status" = 'CONNECTED') DESC, "updatedAt" DESC, "id" LIMIT 1
			), ins AS (
				INSERT INTO keybuzz_amazon."Connection" ("connectionId", "tenantId", "type", "appSource", "createdAt", "updatedAt")
				SELECT COALESCE((SELECT "id" FROM theirs), keybuzz_amazon.cuid()), $1, $2, $3, $4, $4
				WHERE NOT EXISTS (SELECT 1 FROM mine)
				ON CONFLICT ("tenantId", "type") DO NOTHING
				RETURNING "connectionId" AS id
			)
			SELECT id FROM mine UNION ALL SELECT id FROM ins`,
			b.TenantID, marketplace.Type, string(b.AppSource), now).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) { // another start created it since this statement's snapshot
			err = tx.QueryRow(ctx, `SELECT "connectionId" FROM keybuzz_amazon."Connection" WHERE "tenantId" = $1 AND "type" = $2`,
				b.TenantID, marketplace.Type).Scan(&id)
		}
		if err != nil {
			return err
		}
		c, err = scanConnection(tx.QueryRow(ctx, `
			WITH conn AS (
				INSERT INTO public."MarketplaceConnection" ("id", "tenantId", "type", "status", "displayName", "region", "createdAt", "updatedAt")
				VALUES ($1, $2, $3::"MarketplaceType", 'PENDING', 'Amazon (pending)', 'EU', `+utc("$5")+`, `+utc("$5")+`)
				ON CONFLICT ("id") DO UPDATE SET "updatedAt" = EXCLUDED."updatedAt"
				RETURNING *
			), state AS (
				INSERT INTO keybuzz_amazon."ConnectState" ("stateHash", "tenantId", "connectionId", "expiresAt",
					"bindingHash", "returnUrl", "appSource", "sellingPartnerId", "createdAt")
				SELECT $4, $2, conn."id", $6::timestamptz, $7, NULLIF($8, ''), $9, NULLIF($10, ''), $5 FROM conn
			), expired AS (
				DELETE FROM keybuzz_amazon."ConnectState" WHERE "tenantId" = $2 AND "expiresAt" < $5::timestamptz
			)
			SELECT `+connectionColumns+` FROM conn mc LEFT JOIN keybuzz_amazon."Connection" k ON k."connectionId" = mc."id"`,
			id, b.TenantID, marketplace.Type, b.StateHash, now, b.ExpiresAt, b.BindingHash, b.ReturnURL,
			string(b.AppSource), b.SellingPartnerID))
		return err
	})
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
		UPDATE keybuzz_amazon."ConnectState" SET "consumedAt" = $2
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
		FROM keybuzz_amazon."ConnectState" WHERE "stateHash" = $1 AND "consumedAt" IS NULL AND "expiresAt" > $2`,
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
			DELETE FROM keybuzz_amazon."SyncState" ss USING keybuzz_amazon."Connection" k
			WHERE ss."connectionId" = $1 AND k."connectionId" = $1
			  AND k."sellingPartnerId" IS DISTINCT FROM $2 AND k."sellingPartnerId" IS NOT NULL`,
			connectionID, c.SellingPartnerID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			UPDATE keybuzz_amazon."Connection" SET
				"sellingPartnerId" = $2, "sellerRegion" = upper($3), "appSource" = $4, "reauthReason" = NULL,
				"authorizedAt" = $5, "connectedAt" = $5, "pollable" = true, "nextPollAt" = $5, "pollClaimedUntil" = NULL,
				"updatedAt" = $5
			WHERE "connectionId" = $1`, connectionID, c.SellingPartnerID, c.Region, string(c.AppSource), now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		conn, err = scanConnection(tx.QueryRow(ctx, `
			WITH mc AS (
				UPDATE public."MarketplaceConnection" SET
					"status" = 'CONNECTED', "displayName" = $2, "region" = upper($3), "marketplaceId" = $4,
					"vaultPath" = $5, "lastError" = NULL, "updatedAt" = `+utc("$6")+`
				WHERE "id" = $1
				RETURNING *
			)
			SELECT `+connectionColumns+` FROM mc JOIN keybuzz_amazon."Connection" k ON k."connectionId" = mc."id"`,
			connectionID, c.DisplayName, c.Region, c.MarketplaceID, c.VaultPath, now))
		return err
	})
	switch {
	case uniqueViolation(err, "Connection_seller_key"):
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
	err := s.pool.QueryRow(ctx, `SELECT "tenantId" FROM keybuzz_amazon."Connection"
		WHERE "type" = $1 AND "sellingPartnerId" = $2 AND lower(COALESCE("sellerRegion", '')) = lower($3)`,
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
	_, err := s.pool.Exec(ctx, `UPDATE public."MarketplaceConnection" SET "lastError" = $2, "updatedAt" = `+utc("$3")+` WHERE "id" = $1`,
		connectionID, message, s.now())
	return unavailable("record connect error", err)
}

// tenantConnection selects the tenant's Amazon connection in connectionFrom
// ($1 tenant, $2 type): the one the connector manages, else KeyBuzz's own
// most recent row for the tenant (its backend may have created one).
const tenantConnection = `mc."tenantId" = $1 AND mc."type" = $2::"MarketplaceType"
	ORDER BY (k."connectionId" IS NOT NULL) DESC, mc."updatedAt" DESC, mc."id" LIMIT 1`

// ConnectionByTenant returns the tenant's Amazon connection; ok is false
// when it has none.
func (s *Store) ConnectionByTenant(ctx context.Context, tenantID string) (marketplace.Connection, bool, error) {
	c, err := scanConnection(s.pool.QueryRow(ctx, `SELECT `+connectionColumns+` FROM `+connectionFrom+`
		WHERE `+tenantConnection, tenantID, marketplace.Type))
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
		var id string
		if err := tx.QueryRow(ctx, `SELECT mc."id" FROM `+connectionFrom+` WHERE `+tenantConnection+` FOR NO KEY UPDATE OF mc`,
			tenantID, marketplace.Type).Scan(&id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE keybuzz_amazon."Connection" SET "sellingPartnerId" = NULL, "sellerRegion" = NULL, "reauthReason" = NULL,
				"pollable" = false, "pollClaimedUntil" = NULL, "updatedAt" = $2
			WHERE "connectionId" = $1`, id, now); err != nil {
			return err
		}
		var err error
		conn, err = scanConnection(tx.QueryRow(ctx, `
			WITH mc AS (
				UPDATE public."MarketplaceConnection" SET "status" = 'DISABLED', "lastError" = $2, "vaultPath" = NULL,
					"updatedAt" = `+utc("$3")+`
				WHERE "id" = $1
				RETURNING *
			)
			SELECT `+connectionColumns+` FROM mc LEFT JOIN keybuzz_amazon."Connection" k ON k."connectionId" = mc."id"`,
			id, marketplace.DisconnectedMessage, now))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM keybuzz_amazon."ConnectState" WHERE "connectionId" = $1`, conn.ID); err != nil {
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
// longer accepting mail.
func stopInboundAddresses(ctx context.Context, tx pgx.Tx, tenantID string, now time.Time) error {
	_, err := tx.Exec(ctx, inboundStopSQL, tenantID, now, marketplace.DisconnectedMessage)
	return err
}

// inboundStopSQL sets the disconnected tenant's Amazon addresses' pipeline
// status to FAILED with lastError "Disconnected by user": KeyBuzz's
// InboundValidationStatus has no DISABLED (PENDING, VALIDATED, FAILED), and
// a value its Prisma client does not know would break its reads.
const inboundStopSQL = `UPDATE public."inbound_addresses" SET "pipelineStatus" = 'FAILED', "lastError" = $3,
	"updatedAt" = $2::timestamptz AT TIME ZONE 'UTC'
	WHERE "tenantId" = $1 AND upper("marketplace"::text) = 'AMAZON'`
