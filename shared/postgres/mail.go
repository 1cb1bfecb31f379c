package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// The relay-mail intake's statements: KeyBuzz's inbound_addresses (0004)
// and the connector's "InboundMail", "InboundMailAttachment" (0007).

const addressColumns = `a."id", a."tenantId", a."country", a."token", a."emailAddress", a."pipelineStatus"::text,
    a."marketplaceStatus"::text, a."lastInboundAt", COALESCE(a."lastError", ''),
    COALESCE(c."id", ''), COALESCE(c."status"::text = 'CONNECTED', false)`

func scanAddress(row pgx.Row) (marketplace.InboundAddress, error) {
	var a marketplace.InboundAddress
	var last *time.Time
	err := row.Scan(&a.ID, &a.TenantID, &a.Country, &a.Token, &a.EmailAddress, &a.PipelineStatus,
		&a.MarketplaceStatus, &last, &a.LastError, &a.ConnectionID, &a.Accepting)
	if last != nil {
		t := last.UTC()
		a.LastInboundAt = &t
	}
	if m, ok := amazon.MarketplaceForCountry(a.Country); ok {
		a.MarketplaceID = m.ID
	}
	return a, err
}

// InboundAddressByEmail finds an Amazon inbound address, whatever its case,
// with the tenant's connection: Accepting only while it is CONNECTED.
func (s *Store) InboundAddressByEmail(ctx context.Context, email string) (marketplace.InboundAddress, error) {
	a, err := scanAddress(s.pool.QueryRow(ctx, `SELECT `+addressColumns+`
FROM public."inbound_addresses" a
LEFT JOIN keybuzz_amazon."Connection" kc ON kc."tenantId" = a."tenantId" AND kc."type" = 'AMAZON'
LEFT JOIN public."MarketplaceConnection" c ON c."id" = kc."connectionId"
WHERE lower(a."emailAddress") = lower($1) AND a."marketplace" = $2`, email, marketplace.InboundMarketplace))
	if errors.Is(err, pgx.ErrNoRows) {
		return marketplace.InboundAddress{}, fmt.Errorf("inbound address %s: %w", email, marketplace.ErrNotFound)
	}
	if err != nil {
		return marketplace.InboundAddress{}, unavailable("inbound address", err)
	}
	return a, nil
}

// InboundAddresses lists a tenant's Amazon inbound addresses by country.
func (s *Store) InboundAddresses(ctx context.Context, tenantID string) ([]marketplace.InboundAddress, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+addressColumns+`
FROM public."inbound_addresses" a
LEFT JOIN keybuzz_amazon."Connection" kc ON kc."tenantId" = a."tenantId" AND kc."type" = 'AMAZON'
LEFT JOIN public."MarketplaceConnection" c ON c."id" = kc."connectionId"
WHERE a."tenantId" = $1 AND a."marketplace" = $2
ORDER BY a."country"`, tenantID, marketplace.InboundMarketplace)
	if err != nil {
		return nil, unavailable("inbound addresses", err)
	}
	defer rows.Close()
	var out []marketplace.InboundAddress
	for rows.Next() {
		a, err := scanAddress(rows)
		if err != nil {
			return nil, unavailable("inbound addresses", err)
		}
		out = append(out, a)
	}
	return out, unavailable("inbound addresses", rows.Err())
}

