package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// ingestSQL stores a page in one statement. Messages already stored
// (type, connectionId, externalId) are skipped first, so a redelivered page
// touches nothing; each thread with new messages gets its ticket upserted
// once (threads are distinct, as DO UPDATE requires); every new
// ExternalMessage is inserted already pointing at its ticket, and gets its
// TicketMessage. Input externalIds are distinct (deduplicated by the caller).
const ingestSQL = `
WITH input AS (
    SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[])
        AS u("externalId", "threadId", "orderId", "marketplaceId", "authorName", "authorEmail", "subject", "body", "receivedAt", "raw")
), fresh AS (
    SELECT i.* FROM input i
    WHERE NOT EXISTS (SELECT 1 FROM "ExternalMessage" e
                      WHERE e."type" = $13 AND e."connectionId" = $2 AND e."externalId" = i."externalId")
), threads AS (
    SELECT DISTINCT ON ("threadId") "threadId", "orderId", "authorName", "authorEmail", "subject",
           max("receivedAt") OVER (PARTITION BY "threadId") AS "lastMessageAt"
    FROM fresh
    ORDER BY "threadId", "receivedAt"
), tickets AS (
    INSERT INTO "Ticket" ("tenantId", "channel", "externalThreadId", "orderId", "subject", "customerName", "customerEmail", "lastMessageAt", "createdAt", "updatedAt")
    SELECT $1, $13, t."threadId", t."orderId", t."subject", t."authorName", t."authorEmail", t."lastMessageAt", $14, $14
    FROM threads t
    ON CONFLICT ("tenantId", "channel", "externalThreadId") DO UPDATE SET
        "lastMessageAt" = GREATEST("Ticket"."lastMessageAt", EXCLUDED."lastMessageAt"),
        "updatedAt" = EXCLUDED."updatedAt"
    RETURNING "id", "externalThreadId", (xmax = 0) AS "created"
), ins AS (
    INSERT INTO "ExternalMessage" ("tenantId", "connectionId", "type", "externalId", "threadId", "orderId", "marketplaceId",
                                   "direction", "authorName", "authorEmail", "subject", "body", "receivedAt", "raw", "ticketId", "createdAt")
    SELECT $1, $2, $13, f."externalId", f."threadId", f."orderId", f."marketplaceId",
           'INBOUND', f."authorName", f."authorEmail", f."subject", f."body", f."receivedAt", f."raw"::jsonb, t."id", $14
    FROM fresh f JOIN tickets t ON t."externalThreadId" = f."threadId"
    ON CONFLICT ("type", "connectionId", "externalId") DO NOTHING
    RETURNING "id", "ticketId", "authorName", "authorEmail", "body", "receivedAt"
), tm AS (
    INSERT INTO "TicketMessage" ("ticketId", "tenantId", "externalMessageId", "direction", "authorName", "authorEmail", "body", "receivedAt", "createdAt")
    SELECT i."ticketId", $1, i."id", 'INBOUND', i."authorName", i."authorEmail", i."body", i."receivedAt", $14
    FROM ins i
    RETURNING 1
)
SELECT (SELECT count(*) FROM tm), (SELECT count(*) FROM tickets WHERE "created")`

// fenceSQL saves the sync position only while the caller holds the lease; it
// also locks the sync state, serialising page commits of one connection.
const fenceSQL = `
UPDATE "MarketplaceSyncState" SET
    "paginationToken" = NULLIF($3, ''),
    "pageWindowStart" = CASE WHEN $3 = '' THEN NULL ELSE $8::timestamptz END,
    "pageMarketplaceIds" = CASE WHEN $3 = '' THEN NULL ELSE $9::text[] END,
    "cursor" = COALESCE($4, "cursor"),
    "lastSyncAt" = $5,
    "lastSuccessAt" = CASE WHEN $3 = '' THEN $5 ELSE "lastSuccessAt" END,
    "leaseUntil" = COALESCE($6, "leaseUntil"),
    "pageCount" = "pageCount" + 1,
    "eventCount" = "eventCount" + $7,
    "updatedAt" = $5
WHERE "connectionId" = $1 AND "leaseOwner" = $2`

// IngestPage stores a page in one transaction: the sync position (pagination
// token, or the cursor on the window's last page) and, set-based, the
// page's ExternalMessage, Ticket and TicketMessage rows. A page stored twice
// creates nothing the second time. marketplace.ErrLeaseLost: nothing was written.
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
			if _, err := tx.Exec(ctx, `UPDATE "MarketplaceConnection" SET "lastSyncAt" = $2, "updatedAt" = $2 WHERE "id" = $1`, p.ConnectionID, now); err != nil {
				return err
			}
		}
		if len(msgs) == 0 {
			return nil
		}
		n := len(msgs)
		ext, thread, order, mp := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		name, email, subject, body := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		at, raw := make([]time.Time, n), make([]*string, n)
		for i, m := range msgs {
			ext[i], thread[i], order[i], mp[i] = m.ExternalID, m.ThreadID, m.OrderID, m.MarketplaceID
			name[i], email[i], subject[i], body[i] = m.AuthorName, m.AuthorEmail, m.Subject, m.Body
			at[i] = m.ReceivedAt
			if len(m.Raw) > 0 {
				r := string(m.Raw)
				raw[i] = &r
			}
		}
		return tx.QueryRow(ctx, ingestSQL, p.TenantID, p.ConnectionID, ext, thread, order, mp, name, email, subject, body, at, raw,
			marketplace.Type, now).Scan(&res.MessagesCreated, &res.TicketsCreated)
	})
	if err == marketplace.ErrLeaseLost {
		return marketplace.PageResult{}, fmt.Errorf("ingest page of %s: %w", p.ConnectionID, marketplace.ErrLeaseLost)
	}
	if err != nil {
		return marketplace.PageResult{}, unavailable("ingest page", err)
	}
	return res, nil
}

// dedupe keeps the first message of each ExternalID.
func dedupe(in []marketplace.InboundMessage) []marketplace.InboundMessage {
	seen := make(map[string]bool, len(in))
	out := make([]marketplace.InboundMessage, 0, len(in))
	for _, m := range in {
		if seen[m.ExternalID] {
			continue
		}
		seen[m.ExternalID] = true
		out = append(out, m)
	}
	return out
}
