package postgres

import (
	"context"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// ExpiredMessage is the lastError of a connection whose 365-day
// authorization ended.
const ExpiredMessage = "The seller's Amazon authorization expired (365 days): the seller must reconnect"

// Renew ends the CONNECTED connections whose authorization is older than
// marketplace.AuthorizationLifetime (NEEDS_REAUTH, reauthReason
// authorization_expired; they are no longer polled) and counts the
// CONNECTED ones due for renewal within marketplace.RenewalWindow: one
// statement on the "authorizedAt" index.
func (s *Store) Renew(ctx context.Context) (marketplace.Renewal, error) {
	now := s.now()
	expiredBefore := now.Add(-marketplace.AuthorizationLifetime)
	dueBefore := expiredBefore.Add(marketplace.RenewalWindow)
	var r marketplace.Renewal
	err := s.pool.QueryRow(ctx, `
		WITH expired AS (
			UPDATE "MarketplaceConnection" SET "status" = 'NEEDS_REAUTH', "reauthReason" = $4::text,
				"lastError" = $5, "pollClaimedUntil" = NULL, "updatedAt" = $1::timestamptz AT TIME ZONE 'UTC'
			WHERE "status" = 'CONNECTED' AND "authorizedAt" <= $2::timestamptz
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM expired),
		       (SELECT count(*) FROM "MarketplaceConnection"
		        WHERE "status" = 'CONNECTED' AND "authorizedAt" > $2::timestamptz AND "authorizedAt" <= $3::timestamptz)`,
		now, expiredBefore, dueBefore, string(marketplace.ReauthExpired), ExpiredMessage).Scan(&r.Expired, &r.DueSoon)
	if err != nil {
		return marketplace.Renewal{}, unavailable("renew authorizations", err)
	}
	return r, nil
}