// EnsureInboundAddresses adds the addresses a tenant does not have yet, in
// KeyBuzz's shape: its inbound_connections row for Amazon (countries
// merged) and one inbound_addresses row per country. An existing address
// is never replaced: an address is stable until rotated.
func (s *Store) EnsureInboundAddresses(ctx context.Context, tenantID string, addrs []marketplace.InboundAddress) error {
	if len(addrs) == 0 {
		return nil
	}
	countries := make([]string, len(addrs))
	for i, a := range addrs {
		countries[i] = a.Country
	}
	cj, _ := json.Marshal(countries)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var connID string
		if err := tx.QueryRow(ctx, `
INSERT INTO public."inbound_connections" ("id", "tenantId", "marketplace", "countries", "status", "createdAt", "updatedAt")
VALUES (keybuzz_amazon.cuid(), $1, $2, $3::jsonb, 'WAITING_AMAZON', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
ON CONFLICT ("tenantId", "marketplace") DO UPDATE SET
    "countries" = (SELECT jsonb_agg(DISTINCT c ORDER BY c) FROM jsonb_array_elements_text("inbound_connections"."countries" || EXCLUDED."countries") c),
    "updatedAt" = EXCLUDED."updatedAt"
RETURNING "id"`, tenantID, marketplace.InboundMarketplace, string(cj)).Scan(&connID); err != nil {
			return err
		}
		for _, a := range addrs {
			if _, err := tx.Exec(ctx, `
INSERT INTO public."inbound_addresses" ("id", "connectionId", "tenantId", "marketplace", "country", "token", "emailAddress",
                                 "validationStatus", "pipelineStatus", "marketplaceStatus", "createdAt", "updatedAt")
VALUES (keybuzz_amazon.cuid(), $1, $2, $3, $4, $5, $6, 'PENDING', 'PENDING', 'PENDING', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
ON CONFLICT ("tenantId", "marketplace", "country") DO NOTHING`,
				connID, tenantID, marketplace.InboundMarketplace, a.Country, a.Token, a.EmailAddress); err != nil {
				return err
			}
		}
		return nil
	})
	return unavailable("ensure inbound addresses", err)
}

// mailColumns are "InboundMail"'s columns as recordArgs orders them.
const mailColumns = `"sesMessageId", "recipient", "bucket", "objectKey", "size", "tenantId", "connectionId", "addressId",
    "messageId", "from", "subject", "orderId", "kind", "outcome", "decision",
    "spamVerdict", "virusVerdict", "spfVerdict", "dkimVerdict", "dmarcVerdict", "dmarcPolicy",
    "externalMessageId", "ticketId", "receivedAt"`

const recordMailSQL = `
INSERT INTO keybuzz_amazon."InboundMail" (` + mailColumns + `)
VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), NULLIF($5, 0), NULLIF($6, ''), NULLIF($7, ''), NULLIF($8, ''),
    NULLIF($9, ''), NULLIF($10, ''), NULLIF($11, ''), NULLIF($12, ''), NULLIF($13, ''), $14, NULLIF($15, ''),
    NULLIF($16, ''), NULLIF($17, ''), NULLIF($18, ''), NULLIF($19, ''), NULLIF($20, ''), NULLIF($21, ''),
    NULLIF($22, ''), NULLIF($23, ''), $24)
ON CONFLICT ("sesMessageId", "recipient") DO NOTHING
RETURNING "outcome"`

func recordArgs(r marketplace.ReceivedMail, externalMessageID, ticketID string) []any {
	v := r.Verdicts
	// What a hostile mail's headers hold (a NUL, bytes that are not UTF-8)
	// reaches PostgreSQL's text only as pgText makes it: a refused mail is
	// recorded, never retried into the DLQ.
	return []any{r.SESMessageID, pgText(r.Recipient), r.Bucket, r.ObjectKey, r.Size, r.TenantID, r.ConnectionID, r.AddressID,
		pgText(r.MessageID), pgText(r.From), pgText(r.Subject), pgText(r.OrderID), r.Kind, string(r.Outcome), pgText(r.Decision),
		v.Spam, v.Virus, v.SPF, v.DKIM, v.DMARC, v.DMARCPolicy, externalMessageID, ticketID, r.ReceivedAt}
}

// recordRefusalSQL is recordMailSQL and, when the row is new and the mail
// reached a known address ($25), the refusal's reason on that address
// ("lastError"): one statement.
const recordRefusalSQL = `
WITH rec AS (` + recordMailSQL + `
)
UPDATE public."inbound_addresses" SET "lastError" = $26, "updatedAt" = now() AT TIME ZONE 'UTC'
WHERE $25 <> '' AND "id" = $25 AND EXISTS (SELECT 1 FROM rec)`

