package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// OldAppConnection is a connection authorized by another application than
// the one KeyBuzz moves to.
type OldAppConnection struct {
	ConnectionID     string
	TenantID         string
	Status           marketplace.Status
	AppSource        marketplace.AppSource
	SellingPartnerID string
}

// oldAppWhere selects the consented connections on another app than $1
// that are not yet asked to move (DISABLED and never-consented ones aside).
const oldAppWhere = `k."type" = 'AMAZON' AND k."appSource" <> $1 AND mc."status" <> 'DISABLED' AND k."authorizedAt" IS NOT NULL
	AND NOT (mc."status" = 'ERROR' AND COALESCE(k."reauthReason", '') = 'app_migration')`

// oldAppFrom joins the connector's rows (k) with KeyBuzz's (mc).
const oldAppFrom = `keybuzz_amazon."Connection" k JOIN public."MarketplaceConnection" mc ON mc."id" = k."connectionId"`

// oldAppStatus is the connector's status of a row of oldAppFrom.
const oldAppStatus = `CASE WHEN mc."status" = 'ERROR' AND k."reauthReason" IS NOT NULL THEN 'NEEDS_REAUTH' ELSE mc."status"::text END`

// OldAppConnections lists, in id order after the id after, up to limit
// connections still on another application than target (the migration's
// dry run).
func (s *Store) OldAppConnections(ctx context.Context, target marketplace.AppSource, after string, limit int) ([]OldAppConnection, error) {
	rows, err := s.pool.Query(ctx, `SELECT k."connectionId", k."tenantId", `+oldAppStatus+`, k."appSource", COALESCE(k."sellingPartnerId", '')
		FROM `+oldAppFrom+` WHERE `+oldAppWhere+` AND k."connectionId" > $2 ORDER BY k."connectionId" LIMIT $3`, string(target), after, limit)
	if err != nil {
		return nil, unavailable("list old-app connections", err)
	}
	out, err := pgx.CollectRows(rows, scanOldApp)
	return out, unavailable("list old-app connections", err)
}

// MarkAppMigration marks up to limit connections still on another app than
// target NEEDS_REAUTH with reauthReason app_migration (they stop polling;
// the seller's next consent moves them to target), skipping rows another
// writer holds, and returns them.
func (s *Store) MarkAppMigration(ctx context.Context, target marketplace.AppSource, limit int) ([]OldAppConnection, error) {
	rows, err := s.pool.Query(ctx, `
		WITH batch AS (
			SELECT k."connectionId" FROM `+oldAppFrom+` WHERE `+oldAppWhere+`
			ORDER BY k."connectionId" LIMIT $2 FOR NO KEY UPDATE OF k SKIP LOCKED
		), k AS (
			UPDATE keybuzz_amazon."Connection" k SET "reauthReason" = 'app_migration', "pollable" = false,
				"pollClaimedUntil" = NULL, "updatedAt" = $4::timestamptz
			FROM batch WHERE k."connectionId" = batch."connectionId"
			RETURNING k.*
		), mc AS (
			UPDATE public."MarketplaceConnection" mc SET "status" = 'ERROR', "lastError" = $3,
				"updatedAt" = $4::timestamptz AT TIME ZONE 'UTC'
			FROM k WHERE mc."id" = k."connectionId"
			RETURNING mc."id"
		)
		SELECT k."connectionId", k."tenantId", 'NEEDS_REAUTH', k."appSource", COALESCE(k."sellingPartnerId", '')
		FROM k JOIN mc ON mc."id" = k."connectionId"`,
		string(target), limit, AppMigrationMessage, s.now())
	if err != nil {
		return nil, unavailable("mark app migration", err)
	}
	out, err := pgx.CollectRows(rows, scanOldApp)
	return out, unavailable("mark app migration", err)
}

// AppMigrationMessage is the lastError of a connection asked to move.
const AppMigrationMessage = "KeyBuzz moved to its own Amazon application: the seller must reconnect"

func scanOldApp(row pgx.CollectableRow) (OldAppConnection, error) {
	var c OldAppConnection
	err := row.Scan(&c.ConnectionID, &c.TenantID, &c.Status, &c.AppSource, &c.SellingPartnerID)
	return c, err
}
