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
// (docs/keybuzz-contract.md). Per new message: one public."ExternalMessage"
// (the seed's model, unique on type, connectionId, externalId), one
// public."TicketMessage" (senderType CUSTOMER, source MARKETPLACE) and the
// connector's keybuzz_amazon."Message" linking them; per new thread: one
// public."Ticket" (channel AMAZON, status OPEN, priority NORMAL) and its
// keybuzz_amazon."TicketThread" row (tenantId, threadKey), which keeps one
// ticket per tenant and thread whatever channel brings the next message.
// Every id inserted into KeyBuzz's tables is drawn here
// (keybuzz_amazon.cuid(), Prisma's cuid shape), with "createdAt" and
// "updatedAt", which Prisma's client fills itself and the tables do not
// default.

// ingestSQL stores a batch in one statement, one round trip, behind its
// guard. With a lease owner ($16 not empty: a poll's page) the guard is the
// fence: it saves the sync position only while that owner holds the lease
// (it also locks the sync state, serialising page commits of one
// connection), in the connector's keybuzz_amazon."SyncState" and in the
// seed's form in KeyBuzz's "MarketplaceSyncState" row; on the window's last
// page ($17 empty) the connection's lastSyncAt is set too. Without an owner
// (push, relay mail) the guard is the connection: the tenant's and
// CONNECTED, locked FOR SHARE until the statement's transaction ends (a
// disconnect waits for it). Without its guard the statement stores nothing:
// every other CTE reads its rows from input, which is empty then.
//
// Messages already stored are skipped first, so a redelivered batch
// touches nothing. Each thread with new messages is upserted once in
// "TicketThread" (threads are distinct, as DO UPDATE requires) with a
// ticket id drawn here: where the row is new (xmax = 0) that id's Ticket is
// created, otherwise the thread's ticket is reused; of two concurrent
// batches opening the same thread, the second waits on the thread's key and
// reuses the first's ticket. Every new ExternalMessage is inserted pointing
// at its ticket; its TicketMessage id is drawn in "Message". A row another
// batch committed while this one waited (on the fence or a thread's key) is
// not visible to this statement's snapshot, so fresh may keep its message:
// the ON CONFLICT arbiters then skip it (KeyBuzz's ExternalMessage unique)
// or reuse it (TicketThread), and only the messages actually inserted get a
// TicketMessage. Times: $3 (now) and the receivedAt array are timestamptz;
// KeyBuzz's columns are timestamp(3) in UTC, so they get "AT TIME ZONE
// 'UTC'" whatever the session's TimeZone. Input externalIds are distinct
// (deduplicated by the caller). It returns the counts, whether the guard
// held, and the ids of the ExternalMessages and Tickets it created.
const ingestSQL = `
WITH fence AS (
    UPDATE keybuzz_amazon."SyncState" SET
        "paginationToken" = NULLIF($17, ''),
        "pageWindowStart" = CASE WHEN $17 = '' THEN NULL ELSE $20::timestamptz END,
        "pageMarketplaceIds" = CASE WHEN $17 = '' THEN NULL ELSE $21::text[] END,
        "cursorAt" = COALESCE($18::timestamptz, "cursorAt"),
        "lastPolledAt" = $3::timestamptz,
        "lastSuccessAt" = CASE WHEN $17 = '' THEN $3::timestamptz ELSE "lastSuccessAt" END,
        "leaseUntil" = COALESCE($19::timestamptz, "leaseUntil"),
        "pageCount" = "pageCount" + 1,
        "eventCount" = "eventCount" + cardinality($5::text[]),
        "updatedAt" = $3::timestamptz
    WHERE $16 <> '' AND "connectionId" = $2 AND "leaseOwner" = $16
    RETURNING "syncStateId", "cursorAt", "lastSuccessAt"
), seed AS (
    UPDATE public."MarketplaceSyncState" ss SET
        "cursor" = COALESCE(NULLIF($17, ''), to_char(f."cursorAt" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
        "lastPolledAt" = $3::timestamptz AT TIME ZONE 'UTC',
        "lastSuccessAt" = f."lastSuccessAt" AT TIME ZONE 'UTC',
        "updatedAt" = $3::timestamptz AT TIME ZONE 'UTC'
    FROM fence f WHERE ss."id" = f."syncStateId"
), synced AS (
    UPDATE public."MarketplaceConnection" SET
        "lastSyncAt" = $3::timestamptz AT TIME ZONE 'UTC',
        "updatedAt" = $3::timestamptz AT TIME ZONE 'UTC'
    WHERE "id" = $2 AND $17 = '' AND EXISTS (SELECT 1 FROM fence)
), connected AS (
    SELECT 1 FROM public."MarketplaceConnection"
    WHERE $16 = '' AND "id" = $2 AND "tenantId" = $1 AND "status" = 'CONNECTED'
    FOR SHARE
), guard AS (
    SELECT EXISTS (SELECT 1 FROM fence) OR EXISTS (SELECT 1 FROM connected) AS ok
), input AS (
    SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                         $11::text[], $12::text[], $13::text[], $14::timestamptz[], $15::text[])
        AS u("type", "externalId", "threadKey", "orderId", "marketplaceId", "buyerName", "buyerEmail",
             "language", "subject", "body", "receivedAt", "raw")
    WHERE (SELECT ok FROM guard)
), fresh AS (
    SELECT i.* FROM input i
    WHERE NOT EXISTS (SELECT 1 FROM public."ExternalMessage" e
                      WHERE e."type" = i."type"::"MarketplaceType" AND e."connectionId" = $2 AND e."externalId" = i."externalId")
), threads AS (
    SELECT DISTINCT ON ("threadKey") "threadKey", "orderId", "buyerName", "buyerEmail", "subject", "body",
           max("receivedAt") OVER (PARTITION BY "threadKey") AS "lastMessageAt",
           keybuzz_amazon.cuid() AS "ticketId"
    FROM fresh
    ORDER BY "threadKey", "receivedAt"
), thread AS (
    INSERT INTO keybuzz_amazon."TicketThread" ("tenantId", "threadKey", "ticketId", "orderId", "lastMessageAt", "createdAt", "updatedAt")
    SELECT $1, t."threadKey", t."ticketId", t."orderId", t."lastMessageAt", $3::timestamptz, $3::timestamptz
    FROM threads t
    ON CONFLICT ("tenantId", "threadKey") DO UPDATE SET
        "orderId" = COALESCE("TicketThread"."orderId", EXCLUDED."orderId"),
        "lastMessageAt" = GREATEST("TicketThread"."lastMessageAt", EXCLUDED."lastMessageAt"),
        "updatedAt" = EXCLUDED."updatedAt"
    RETURNING "threadKey", "ticketId", (xmax = 0) AS "created"
), tickets AS (
    INSERT INTO public."Ticket" ("id", "tenantId", "customerName", "customerEmail", "externalId", "channel", "status", "priority",
                                 "subject", "createdAt", "updatedAt")
    SELECT th."ticketId", $1, t."buyerName", t."buyerEmail", COALESCE(t."orderId", t."threadKey"), 'AMAZON', 'OPEN', 'NORMAL',
           COALESCE(NULLIF(t."subject", ''), NULLIF(left(t."body", 100), ''), 'New Amazon message'),
           $3::timestamptz AT TIME ZONE 'UTC', $3::timestamptz AT TIME ZONE 'UTC'
    FROM thread th JOIN threads t ON t."threadKey" = th."threadKey"
    WHERE th."created"
    RETURNING "id"
), ins AS (
    INSERT INTO public."ExternalMessage" ("id", "tenantId", "connectionId", "type", "externalId", "threadId", "orderId",
                                          "buyerName", "buyerEmail", "language", "receivedAt", "raw", "ticketId", "createdAt")
    SELECT keybuzz_amazon.cuid(), $1, $2, f."type"::"MarketplaceType", f."externalId", f."threadKey", f."orderId",
           f."buyerName", f."buyerEmail", f."language", f."receivedAt" AT TIME ZONE 'UTC', f."raw"::jsonb,
           th."ticketId", $3::timestamptz AT TIME ZONE 'UTC'
    FROM fresh f JOIN thread th ON th."threadKey" = f."threadKey"
    ON CONFLICT ("type", "connectionId", "externalId") DO NOTHING
    RETURNING "id", "type"::text AS "type", "externalId", "ticketId"
), msg AS (
    INSERT INTO keybuzz_amazon."Message" ("externalMessageId", "tenantId", "connectionId", "ticketId", "ticketMessageId",
                                          "threadKey", "marketplaceId", "subject", "body", "createdAt")
    SELECT i."id", $1, $2, i."ticketId", keybuzz_amazon.cuid(), f."threadKey", f."marketplaceId", NULLIF(f."subject", ''), f."body", $3::timestamptz
    FROM ins i JOIN fresh f ON f."type" = i."type" AND f."externalId" = i."externalId"
    RETURNING "externalMessageId", "ticketId", "ticketMessageId"
), tm AS (
    INSERT INTO public."TicketMessage" ("id", "ticketId", "tenantId", "senderType", "senderName", "sentAt", "body", "isInternal", "source")
    SELECT m."ticketMessageId", m."ticketId", $1, 'CUSTOMER', f."buyerName", f."receivedAt" AT TIME ZONE 'UTC', f."body", false, 'MARKETPLACE'
    FROM msg m JOIN ins i ON i."id" = m."externalMessageId" JOIN fresh f ON f."type" = i."type" AND f."externalId" = i."externalId"
    RETURNING 1
)
SELECT (SELECT count(*) FROM tm), (SELECT count(*) FROM tickets), (SELECT ok FROM guard),
       COALESCE((SELECT array_agg("id" ORDER BY "id") FROM ins), '{}'),
       COALESCE((SELECT array_agg("id" ORDER BY "id") FROM tickets), '{}')`

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

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ingest runs ingestSQL for msgs (distinct externalIds) as of now, guarded
// by f when f.owner is set, else by the connection being the tenant's and
// CONNECTED; fenced reports whether the guard held.
//
// The statement's arguments go in PostgreSQL's binary format
// (QueryExecModeCacheDescribe: the connection asks for the statement's
// parameter types once and keeps them, then sends Parse, Bind and Execute in
// one round trip, as the pool's exec mode does, with no named statement):
// the exec mode's text format makes the server parse every array element
// (a page of 100 orders is tens of kilobytes of quoted text, most of it the
// raw JSON).
func ingest(ctx context.Context, q querier, tenantID, connectionID string, msgs []marketplace.InboundMessage, now time.Time, f fence) (res marketplace.PageResult, fenced bool, err error) {
	args := append([]any{pgx.QueryExecModeCacheDescribe}, ingestArgs(tenantID, connectionID, msgs, now, f)...)
	err = q.QueryRow(ctx, ingestSQL, args...).Scan(&res.MessagesCreated, &res.TicketsCreated, &fenced, &res.ExternalMessageIDs, &res.TicketIDs)
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