// RecordMail writes a mail's outcome unless its (sesMessageId, recipient)
// row exists (a redelivery keeps the first outcome). A refused mail to a
// known address leaves its reason on the address ("lastError"). One
// statement (recordRefusalSQL).
func (s *Store) RecordMail(ctx context.Context, r marketplace.ReceivedMail) error {
	args := append(recordArgs(r, "", ""), r.AddressID, pgText(fmt.Sprintf("%s: %s", r.Outcome, r.Decision)))
	_, err := s.pool.Exec(ctx, recordRefusalSQL, args...)
	return unavailable("record mail", err)
}

// mailStoredSQL is what IngestMail writes after ingestSQL, in the same
// transaction: it finds the message the mail was stored as (the
// mail's Message-ID under its connection) and whether this transaction
// created it (its xmin is the transaction's id: ingestSQL inserted it
// rather than finding it, from another SES message or a redelivery), then
// for a created message the attachments and the buyer's name on a ticket
// an order event opened; the outcome row (TICKETED when created, else
// DUPLICATE; a redelivery keeps the first outcome, which it returns); and
// the address's last reception (the first one validates the address).
// $1-$13 are recordMailSQL's, $14-$20 its decision and verdicts, $21 its
// receivedAt (recordArgs' but the outcome and the ids); $22 the message's externalId, $23 the
// buyer's name, $24 the default buyer name, $25-$31 the attachments.
const mailStoredSQL = `
WITH m AS (
    SELECT "id", COALESCE("ticketId", '') AS "ticketId", ("xmin" = pg_current_xact_id()::xid) AS "created"
    FROM public."ExternalMessage"
    WHERE "type" = 'AMAZON' AND "connectionId" = $7::text AND "externalId" = $22::text
), atts AS (
    INSERT INTO keybuzz_amazon."InboundMailAttachment" ("tenantId", "externalMessageId", "bucket", "objectKey", "filename", "contentType",
        "contentId", "inline", "size", "sha256")
    SELECT $6::text, m."id", $3::text, a."objectKey", NULLIF(a."filename", ''), a."contentType", NULLIF(a."contentId", ''),
        a."inline", a."size", a."sha256"
    FROM m, unnest($25::text[], $26::text[], $27::text[], $28::text[], $29::boolean[], $30::bigint[], $31::text[])
        AS a("objectKey", "filename", "contentType", "contentId", "inline", "size", "sha256")
    WHERE m."created"
    ON CONFLICT ("externalMessageId", "objectKey") DO NOTHING
), named AS (
    UPDATE public."Ticket" t SET "customerName" = $23::text, "updatedAt" = now() AT TIME ZONE 'UTC'
    FROM m
    WHERE m."created" AND $23::text <> '' AND t."id" = m."ticketId" AND t."customerName" = $24::text
), rec AS (
    INSERT INTO keybuzz_amazon."InboundMail" (` + mailColumns + `)
    SELECT $1::text, $2::text, NULLIF($3::text, ''), NULLIF($4::text, ''), NULLIF($5::bigint, 0), NULLIF($6::text, ''),
        NULLIF($7::text, ''), NULLIF($8::text, ''), NULLIF($9::text, ''), NULLIF($10::text, ''), NULLIF($11::text, ''),
        NULLIF($12::text, ''), NULLIF($13::text, ''), CASE WHEN m."created" THEN 'TICKETED' ELSE 'DUPLICATE' END,
        NULLIF($14::text, ''), NULLIF($15::text, ''), NULLIF($16::text, ''), NULLIF($17::text, ''), NULLIF($18::text, ''),
        NULLIF($19::text, ''), NULLIF($20::text, ''), m."id", NULLIF(m."ticketId", ''), $21::timestamptz
    FROM m
    ON CONFLICT ("sesMessageId", "recipient") DO NOTHING
    RETURNING "outcome"
), addr AS (
    UPDATE public."inbound_addresses" SET
        "lastInboundAt" = GREATEST("lastInboundAt", $21::timestamptz AT TIME ZONE 'UTC'),
        "lastInboundMessageId" = CASE WHEN "lastInboundAt" IS NULL OR "lastInboundAt" <= $21::timestamptz AT TIME ZONE 'UTC'
                                      THEN $22::text ELSE "lastInboundMessageId" END,
        "pipelineStatus" = 'VALIDATED', "validationStatus" = 'VALIDATED', "marketplaceStatus" = 'VALIDATED',
        "lastError" = NULL,
        "updatedAt" = now() AT TIME ZONE 'UTC'
    WHERE "id" = $8::text
)
SELECT m."id", m."ticketId", m."created",
    COALESCE((SELECT "outcome" FROM rec),
             (SELECT "outcome" FROM keybuzz_amazon."InboundMail" WHERE "sesMessageId" = $1::text AND "recipient" = $2::text), '')
FROM m`

