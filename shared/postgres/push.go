package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// Push's SQL: the application's notifications destination, each
// connection's ORDER_CHANGE subscription, the record of every notification
// received, and the ingestion of pushed events (the same statement as a
// poll's pages, so an event pushed and polled is stored once).

// Destination returns the destination id recorded for the application's
// queue in region; ok is false when none is recorded yet.
func (s *Store) Destination(ctx context.Context, applicationID, region, queueARN string) (string, bool, error) {
	var id string
	err := s.pool.QueryRow(ctx, `
SELECT "destinationId" FROM keybuzz_amazon."NotificationDestination"
WHERE "applicationId" = $1 AND "region" = $2 AND "queueArn" = $3`, applicationID, region, queueARN).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, unavailable("read notification destination", err)
	}
	return id, true, nil
}

// SaveDestination records the destination id of the application's queue in
// region and returns the id recorded: the first writer's when several
// containers created or found it at once (Amazon keeps one per ARN).
func (s *Store) SaveDestination(ctx context.Context, applicationID, region, queueARN, destinationID string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `
WITH ins AS (
    INSERT INTO keybuzz_amazon."NotificationDestination" ("applicationId", "region", "queueArn", "destinationId", "createdAt", "updatedAt")
    VALUES ($1, $2, $3, $4, $5, $5)
    ON CONFLICT ("applicationId", "region", "queueArn") DO NOTHING
    RETURNING "destinationId"
)
SELECT "destinationId" FROM ins
UNION ALL
SELECT "destinationId" FROM keybuzz_amazon."NotificationDestination"
WHERE "applicationId" = $1 AND "region" = $2 AND "queueArn" = $3 AND NOT EXISTS (SELECT 1 FROM ins)`,
		applicationID, region, queueARN, destinationID, s.now()).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		// A concurrent insert won the conflict after this statement's
		// snapshot was taken: a new statement sees the winner's row.
		var ok bool
		if id, ok, err = s.Destination(ctx, applicationID, region, queueARN); err == nil && !ok {
			err = errors.New("destination row vanished")
		}
	}
	if err != nil {
		return "", unavailable("save notification destination", err)
	}
	return id, nil
}

// pushTargetColumns read a connection (mc, KeyBuzz's) with the connector's
// facts (k).
const pushTargetColumns = `mc."id", mc."tenantId",
	CASE WHEN mc."status" = 'ERROR' AND k."reauthReason" IS NOT NULL THEN 'NEEDS_REAUTH' ELSE mc."status"::text END,
	COALESCE(mc."region", ''), COALESCE(mc."marketplaceId", ''),
	COALESCE(k."sellingPartnerId", ''), COALESCE(k."pushSubscriptionId", ''), COALESCE(k."appSource", '')`

func scanPushTarget(row pgx.Row) (marketplace.PushTarget, error) {
	var t marketplace.PushTarget
	var status, app string
	err := row.Scan(&t.ConnectionID, &t.TenantID, &status, &t.Region, &t.MarketplaceID, &t.SellingPartnerID, &t.SubscriptionID, &app)
	t.AppSource = marketplace.AppSource(app)
	t.Status = marketplace.Status(status)
	return t, err
}

// ClaimSubscribe takes the right to subscribe the tenant's connection: it
// is CONNECTED, has no subscription, and no attempt was made in the last
// retryAfter (an attempt by another container included); force asks only
// that it is CONNECTED. ok is false when there is nothing to do now.
func (s *Store) ClaimSubscribe(ctx context.Context, tenantID, connectionID string, retryAfter time.Duration, force bool) (marketplace.PushTarget, bool, error) {
	now := s.now()
	t, err := scanPushTarget(s.pool.QueryRow(ctx, `
WITH k AS (
    UPDATE keybuzz_amazon."Connection" k SET "pushAttemptAt" = $3::timestamptz
    FROM public."MarketplaceConnection" mc
    WHERE k."connectionId" = $1 AND k."tenantId" = $2 AND mc."id" = k."connectionId" AND mc."status" = 'CONNECTED'
      AND ($5 OR (k."pushSubscriptionId" IS NULL AND (k."pushAttemptAt" IS NULL OR k."pushAttemptAt" <= $4::timestamptz)))
    RETURNING k.*
)
SELECT `+pushTargetColumns+` FROM k JOIN public."MarketplaceConnection" mc ON mc."id" = k."connectionId"`,
		connectionID, tenantID, now, now.Add(-retryAfter), force))
	if errors.Is(err, pgx.ErrNoRows) {
		return marketplace.PushTarget{}, false, nil
	}
	if err != nil {
		return marketplace.PushTarget{}, false, unavailable("claim subscription attempt", err)
	}
	return t, true, nil
}

