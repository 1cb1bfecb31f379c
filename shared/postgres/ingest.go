package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// The one ingestion path: every channel (polling, push, relay mail) stores
// its marketplace.InboundMessages here, in KeyBuzz's shape
// (docs/keybuzz-contract.md). Per new message: one "ExternalMessage" (the
// seed's model, unique on type, connectionId, externalId) and one
// "TicketMessage" (senderType CUSTOMER, source MARKETPLACE); per new
// thread: one "Ticket" (channel AMAZON, status OPEN, priority NORMAL) and
// its "TicketThread" row (tenantId, threadKey), the connector's own table
// that keeps one ticket per tenant and thread whatever channel brings the
// next message.

// ingestSQL stores a batch in one statement, one round trip. Messages
// already stored are skipped first, so a redelivered batch touches nothing.
// Each thread with new messages is upserted once in "TicketThread" (threads
// are distinct, as DO UPDATE requires) with a ticket id drawn here: where
// the row is new (xmax = 0) that id's Ticket is created, otherwise the
// thread's ticket is reused; of two concurrent batches opening the same
// thread, the second waits on the thread's key and reuses the first's
// ticket. Every new ExternalMessage is inserted pointing at its ticket and
// at its TicketMessage, whose id it draws. Foreign keys are checked at the
// end of the statement, when all rows exist. Times: $3 (now) and the
// receivedAt array are timestamptz; KeyBuzz's columns are timestamp(3) in
// UTC, so they get "AT TIME ZONE 'UTC'" whatever the session's TimeZone.
// Input externalIds are distinct (deduplicated by the caller).
const ingestSQL = `
WITH input AS (
    SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                         $11::text[], $12::text[], $13::text[], $14::timestamptz[], $15::text[])
        AS u("type", "externalId", "threadKey", "orderId", "marketplaceId", "buyerName", "buyerEmail",
             "language", "subject", "body", "receivedAt", "raw")
), fresh AS (
    SELECT i.* FROM input i
    WHERE NOT EXISTS (SELECT 1 FROM "ExternalMessage" e
                      WHERE e."type" = i."type"::"MarketplaceType" AND e."connectionId" = $2 AND e."externalId" = i."externalId")
), threads AS (
    SELECT DISTINCT ON ("threadKey") "threadKey", "orderId", "buyerName", "buyerEmail", "subject", "body",
           max("receivedAt") OVER (PARTITION BY "threadKey") AS "lastMessageAt",
           gen_random_uuid()::text AS "ticketId"
    FROM fresh
    ORDER BY "threadKey", "receivedAt"
), thread AS (
    INSERT INTO "TicketThread" ("tenantId", "threadKey", "ticketId", "orderId", "lastMessageAt", "createdAt", "updatedAt")
    SELECT $1, t."threadKey", t."ticketId", t."orderId", t."lastMessageAt", $3::timestamptz, $3::timestamptz
    FROM threads t
    ON CONFLICT ("tenantId", "threadKey") DO UPDATE SET
        "orderId" = COALESCE("TicketThread"."orderId", EXCLUDED."orderId"),
        "lastMessageAt" = GREATEST("TicketThread"."lastMessageAt", EXCLUDED."lastMessageAt"),
        "updatedAt" = EXCLUDED."updatedAt"
    RETURNING "threadKey", "ticketId", (xmax = 0) AS "created"
), tickets AS (
    INSERT INTO "Ticket" ("id", "tenantId", "customerName", "customerEmail", "externalId", "channel", "status", "priority",
                          "subject", "createdAt", "updatedAt")
    SELECT th."ticketId", $1, t."buyerName", t."buyerEmail", COALESCE(t."orderId", t."threadKey"), 'AMAZON', 'OPEN', 'NORMAL',
           COALESCE(NULLIF(t."subject", ''), NULLIF(left(t."body", 100), ''), 'New Amazon message'),
           $3::timestamptz AT TIME ZONE 'UTC', $3::timestamptz AT TIME ZONE 'UTC'
    FROM thread th JOIN threads t ON t."threadKey" = th."threadKey"
    WHERE th."created"
    RETURNING 1
), ins AS (
    INSERT INTO "ExternalMessage" ("tenantId", "connectionId", "type", "externalId", "threadId", "orderId", "marketplaceId",
                                   "direction", "buyerName", "buyerEmail", "language", "subject", "body", "receivedAt", "raw",
                                   "ticketId", "ticketMessageId", "createdAt")
    SELECT $1, $2, f."type"::"MarketplaceType", f."externalId", f."threadKey", f."orderId", f."marketplaceId",
           'INBOUND', f."buyerName", f."buyerEmail", f."language", f."subject", f."body", f."receivedAt" AT TIME ZONE 'UTC', f."raw"::jsonb,
           th."ticketId", gen_random_uuid()::text, $3::timestamptz AT TIME ZONE 'UTC'
    FROM fresh f JOIN thread th ON th."threadKey" = f."threadKey"
    ON CONFLICT ("type", "connectionId", "externalId") DO NOTHING
    RETURNING "ticketId", "ticketMessageId", "buyerName", "body", "receivedAt"
), tm AS (
    INSERT INTO "TicketMessage" ("id", "ticketId", "tenantId", "senderType", "senderName", "sentAt", "body", "isInternal", "source")
    SELECT i."ticketMessageId", i."ticketId", $1, 'CUSTOMER', i."buyerName", i."receivedAt", i."body", false, 'MARKETPLACE'
    FROM ins i
    RETURNING 1
)
SELECT (SELECT count(*) FROM tm), (SELECT count(*) FROM tickets)`

