package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// Polling's SQL: the fan-out's claims, the per-connection lease, the end of
// a poll and the persisted rate budgets. Every time comes from the Store's
// clock (s.now), so tests drive it; in production it is time.Now.

// claimDueSQL claims up to $3 due connections after the cursor ($4, $5)
// until $2, in one statement: the partial index "Connection_due_idx" of the
// connector's keybuzz_amazon."Connection" (rows "pollable": CONNECTED as
// far as the connector wrote it) serves the inner SELECT, which also checks
// KeyBuzz's status (a connection KeyBuzz's own backend disabled is not
// polled), and FOR NO KEY UPDATE SKIP LOCKED of the connector's row plus
// the claim column keep an overlapping run from taking the same rows.
// KeyBuzz's row is not locked. The outer ORDER BY returns the chunk in
// keyset order.
//
// The UPDATE reaches the locked rows by their ctid (a TID scan), not by
// joining the id back through the primary key: that join's plan depends on
// the table's statistics, and the planner may choose to hash the chunk's ids
// against a sequential scan of the whole table, for every chunk (seen on
// 100,000 due connections), where a TID scan reads only the chunk's rows.
// The outer WHERE repeats the claim's conditions, so a row that is not
// claimable by the time it is updated is left alone.
const claimDueSQL = `
WITH claimed AS (
    UPDATE keybuzz_amazon."Connection" AS c
    SET "pollClaimedUntil" = $2
    WHERE c.ctid = ANY(ARRAY(
        SELECT k.ctid FROM keybuzz_amazon."Connection" k
        JOIN public."MarketplaceConnection" mc ON mc."id" = k."connectionId" AND mc."status" = 'CONNECTED'
        WHERE k."pollable" AND k."nextPollAt" <= $1
          AND (k."nextPollAt", k."connectionId") > ($4::timestamptz, $5::text)
          AND (k."pollClaimedUntil" IS NULL OR k."pollClaimedUntil" < $1)
        ORDER BY k."nextPollAt", k."connectionId"
        LIMIT $3
        FOR NO KEY UPDATE OF k SKIP LOCKED))
      AND c."pollable" AND c."nextPollAt" <= $1
      AND (c."pollClaimedUntil" IS NULL OR c."pollClaimedUntil" < $1)
    RETURNING c."connectionId", c."tenantId", c."nextPollAt"
)
SELECT "connectionId", "tenantId", "nextPollAt" FROM claimed ORDER BY "nextPollAt", "connectionId"`

// ClaimDue claims up to limit due connections after cursor for claimFor. It
// returns them and the cursor to pass for the next chunk.
func (s *Store) ClaimDue(ctx context.Context, limit int, claimFor time.Duration, after marketplace.ClaimCursor) ([]marketplace.PollJob, marketplace.ClaimCursor, error) {
	now := s.now()
	from := after.NextPollAt
	if from.IsZero() {
		from = time.Unix(0, 0)
	}
	rows, err := s.pool.Query(ctx, claimDueSQL, now, now.Add(claimFor), limit, from, after.ID)
	if err != nil {
		return nil, after, unavailable("claim due connections", err)
	}
	defer rows.Close()
	var jobs []marketplace.PollJob
	next := after
	for rows.Next() {
		var j marketplace.PollJob
		if err := rows.Scan(&j.ConnectionID, &j.TenantID, &next.NextPollAt); err != nil {
			return nil, after, unavailable("claim due connections", err)
		}
		next.ID = j.ConnectionID
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, after, unavailable("claim due connections", err)
	}
	return jobs, next, nil
}