// SaveSubscription records the connection's ORDER_CHANGE subscription and
// clears the last failure. A subscription id another connection holds is
// refused (marketplace.ErrBadRequest): ids route notifications.
func (s *Store) SaveSubscription(ctx context.Context, connectionID, subscriptionID, destinationID string) error {
	now := s.now()
	_, err := s.pool.Exec(ctx, `
UPDATE keybuzz_amazon."Connection" SET "pushSubscriptionId" = $2, "pushDestinationId" = $3, "pushSubscribedAt" = $4,
    "pushError" = NULL, "updatedAt" = $4
WHERE "connectionId" = $1`, connectionID, subscriptionID, destinationID, now)
	if uniqueViolation(err, "Connection_pushSubscriptionId_key") {
		return fmt.Errorf("save subscription of %s: %w", connectionID, errors.Join(marketplace.ErrBadRequest, err))
	}
	return unavailable("save subscription", err)
}

// RecordSubscribeError keeps why subscribing failed (Amazon's code, never a
// token) for the status route; the attempt time set by ClaimSubscribe
// spaces the next try.
func (s *Store) RecordSubscribeError(ctx context.Context, connectionID, message string) error {
	if len(message) > 500 {
		message = message[:500]
	}
	_, err := s.pool.Exec(ctx, `UPDATE keybuzz_amazon."Connection" SET "pushError" = $2 WHERE "connectionId" = $1`, connectionID, message)
	return unavailable("record subscription error", err)
}

// PushTarget reads the tenant's connection as the push flow sees it;
// marketplace.ErrNotFound when the tenant has no such connection.
func (s *Store) PushTarget(ctx context.Context, tenantID, connectionID string) (marketplace.PushTarget, error) {
	t, err := scanPushTarget(s.pool.QueryRow(ctx, `SELECT `+pushTargetColumns+`
FROM `+connectionFrom+` WHERE mc."id" = $1 AND mc."tenantId" = $2`, connectionID, tenantID))
	if errors.Is(err, pgx.ErrNoRows) {
		return marketplace.PushTarget{}, fmt.Errorf("connection %s: %w", connectionID, marketplace.ErrNotFound)
	}
	if err != nil {
		return marketplace.PushTarget{}, unavailable("read push target", err)
	}
	return t, nil
}

// ClearSubscription forgets the connection's subscription if it is still
// subscriptionID (after Amazon deleted it), so the connection is polled at
// the normal interval again.
func (s *Store) ClearSubscription(ctx context.Context, connectionID, subscriptionID string) error {
	_, err := s.pool.Exec(ctx, `
UPDATE keybuzz_amazon."Connection" SET "pushSubscriptionId" = NULL, "pushDestinationId" = NULL, "pushSubscribedAt" = NULL,
    "pushAttemptAt" = NULL, "updatedAt" = $3
WHERE "connectionId" = $1 AND "pushSubscriptionId" = $2`, connectionID, subscriptionID, s.now())
	return unavailable("clear subscription", err)
}

// ConnectionBySubscription finds the connection holding subscriptionID; ok
// is false when none does.
func (s *Store) ConnectionBySubscription(ctx context.Context, subscriptionID string) (marketplace.PushTarget, bool, error) {
	t, err := scanPushTarget(s.pool.QueryRow(ctx, `SELECT `+pushTargetColumns+`
FROM keybuzz_amazon."Connection" k JOIN public."MarketplaceConnection" mc ON mc."id" = k."connectionId"
WHERE k."pushSubscriptionId" = $1`, subscriptionID))
	if errors.Is(err, pgx.ErrNoRows) {
		return marketplace.PushTarget{}, false, nil
	}
	if err != nil {
		return marketplace.PushTarget{}, false, unavailable("route notification", err)
	}
	return t, true, nil
}