// fenceSQL saves the sync position only while the caller holds the lease; it
// also locks the sync state, serialising page commits of one connection.
// The connector reads "paginationToken" and "cursorAt"; the seed's text
// "cursor" gets the same position in the seed's form: Amazon's token while
// a window is part-way, else the window's end in ISO 8601 (UTC).
const fenceSQL = `
UPDATE "MarketplaceSyncState" SET
    "paginationToken" = NULLIF($3, ''),
    "pageWindowStart" = CASE WHEN $3 = '' THEN NULL ELSE $8::timestamptz END,
    "pageMarketplaceIds" = CASE WHEN $3 = '' THEN NULL ELSE $9::text[] END,
    "cursorAt" = COALESCE($4::timestamptz, "cursorAt"),
    "cursor" = COALESCE(NULLIF($3, ''),
                        to_char(COALESCE($4::timestamptz, "cursorAt") AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
    "lastPolledAt" = $5::timestamptz AT TIME ZONE 'UTC',
    "lastSuccessAt" = CASE WHEN $3 = '' THEN $5::timestamptz AT TIME ZONE 'UTC' ELSE "lastSuccessAt" END,
    "leaseUntil" = COALESCE($6::timestamptz, "leaseUntil"),
    "pageCount" = "pageCount" + 1,
    "eventCount" = "eventCount" + $7,
    "updatedAt" = $5::timestamptz AT TIME ZONE 'UTC'
WHERE "connectionId" = $1 AND "leaseOwner" = $2`

// IngestPage stores a poll's page in one transaction: the sync position
// (pagination token, or the cursor on the window's last page) and, through
// the one ingestion statement, the page's messages. A page stored twice
// creates nothing the second time. ErrLeaseLost: nothing was written.
func (s *Store) IngestPage(ctx context.Context, p marketplace.InboundPage) (marketplace.PageResult, error) {
	now := s.now()
	msgs := dedupe(p.Messages)
	var leaseUntil *time.Time
	if p.LeaseFor > 0 {
		t := now.Add(p.LeaseFor)
		leaseUntil = &t
	}
	var res marketplace.PageResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var windowStart *time.Time
		var marketplaces []string
		if p.NextToken != "" {
			if p.WindowStart.IsZero() || len(p.MarketplaceIDs) == 0 {
				return fmt.Errorf("ingest page: a pagination token needs the filters that produced it (window start, marketplaces)")
			}
			windowStart, marketplaces = &p.WindowStart, p.MarketplaceIDs
		}
		tag, err := tx.Exec(ctx, fenceSQL, p.ConnectionID, p.LeaseOwner, p.NextToken, p.Cursor, now, leaseUntil, len(msgs), windowStart, marketplaces)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return marketplace.ErrLeaseLost
		}
		if p.NextToken == "" {
			if _, err := tx.Exec(ctx, `UPDATE "MarketplaceConnection" SET "lastSyncAt" = $2::timestamptz AT TIME ZONE 'UTC', "updatedAt" = $2::timestamptz AT TIME ZONE 'UTC' WHERE "id" = $1`, p.ConnectionID, now); err != nil {
				return err
			}
		}
		res, err = ingest(ctx, tx, p.TenantID, p.ConnectionID, msgs, now)
		return err
	})
	if errors.Is(err, marketplace.ErrLeaseLost) {
		return marketplace.PageResult{}, fmt.Errorf("ingest page of %s: %w", p.ConnectionID, marketplace.ErrLeaseLost)
	}
	if err != nil {
		return marketplace.PageResult{}, unavailable("ingest page", err)
	}
	return res, nil
}

