package postgres

import (
	"context"
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

// ingestSQL stores a batch in one statement, one round trip. With a lease
// owner ($16 not empty: a poll's page) it first saves the sync position,
// only while that owner holds the lease (the fence CTE; it also locks the
// sync state, serialising page commits of one connection), and stores
// nothing when it does not: every other CTE reads its rows from input,
// which is empty without the fence; on the window's last page ($17 empty)
// the connection's lastSyncAt is set too. Without an owner (push, relay
// mail) there is no fence.
//
// Messages already stored are skipped first, so a redelivered batch
// touches nothing. Each thread with new messages is upserted once in
// "TicketThread" (threads are distinct, as DO UPDATE requires) with a
// ticket id drawn here: where the row is new (xmax = 0) that id's Ticket is
// created, otherwise the thread's ticket is reused; of two concurrent
// batches opening the same thread, the second waits on the thread's key and
// reuses the first's ticket. Every new ExternalMessage is inserted pointing
// at its ticket and at its TicketMessage, whose id it draws. A row another
// batch committed while this one waited (on the fence or a thread's key) is
// not visible to this statement's snapshot, so fresh may keep its message:
// the ON CONFLICT arbiters then skip it (ExternalMessage) or reuse it
// (TicketThread), and only the messages actually inserted get a
// TicketMessage. Foreign keys are checked at the end of the statement, when
// all rows exist. Times: $3 (now) and the receivedAt array are
// timestamptz; KeyBuzz's columns are timestamp(3) in UTC, so they get "AT
// TIME ZONE 'UTC'" whatever the session's TimeZone. Input externalIds are
// distinct (deduplicated by the caller). The sync position is the seed's
// too: the connector reads "paginationToken" and "cursorAt"; the seed's
// text "cursor" gets Amazon's token while a window is part-way, else the
// window's end in ISO 8601 (UTC).
const ingestSQL = `
WITH fence AS (
    UPDATE "MarketplaceSyncState" SET
        "paginationToken" = NULLIF($17, ''),
        "pageWindowStart" = CASE WHEN $17 = '' THEN NULL ELSE $20::timestamptz END,
        "pageMarketplaceIds" = CASE WHEN $17 = '' THEN NULL ELSE $21::text[] END,
        "cursorAt" = COALESCE($18::timestamptz, "cursorAt"),
        "cursor" = COALESCE(NULLIF($17, ''),
                            to_char(COALESCE($18::timestamptz, "cursorAt") AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
        "lastPolledAt" = $3::timestamptz AT TIME ZONE 'UTC',
        "lastSuccessAt" = CASE WHEN $17 = '' THEN $3::timestamptz AT TIME ZONE 'UTC' ELSE "lastSuccessAt" END,
        "leaseUntil" = COALESCE($19::timestamptz, "leaseUntil"),
        "pageCount" = "pageCount" + 1,
        "eventCount" = "eventCount" + cardinality($5::text[]),
        "updatedAt" = $3::timestamptz AT TIME ZONE 'UTC'
    WHERE $16 <> '' AND "connectionId" = $2 AND "leaseOwner" = $16
    RETURNING 1
), synced AS (
    UPDATE "MarketplaceConnection" SET
        "lastSyncAt" = $3::timestamptz AT TIME ZONE 'UTC',
        "updatedAt" = $3::timestamptz AT TIME ZONE 'UTC'
    WHERE "id" = $2 AND $17 = '' AND EXISTS (SELECT 1 FROM fence)
), input AS (
    SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                         $11::text[], $12::text[], $13::text[], $14::timestamptz[], $15::text[])
        AS u("type", "externalId", "threadKey", "orderId", "marketplaceId", "buyerName", "buyerEmail",
             "language", "subject", "body", "receivedAt", "raw")
    WHERE $16 = '' OR EXISTS (SELECT 1 FROM fence)
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
SELECT (SELECT count(*) FROM tm), (SELECT count(*) FROM tickets), ($16 = '' OR EXISTS (SELECT 1 FROM fence))`

// fence is a poll page's part of ingestSQL: the lease it must hold and the
// sync position it saves.
type fence struct {
	owner       string
	nextToken   string
	cursor      *time.Time
	leaseUntil  *time.Time
	windowStart *time.Time
	markets     []string
}

// IngestPage stores a poll's page in one statement (ingestSQL): the sync
// position (pagination token, or the cursor on the window's last page) and
// the page's messages, only while the caller holds the lease. A page stored
// twice creates nothing the second time. ErrLeaseLost: nothing was written.
func (s *Store) IngestPage(ctx context.Context, p marketplace.InboundPage) (marketplace.PageResult, error) {
	now := s.now()
	f := fence{owner: p.LeaseOwner, nextToken: p.NextToken, cursor: p.Cursor}
	if f.owner == "" {
		return marketplace.PageResult{}, fmt.Errorf("ingest page: a page needs its lease owner")
	}
	if p.LeaseFor > 0 {
		t := now.Add(p.LeaseFor)
		f.leaseUntil = &t
	}
	if p.NextToken != "" {
		if p.WindowStart.IsZero() || len(p.MarketplaceIDs) == 0 {
			return marketplace.PageResult{}, fmt.Errorf("ingest page: a pagination token needs the filters that produced it (window start, marketplaces)")
		}
		f.windowStart, f.markets = &p.WindowStart, p.MarketplaceIDs
	}
	res, fenced, err := ingest(ctx, s.pool, p.TenantID, p.ConnectionID, dedupe(p.Messages), now, f)
	if err != nil {
		return marketplace.PageResult{}, unavailable("ingest page", err)
	}
	if !fenced {
		return marketplace.PageResult{}, fmt.Errorf("ingest page of %s: %w", p.ConnectionID, marketplace.ErrLeaseLost)
	}
	return res, nil
}

// Ingest stores messages of the tenant's connection that no poll brought
// (a pushed notification, a relay mail): the same statement as IngestPage,
// without the sync position. Stored twice, it creates nothing the second
// time; a message already stored by another channel is skipped.
func (s *Store) Ingest(ctx context.Context, tenantID, connectionID string, msgs []marketplace.InboundMessage) (marketplace.PageResult, error) {
	res, _, err := ingest(ctx, s.pool, tenantID, connectionID, dedupe(msgs), s.now(), fence{})
	if err != nil {
		return marketplace.PageResult{}, unavailable("ingest messages", err)
	}
	return res, nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ingest runs ingestSQL for msgs (distinct externalIds) as of now, fenced
// by f when f.owner is set; fenced reports whether it was (always true
// without an owner). Without an owner and messages it runs nothing.
//
// The statement's arguments go in PostgreSQL's binary format
// (QueryExecModeCacheDescribe: the connection asks for the statement's
// parameter types once and keeps them, then sends Parse, Bind and Execute in
// one round trip, as the pool's exec mode does, with no named statement):
// the exec mode's text format makes the server parse every array element
// (a page of 100 orders is tens of kilobytes of quoted text, most of it the
// raw JSON).
func ingest(ctx context.Context, q querier, tenantID, connectionID string, msgs []marketplace.InboundMessage, now time.Time, f fence) (res marketplace.PageResult, fenced bool, err error) {
	if len(msgs) == 0 && f.owner == "" {
		return res, true, nil
	}
	args := append([]any{pgx.QueryExecModeCacheDescribe}, ingestArgs(tenantID, connectionID, msgs, now, f)...)
	err = q.QueryRow(ctx, ingestSQL, args...).Scan(&res.MessagesCreated, &res.TicketsCreated, &fenced)
	if err != nil {
		return marketplace.PageResult{}, false, fmt.Errorf("store %d messages: %w", len(msgs), err)
	}
	return res, fenced, nil
}

// ingestArgs are ingestSQL's arguments for msgs as of now, fenced by f.
func ingestArgs(tenantID, connectionID string, msgs []marketplace.InboundMessage, now time.Time, f fence) []any {
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
		name[i] = strings.TrimSpace(pgText(m.BuyerName))
		if name[i] == "" {
			name[i] = marketplace.DefaultBuyerName
		}
		subject[i], body[i], at[i] = pgText(m.Subject), pgText(m.Body), m.ReceivedAt
		if at[i].IsZero() {
			at[i] = now
		}
		raw[i] = pgJSON(string(m.Raw))
		if len(m.Raw) == 0 {
			raw[i] = "{}"
		}
	}
	return []any{tenantID, connectionID, now, typ, ext, thread, order, mp, name, email, lang, subject, body, at, raw,
		f.owner, f.nextToken, f.cursor, f.leaseUntil, f.windowStart, f.markets}
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

// pgText is s as PostgreSQL's text takes it: valid UTF-8 without NUL (each
// invalid byte sequence and each NUL becomes U+FFFD). Text from outside (a
// mail's headers and body, an order's JSON) may hold either, and PostgreSQL
// refuses the whole statement for one of them.
func pgText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// pgJSON is a JSON text as jsonb takes it: without the \u0000 escape,
// which jsonb refuses.
func pgJSON(s string) string {
	return strings.ReplaceAll(pgText(s), `\u0000`, `\ufffd`)
}
