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
const oldAppWhere = `"type" = 'AMAZON' AND "appSource" <> $1 AND "status" <> 'DISABLED' AND "authorizedAt" IS NOT NULL
	AND NOT ("status" = 'NEEDS_REAUTH' AND COALESCE("reauthReason", '') = 'app_migration')`

// OldAppConnections lists, in id order after the id after, up to limit
// connections still on another application than target (the migration's
// dry run).
func (s *Store) OldAppConnections(ctx context.Context, target marketplace.AppSource, after string, limit int) ([]OldAppConnection, error) {
	rows, err := s.pool.Query(ctx, `SELECT "id", "tenantId", "status"::text, "appSource", COALESCE("sellingPartnerId", '')
		FROM "MarketplaceConnection" WHERE `+oldAppWhere+` AND "id" > $2 ORDER BY "id" LIMIT $3`, string(target), after, limit)
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
			SELECT "id" FROM "MarketplaceConnection" WHERE `+oldAppWhere+`
			ORDER BY "id" LIMIT $2 FOR UPDATE SKIP LOCKED
		)
		UPDATE "MarketplaceConnection" c SET "status" = 'NEEDS_REAUTH', "reauthReason" = 'app_migration',
			"lastError" = $3, "pollClaimedUntil" = NULL, "updatedAt" = $4::timestamptz AT TIME ZONE 'UTC'
		FROM batch WHERE c."id" = batch."id"
		RETURNING c."id", c."tenantId", c."status"::text, c."appSource", COALESCE(c."sellingPartnerId", '')`,
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