// RecordNotification keeps what was done with a notification, once per
// NotificationId (a redelivery counts up; the outcome is the latest, except
// that a notification once STORED stays so), and
// moves the connection's lastNotificationAt when it was routed.
func (s *Store) RecordNotification(ctx context.Context, r marketplace.NotificationRecord) error {
	return unavailable("record notification", recordNotification(ctx, s.pool, r, s.now()))
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func recordNotification(ctx context.Context, q execer, r marketplace.NotificationRecord, now time.Time) error {
	detail := r.Detail
	if len(detail) > 1000 {
		detail = detail[:1000]
	}
	_, err := q.Exec(ctx, `
WITH rec AS (
    INSERT INTO keybuzz_amazon."Notification" ("notificationId", "notificationType", "subscriptionId", "connectionId", "tenantId",
        "orderId", "changeType", "outcome", "detail", "eventTime", "messagesCreated", "createdAt", "updatedAt")
    VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''), NULLIF($7, ''), $8, NULLIF($9, ''), $10, $11, $12, $12)
    ON CONFLICT ("notificationId") DO UPDATE SET
        "receivedCount" = "Notification"."receivedCount" + 1,
        -- A notification stored once stays STORED; otherwise the latest outcome.
        "outcome" = CASE WHEN "Notification"."outcome" = 'STORED' THEN 'STORED' ELSE EXCLUDED."outcome" END,
        "detail" = CASE WHEN "Notification"."outcome" = 'STORED' THEN "Notification"."detail" ELSE EXCLUDED."detail" END,
        "messagesCreated" = "Notification"."messagesCreated" + EXCLUDED."messagesCreated",
        "updatedAt" = EXCLUDED."updatedAt"
    RETURNING 1
)
UPDATE keybuzz_amazon."Connection" SET "lastNotificationAt" = GREATEST("lastNotificationAt", $12::timestamptz)
WHERE $13 AND "connectionId" = NULLIF($4, '') AND EXISTS (SELECT 1 FROM rec)`,
		r.NotificationID, r.NotificationType, r.SubscriptionID, r.ConnectionID, r.TenantID, r.OrderID, r.ChangeType,
		string(r.Outcome), detail, r.EventTime, r.MessagesCreated, now, r.Routed)
	return err
}

// IngestNotification stores a notification's events with the ingestion
// statement polling uses (same externalIds, so an event pushed and polled
// is stored once), guarded by the connection being CONNECTED, and records
// the notification's outcome in the same transaction: STORED (new
// messages), DUPLICATE (none new) or NOT_CONNECTED (the connection was
// disconnected meanwhile: nothing stored). It returns what it created and
// the record as written. A failure writes neither.
func (s *Store) IngestNotification(ctx context.Context, tenantID, connectionID string, msgs []marketplace.InboundMessage, rec marketplace.NotificationRecord) (marketplace.PageResult, marketplace.NotificationRecord, error) {
	now := s.now()
	var res marketplace.PageResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, connected, err := ingest(ctx, tx, tenantID, connectionID, dedupe(msgs), now, fence{})
		if err != nil {
			return err
		}
		res = r
		switch {
		case !connected:
			rec.Outcome, rec.Detail, rec.MessagesCreated = marketplace.OutcomeNotConnected, "disconnected meanwhile", 0
		case r.MessagesCreated == 0:
			rec.Outcome, rec.MessagesCreated = marketplace.OutcomeDuplicate, 0
		default:
			rec.Outcome, rec.MessagesCreated = marketplace.OutcomeStored, r.MessagesCreated
		}
		return recordNotification(ctx, tx, rec, now)
	})
	if err != nil {
		return marketplace.PageResult{}, rec, unavailable("ingest notification", err)
	}
	return res, rec, nil
}

func (s *Store) PushStatus(ctx context.Context, connectionID string) (marketplace.PushStatus, error) {
	var st marketplace.PushStatus
	err := s.pool.QueryRow(ctx, `
SELECT COALESCE("pushSubscriptionId", ''), "pushSubscribedAt", "lastNotificationAt", COALESCE("pushError", '')
FROM keybuzz_amazon."Connection" WHERE "connectionId" = $1`, connectionID).Scan(&st.SubscriptionID, &st.SubscribedAt, &st.LastNotificationAt, &st.Error)
	if errors.Is(err, pgx.ErrNoRows) {
		return marketplace.PushStatus{}, fmt.Errorf("connection %s: %w", connectionID, marketplace.ErrNotFound)
	}
	if err != nil {
		return marketplace.PushStatus{}, unavailable("read push status", err)
	}
	st.Live = st.SubscriptionID != ""
	return st, nil
}