// IngestMail stores an accepted mail in one transaction and one round
// trip: its message through the one ingestion path (ingestSQL), then
// mailStoredSQL (the attachments of a new message, the outcome row:
// TICKETED, or DUPLICATE when another SES message already brought the same
// mail, a redelivery keeping the first outcome; and the address's last
// reception, the first one validating the address). Both statements go in
// one pipelined batch, which PostgreSQL runs as one implicit transaction:
// either both are stored or neither is.
func (s *Store) IngestMail(ctx context.Context, r marketplace.ReceivedMail, msg marketplace.InboundMessage, atts []marketplace.MailAttachment) (marketplace.MailResult, error) {
	var res marketplace.MailResult
	var page marketplace.PageResult
	var fenced, created bool
	var extID, outcome string
	n := len(atts)
	keys, names, types, cids, sums := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	inline, sizes := make([]bool, n), make([]int64, n)
	for i, a := range atts {
		keys[i], names[i], types[i], cids[i], sums[i], inline[i], sizes[i] = pgText(a.ObjectKey), pgText(a.Filename), pgText(a.ContentType), pgText(a.ContentID), a.SHA256, a.Inline, a.Size
	}
	rec := recordArgs(r, "", "")
	args := append(append(rec[:13:13], rec[14:21]...), rec[23], msg.ExternalID, strings.TrimSpace(pgText(msg.BuyerName)), marketplace.DefaultBuyerName,
		keys, names, types, cids, inline, sizes, sums)
	b := &pgx.Batch{}
	b.Queue(ingestSQL, ingestArgs(r.TenantID, r.ConnectionID, []marketplace.InboundMessage{msg}, s.now(), fence{})...).
		QueryRow(func(row pgx.Row) error {
			if err := row.Scan(&page.MessagesCreated, &page.TicketsCreated, &fenced, &page.ExternalMessageIDs, &page.TicketIDs); err != nil {
				return fmt.Errorf("store the message: %w", err)
			}
			if !fenced {
				return fmt.Errorf("store the message of %s: %w", r.ConnectionID, marketplace.ErrNotConnected)
			}
			return nil
		})
	b.Queue(mailStoredSQL, args...).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&extID, &res.TicketID, &created, &outcome); err != nil && !(errors.Is(err, pgx.ErrNoRows) && !fenced) {
			return fmt.Errorf("record mail: %w", err)
		}
		return nil
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		if errors.Is(err, marketplace.ErrNotConnected) {
			return marketplace.MailResult{}, fmt.Errorf("ingest mail: %w", err)
		}
		return marketplace.MailResult{}, unavailable("ingest mail", err)
	}
	res.MessageCreated, res.TicketCreated = page.MessagesCreated > 0, page.TicketsCreated > 0
	res.Outcome = marketplace.MailOutcome(outcome)
	return res, nil
}

// RequestOrderContext records a ticket's wish for its order's context, due
// at c.NextAttemptAt (at once when zero); it says whether the row is new
// (a ticket asks once).
func (s *Store) RequestOrderContext(ctx context.Context, c marketplace.OrderContext) (bool, error) {
	var due *time.Time
	if !c.NextAttemptAt.IsZero() {
		due = &c.NextAttemptAt
	}
	tag, err := s.pool.Exec(ctx, `
INSERT INTO keybuzz_amazon."TicketOrderContext" ("ticketId", "tenantId", "connectionId", "orderId", "nextAttemptAt")
VALUES ($1, $2, $3, $4, COALESCE($5::timestamptz, now())) ON CONFLICT ("ticketId") DO NOTHING`, c.TicketID, c.TenantID, c.ConnectionID, c.OrderID, due)
	if err != nil {
		return false, unavailable("request order context", err)
	}
	return tag.RowsAffected() == 1, nil
}