// Ingest stores messages of the tenant's connection that no poll brought
// (a pushed notification, a relay mail): the same statement as IngestPage,
// without the sync position. Stored twice, it creates nothing the second
// time; a message already stored by another channel is skipped.
func (s *Store) Ingest(ctx context.Context, tenantID, connectionID string, msgs []marketplace.InboundMessage) (marketplace.PageResult, error) {
	res, err := ingest(ctx, s.pool, tenantID, connectionID, dedupe(msgs), s.now())
	if err != nil {
		return marketplace.PageResult{}, unavailable("ingest messages", err)
	}
	return res, nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ingest runs ingestSQL for msgs (distinct externalIds) as of now.
func ingest(ctx context.Context, q querier, tenantID, connectionID string, msgs []marketplace.InboundMessage, now time.Time) (marketplace.PageResult, error) {
	var res marketplace.PageResult
	if len(msgs) == 0 {
		return res, nil
	}
	n := len(msgs)
	typ, ext, thread, order, mp := make([]string, n), make([]string, n), make([]string, n), make([]*string, n), make([]*string, n)
	name, email, lang, subject, body := make([]string, n), make([]*string, n), make([]*string, n), make([]string, n), make([]string, n)
	at, raw := make([]time.Time, n), make([]string, n)
	for i, m := range msgs {
		typ[i], ext[i], thread[i] = m.Type, m.ExternalID, m.ThreadKey
		if typ[i] == "" {
			typ[i] = marketplace.Type
		}
		if thread[i] == "" {
			thread[i] = m.OrderID
		}
		order[i], mp[i], email[i], lang[i] = optional(m.OrderID), optional(m.MarketplaceID), optional(m.BuyerEmail), optional(m.Language)
		name[i] = strings.TrimSpace(m.BuyerName)
		if name[i] == "" {
			name[i] = marketplace.DefaultBuyerName
		}
		subject[i], body[i], at[i] = m.Subject, m.Body, m.ReceivedAt
		if at[i].IsZero() {
			at[i] = now
		}
		raw[i] = string(m.Raw)
		if len(m.Raw) == 0 {
			raw[i] = "{}"
		}
	}
	err := q.QueryRow(ctx, ingestSQL, tenantID, connectionID, now, typ, ext, thread, order, mp, name, email, lang, subject, body, at, raw).
		Scan(&res.MessagesCreated, &res.TicketsCreated)
	if err != nil {
		return marketplace.PageResult{}, fmt.Errorf("store %d messages: %w", n, err)
	}
	return res, nil
}

// optional maps "" to NULL.
func optional(s string) *string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return &s
}

// dedupe keeps the first message of each (Type, ExternalID).
func dedupe(in []marketplace.InboundMessage) []marketplace.InboundMessage {
	type key struct{ typ, id string }
	seen := make(map[key]bool, len(in))
	out := make([]marketplace.InboundMessage, 0, len(in))
	for _, m := range in {
		k := key{m.Type, m.ExternalID}
		if k.typ == "" {
			k.typ = marketplace.Type
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, m)
	}
	return out
}
