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
			UPDATE keybuzz_amazon."Connection" k SET "reauthReason" = $4::text, "pollable" = false,
				"pollClaimedUntil" = NULL, "updatedAt" = $1::timestamptz
			FROM public."MarketplaceConnection" mc
			WHERE mc."id" = k."connectionId" AND mc."status" = 'CONNECTED' AND k."authorizedAt" <= $2::timestamptz
			RETURNING k."connectionId"
		), kb AS (
			UPDATE public."MarketplaceConnection" SET "status" = 'ERROR', "lastError" = $5,
				"updatedAt" = $1::timestamptz AT TIME ZONE 'UTC'
			WHERE "id" IN (SELECT "connectionId" FROM expired)
		)
		SELECT (SELECT count(*) FROM expired),
		       (SELECT count(*) FROM keybuzz_amazon."Connection" k JOIN public."MarketplaceConnection" mc ON mc."id" = k."connectionId"
		        WHERE mc."status" = 'CONNECTED' AND k."authorizedAt" > $2::timestamptz AND k."authorizedAt" <= $3::timestamptz)`,
		now, expiredBefore, dueBefore, string(marketplace.ReauthExpired), ExpiredMessage).Scan(&r.Expired, &r.DueSoon)
	if err != nil {
		return marketplace.Renewal{}, unavailable("renew authorizations", err)
	}
	return r, nil
}