// ReleaseClaims drops the fan-out claims of connections whose messages could
// not be sent, so the next run enqueues them.
func (s *Store) ReleaseClaims(ctx context.Context, connectionIDs []string) error {
	if len(connectionIDs) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE keybuzz_amazon."Connection" SET "pollClaimedUntil" = NULL WHERE "connectionId" = ANY($1)`, connectionIDs)
	return unavailable("release claims", err)
}

// acquireSQL takes the lease in one statement: it creates the sync state
// on a first poll (with the KeyBuzz "MarketplaceSyncState" row the
// connector keeps in the seed's form, id drawn here), and otherwise updates
// it only when no live lease exists (the conflict's WHERE runs on the
// latest row version, so of concurrent pollers exactly one wins).
const acquireSQL = `
WITH c AS (
    SELECT mc."id", mc."tenantId",
           CASE WHEN mc."status" = 'ERROR' AND k."reauthReason" IS NOT NULL THEN 'NEEDS_REAUTH' ELSE mc."status"::text END AS "status",
           mc."region", mc."marketplaceId", k."sellingPartnerId", k."connectedAt",
           k."pushSubscriptionId" IS NOT NULL AS "pushed", k."appSource"
    FROM public."MarketplaceConnection" mc JOIN keybuzz_amazon."Connection" k ON k."connectionId" = mc."id"
    WHERE mc."id" = $1 AND mc."tenantId" = $5
), l AS (
    INSERT INTO keybuzz_amazon."SyncState" ("connectionId", "tenantId", "syncStateId", "leaseOwner", "leaseUntil", "createdAt", "updatedAt")
    SELECT c."id", c."tenantId", keybuzz_amazon.cuid(), $2, $4::timestamptz, $3::timestamptz, $3::timestamptz FROM c WHERE c."status" = 'CONNECTED'
    ON CONFLICT ("connectionId") DO UPDATE
        SET "leaseOwner" = EXCLUDED."leaseOwner", "leaseUntil" = EXCLUDED."leaseUntil", "updatedAt" = EXCLUDED."updatedAt"
        WHERE "SyncState"."leaseUntil" IS NULL OR "SyncState"."leaseUntil" < $3::timestamptz
    RETURNING true AS "won", (xmax = 0) AS "created", "syncStateId", "cursorAt", "paginationToken", "pageWindowStart", "pageMarketplaceIds"
), seed AS (
    INSERT INTO public."MarketplaceSyncState" ("id", "connectionId", "tenantId", "type", "createdAt", "updatedAt")
    SELECT l."syncStateId", c."id", c."tenantId", 'AMAZON', $3::timestamptz AT TIME ZONE 'UTC', $3::timestamptz AT TIME ZONE 'UTC'
    FROM l, c WHERE l."created"
    ON CONFLICT ("id") DO NOTHING
)
SELECT c."id", c."tenantId", c."status", COALESCE(c."region", ''), COALESCE(c."marketplaceId", ''),
       COALESCE(c."sellingPartnerId", ''), c."connectedAt", c."pushed",
       COALESCE(l."won", false), l."cursorAt", COALESCE(l."paginationToken", ''),
       l."pageWindowStart", l."pageMarketplaceIds", c."appSource"
FROM c LEFT JOIN l ON true`

// AcquirePoll takes the connection's lease for owner until now+leaseFor.
// It returns marketplace.ErrNotFound when the tenant has no such connection.
func (s *Store) AcquirePoll(ctx context.Context, tenantID, connectionID, owner string, leaseFor time.Duration) (marketplace.PollState, error) {
	now := s.now()
	var st marketplace.PollState
	var status string
	err := s.pool.QueryRow(ctx, acquireSQL, connectionID, owner, now, now.Add(leaseFor), tenantID).Scan(
		&st.ConnectionID, &st.TenantID, &status, &st.Region, &st.MarketplaceID, &st.SellingPartnerID,
		&st.ConnectedAt, &st.Pushed, &st.Leased, &st.Cursor, &st.PaginationToken, &st.PageWindowStart, &st.PageMarketplaceIDs, &st.AppSource)
	if errors.Is(err, pgx.ErrNoRows) {
		return marketplace.PollState{}, fmt.Errorf("connection %s: %w", connectionID, marketplace.ErrNotFound)
	}
	if err != nil {
		return marketplace.PollState{}, unavailable("acquire poll lease", err)
	}
	st.Status = marketplace.Status(status)
	return st, nil
}

// finishSQL ends a poll: the lease released with the outcome in the
// connector's sync state and the seed's KeyBuzz row; the connection's next
// poll time (and claim) in the connector's row; lastSyncAt, lastError and,
// for a permanent failure ($6), the status in KeyBuzz's row, where
// NEEDS_REAUTH is written as KeyBuzz's ERROR with the connector's reason
// "revoked". A poll that ends after a disconnect keeps "Disconnected by
// user" and DISABLED.
const finishSQL = `
WITH st AS (
    UPDATE keybuzz_amazon."SyncState" SET
        "leaseOwner" = NULL, "leaseUntil" = NULL,
        "pollCount" = "pollCount" + 1,
        "lastPolledAt" = $3::timestamptz,
        "lastError" = NULLIF($4, ''),
        "lastErrorAt" = CASE WHEN $4 = '' THEN "lastErrorAt" ELSE $3::timestamptz END,
        "errorCount" = "errorCount" + CASE WHEN $4 = '' THEN 0 ELSE 1 END,
        "consecutiveFailures" = CASE WHEN $4 = '' THEN 0 ELSE "consecutiveFailures" + 1 END,
        "updatedAt" = $3::timestamptz
    WHERE "connectionId" = $1 AND "leaseOwner" = $2
    RETURNING "syncStateId"
), seed AS (
    UPDATE public."MarketplaceSyncState" ss SET
        "lastPolledAt" = $3::timestamptz AT TIME ZONE 'UTC', "lastError" = NULLIF($4, ''),
        "updatedAt" = $3::timestamptz AT TIME ZONE 'UTC'
    FROM st WHERE ss."id" = st."syncStateId"
), prev AS (
    SELECT "status" = 'CONNECTED' AS "was" FROM public."MarketplaceConnection" WHERE "id" = $1
), mc AS (
    UPDATE public."MarketplaceConnection" SET
        "lastSyncAt" = $3::timestamptz AT TIME ZONE 'UTC',
        "lastError" = CASE WHEN "status" = 'DISABLED' THEN "lastError" ELSE NULLIF($4, '') END,
        "status" = CASE WHEN $6::text <> '' AND "status" = 'CONNECTED'
                        THEN (CASE WHEN $6::text = 'NEEDS_REAUTH' THEN 'ERROR' ELSE $6::text END)::"MarketplaceConnectionStatus"
                        ELSE "status" END,
        "updatedAt" = $3::timestamptz AT TIME ZONE 'UTC'
    WHERE "id" = $1 AND EXISTS (SELECT 1 FROM st)
    RETURNING (SELECT "was" FROM prev) AS "was", "status"
)
UPDATE keybuzz_amazon."Connection" k SET
    "pollClaimedUntil" = CASE WHEN $5::timestamptz IS NULL THEN "pollClaimedUntil" ELSE NULL END,
    "nextPollAt" = COALESCE($5::timestamptz, "nextPollAt"),
    "reauthReason" = CASE WHEN $6::text = 'NEEDS_REAUTH' AND mc."was" THEN 'revoked' ELSE "reauthReason" END,
    "pollable" = mc."status" = 'CONNECTED',
    "updatedAt" = $3::timestamptz
FROM mc WHERE k."connectionId" = $1`

// FinishPoll records the outcome, releases the lease and, when NextPollAt is
// set, the fan-out claim. It returns marketplace.ErrLeaseLost when owner no longer holds
// the lease (nothing is written then).
func (s *Store) FinishPoll(ctx context.Context, o marketplace.PollOutcome) error {
	now := s.now()
	var next *time.Time
	if !o.NextPollAt.IsZero() {
		next = &o.NextPollAt
	}
	tag, err := s.pool.Exec(ctx, finishSQL, o.ConnectionID, o.LeaseOwner, now, o.Error, next, string(o.Status))
	if err != nil {
		return unavailable("finish poll", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("finish poll of %s: %w", o.ConnectionID, marketplace.ErrLeaseLost)
	}
	return nil
}

// takeSQL refills the bucket to now and takes one token when one is there
// and no 429 back-off runs; FOR UPDATE serialises concurrent takers.
const takeSQL = `
WITH b AS (
    SELECT "rate", "burst", "throttledUntil", "lastThrottledAt",
           LEAST("burst"::float8, "tokens" + "rate" * GREATEST(0, EXTRACT(EPOCH FROM ($3::timestamptz - "refilledAt")))) AS avail,
           ("throttledUntil" IS NULL OR "throttledUntil" <= $3) AS open
    FROM keybuzz_amazon."RateBudget" WHERE "connectionId" = $1 AND "operation" = $2
    FOR UPDATE
)
UPDATE keybuzz_amazon."RateBudget" AS r SET
    "tokens" = CASE WHEN b.open AND b.avail >= 1 THEN b.avail - 1 ELSE b.avail END,
    "refilledAt" = GREATEST(r."refilledAt", $3),
    "callCount" = r."callCount" + CASE WHEN b.open AND b.avail >= 1 THEN 1 ELSE 0 END,
    "updatedAt" = $3
FROM b WHERE r."connectionId" = $1 AND r."operation" = $2
RETURNING b.open AND b.avail >= 1, b.avail, b.open, b."throttledUntil", r."rate", r."burst", b."lastThrottledAt" IS NOT NULL`

// TakeToken takes one token of the connection's budget for operation,
// creating the bucket full with plan on first use.
func (s *Store) TakeToken(ctx context.Context, connectionID, operation string, plan marketplace.RatePlan) (marketplace.Grant, error) {
	now := s.now()
	for attempt := 0; attempt < 2; attempt++ {
		var (
			g              marketplace.Grant
			avail          float64
			open           bool
			throttledUntil *time.Time
		)
		err := s.pool.QueryRow(ctx, takeSQL, connectionID, operation, now).Scan(
			&g.OK, &avail, &open, &throttledUntil, &g.Plan.Rate, &g.Plan.Burst, &g.Throttled)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = s.pool.Exec(ctx, `
INSERT INTO keybuzz_amazon."RateBudget" ("connectionId", "operation", "tokens", "rate", "burst", "refilledAt", "updatedAt")
VALUES ($1, $2, $3, $4, $5, $6, $6)
ON CONFLICT ("connectionId", "operation") DO NOTHING`, connectionID, operation, float64(plan.Burst), plan.Rate, plan.Burst, now)
			if err != nil {
				return marketplace.Grant{}, unavailable("create rate budget", err)
			}
			continue
		}
		if err != nil {
			return marketplace.Grant{}, unavailable("take rate token", err)
		}
		if !g.OK {
			g.RetryAt = now.Add(waitFor(1-avail, g.Plan.Rate))
			if !open && throttledUntil != nil && throttledUntil.After(g.RetryAt) {
				g.RetryAt = *throttledUntil
			}
		}
		return g, nil
	}
	return marketplace.Grant{}, fmt.Errorf("take rate token: budget row vanished")
}

// waitFor is how long a budget refilling rate tokens a second takes to
// gain missing tokens, to the millisecond above (an hour at rate 0): the
// one wait of the rate budgets and the SES sending budget.
func waitFor(missing, rate float64) time.Duration {
	if rate <= 0 {
		return time.Hour
	}
	secs := math.Max(0, missing) / rate
	return time.Duration(math.Ceil(secs*1000)) * time.Millisecond
}

// RecordThrottle records a 429: the bucket is emptied and no call is made
// before the returned time (one token's time, doubled for each 429 in a row
// up to 16 times, at least a second).
func (s *Store) RecordThrottle(ctx context.Context, connectionID, operation string) (time.Time, error) {
	now := s.now()
	var until time.Time
	err := s.pool.QueryRow(ctx, `
UPDATE keybuzz_amazon."RateBudget" SET
    "tokens" = 0, "refilledAt" = $3,
    "throttledUntil" = $3::timestamptz + make_interval(secs => GREATEST(1, LEAST(3600,
        (1 / GREATEST("rate", 0.0001)) * power(2, LEAST(4, CASE WHEN "lastThrottledAt" IS NULL THEN 0 ELSE "consecutive429" END))))),
    "count429" = "count429" + 1,
    "consecutive429" = "consecutive429" + 1,
    "lastThrottledAt" = $3, "updatedAt" = $3
WHERE "connectionId" = $1 AND "operation" = $2
RETURNING "throttledUntil"`, connectionID, operation, now).Scan(&until)
	if errors.Is(err, pgx.ErrNoRows) {
		return now.Add(time.Minute), nil
	}
	if err != nil {
		return time.Time{}, unavailable("record throttle", err)
	}
	return until, nil
}

// RecordSuccess clears the 429 streak and, when Amazon sent
// x-amzn-RateLimit-Limit (rate > 0) and it differs, adopts that rate,
// refilling at the old rate up to now first.
func (s *Store) RecordSuccess(ctx context.Context, connectionID, operation string, rate float64) error {
	now := s.now()
	_, err := s.pool.Exec(ctx, `
UPDATE keybuzz_amazon."RateBudget" SET
    "tokens" = LEAST("burst"::float8, "tokens" + "rate" * GREATEST(0, EXTRACT(EPOCH FROM ($3::timestamptz - "refilledAt")))),
    "refilledAt" = GREATEST("refilledAt", $3),
    "rate" = CASE WHEN $4::float8 > 0 THEN $4::float8 ELSE "rate" END,
    "consecutive429" = 0, "lastThrottledAt" = NULL, "throttledUntil" = NULL,
    "updatedAt" = $3
WHERE "connectionId" = $1 AND "operation" = $2`, connectionID, operation, now, rate)
	return unavailable("record rate success", err)
}