// CompleteOrderContext stores an order's context on its ticket, once: the
// row becomes DONE and the ticket gets the summary as an internal SYSTEM
// message, in one statement.
func (s *Store) CompleteOrderContext(ctx context.Context, c marketplace.OrderContext) error {
	_, err := s.pool.Exec(ctx, `
WITH done AS (
    UPDATE keybuzz_amazon."TicketOrderContext" SET "status" = 'DONE', "context" = $2::jsonb, "attempts" = "attempts" + 1,
        "lastError" = NULL, "updatedAt" = now()
    WHERE "ticketId" = $1 AND "status" = 'PENDING'
    RETURNING "ticketId"
)
INSERT INTO public."TicketMessage" ("id", "ticketId", "tenantId", "senderType", "senderName", "sentAt", "body", "isInternal", "source")
SELECT keybuzz_amazon.cuid(), d."ticketId", $3, 'SYSTEM', 'Amazon order', now() AT TIME ZONE 'UTC', $4, true, 'MARKETPLACE'
FROM done d`, c.TicketID, pgJSON(string(c.Context)), c.TenantID, pgText(c.Summary))
	return unavailable("complete order context", err)
}

// DeferOrderContexts leaves the tickets' PENDING contexts PENDING until
// retryAt, or FAILED, in one statement.
func (s *Store) DeferOrderContexts(ctx context.Context, ticketIDs []string, retryAt time.Time, lastError string, failed bool) error {
	status := "PENDING"
	if failed {
		status = "FAILED"
	}
	_, err := s.pool.Exec(ctx, `
UPDATE keybuzz_amazon."TicketOrderContext" SET "status" = $2, "nextAttemptAt" = $3, "lastError" = $4, "attempts" = "attempts" + 1, "updatedAt" = now()
WHERE "ticketId" = ANY($1::text[]) AND "status" = 'PENDING'`, ticketIDs, status, retryAt, pgText(lastError))
	return unavailable("defer order contexts", err)
}

// DueOrderContexts lists PENDING contexts due by now, oldest first.
func (s *Store) DueOrderContexts(ctx context.Context, now time.Time, limit int) ([]marketplace.OrderContext, error) {
	rows, err := s.pool.Query(ctx, `
SELECT "ticketId", "tenantId", "connectionId", "orderId" FROM keybuzz_amazon."TicketOrderContext"
WHERE "status" = 'PENDING' AND "nextAttemptAt" <= $1 ORDER BY "nextAttemptAt" LIMIT $2`, now, limit)
	if err != nil {
		return nil, unavailable("due order contexts", err)
	}
	defer rows.Close()
	var out []marketplace.OrderContext
	for rows.Next() {
		var c marketplace.OrderContext
		if err := rows.Scan(&c.TicketID, &c.TenantID, &c.ConnectionID, &c.OrderID); err != nil {
			return nil, unavailable("due order contexts", err)
		}
		out = append(out, c)
	}
	return out, unavailable("due order contexts", rows.Err())
}

// TicketMessages lists the messages of a tenant's tickets, oldest first.
func (s *Store) TicketMessages(ctx context.Context, tenantID string, ticketIDs []string) ([]marketplace.TicketMessageView, error) {
	rows, err := s.pool.Query(ctx, `
SELECT "ticketId", "senderType"::text, COALESCE("senderName", ''), "body", "sentAt", "isInternal"
FROM public."TicketMessage" WHERE "tenantId" = $1 AND "ticketId" = ANY($2) ORDER BY "sentAt", "id"`, tenantID, ticketIDs)
	if err != nil {
		return nil, unavailable("ticket messages", err)
	}
	defer rows.Close()
	var out []marketplace.TicketMessageView
	for rows.Next() {
		var m marketplace.TicketMessageView
		if err := rows.Scan(&m.TicketID, &m.SenderType, &m.SenderName, &m.Body, &m.SentAt, &m.Internal); err != nil {
			return nil, unavailable("ticket messages", err)
		}
		out = append(out, m)
	}
	return out, unavailable("ticket messages", rows.Err())
}
