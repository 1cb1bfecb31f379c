package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

// Replies to buyers: KeyBuzz's TicketMessage, MarketplaceOutboundMessage,
// TicketEvent and Ticket.firstResponseAt, written as its Prisma schema
// makes them, and the connector's own keybuzz_amazon."Reply",
// "SesEvent", "SendBudget" and "SenderApproval" (migrations/0002_replies.sql).

// newCUID is a text id in the shape of Prisma's cuid() (25 characters
// starting with "c"), which KeyBuzz's client fills itself.
func newCUID() string { return "c" + marketplace.NewID(12) }

// ErrReplyNotFound is a reply id the store does not know.
var ErrReplyNotFound = errors.New("reply not found")

// CreateReply stores an agent's reply in one transaction: it reads the
// ticket (locked) and what the reply needs, lets plan decide, then writes
// the agent's TicketMessage, the PENDING MarketplaceOutboundMessage, the
// MESSAGE_SENT TicketEvent, the ticket's first response time, and the
// connector's Reply row. Another tenant's ticket is marketplace.ErrNotFound.
// A known Idempotency-Key answers the first reply (Replayed), or
// marketplace.ErrIdempotencyReused when its request differed.
func (s *Store) CreateReply(ctx context.Context, req reply.Request, plan func(reply.Thread) (reply.Draft, error)) (reply.Queued, error) {
	for attempt := 0; ; attempt++ {
		q, err := s.createReply(ctx, req, plan)
		if uniqueViolation(err, "Reply_tenantId_idempotencyKey_key") && attempt == 0 {
			continue // a concurrent request with the same key won: answer its reply
		}
		return q, err
	}
}

func (s *Store) createReply(ctx context.Context, req reply.Request, plan func(reply.Thread) (reply.Draft, error)) (reply.Queued, error) {
	var out reply.Queued
	now := s.now()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if req.IdempotencyKey != "" {
			var id, hash, status string
			err := tx.QueryRow(ctx, `
				SELECT r."id", r."requestHash", m."status"::text
				FROM keybuzz_amazon."Reply" r JOIN public."MarketplaceOutboundMessage" m ON m."id" = r."id"
				WHERE r."tenantId" = $1 AND r."idempotencyKey" = $2`, req.TenantID, req.IdempotencyKey).Scan(&id, &hash, &status)
			switch {
			case err == nil && hash == req.Hash():
				out = reply.Queued{ReplyID: id, Status: status, Replayed: true}
				return nil
			case err == nil:
				return fmt.Errorf("key %q: %w", req.IdempotencyKey, marketplace.ErrIdempotencyReused)
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
		}
		t := reply.Thread{TicketID: req.TicketID, TenantID: req.TenantID, Senders: map[string]string{}}
		err := tx.QueryRow(ctx, `
			SELECT t."status"::text, t."channel"::text, COALESCE(c."id", ''), COALESCE(c."status"::text = 'CONNECTED', false)
			FROM public."Ticket" t
			LEFT JOIN LATERAL (
				SELECT mc."id", mc."status" FROM public."MarketplaceConnection" mc
				WHERE mc."tenantId" = t."tenantId" AND mc."type" = 'AMAZON'
				ORDER BY (mc."status" = 'CONNECTED') DESC, mc."updatedAt" DESC LIMIT 1) c ON true
			WHERE t."id" = $1 AND t."tenantId" = $2
			FOR UPDATE OF t`, req.TicketID, req.TenantID).Scan(&t.Status, &t.Channel, &t.ConnectionID, &t.Connected)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("ticket %s: %w", req.TicketID, marketplace.ErrNotFound)
		}
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `
			SELECT e."buyerEmail", COALESCE(e."raw"->>'subject', ''), COALESCE(e."raw"->>'messageId', ''),
			       COALESCE(ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(e."raw"->'references') = 'array'
			                                                           THEN e."raw"->'references' ELSE '[]'::jsonb END)), '{}'),
			       COALESCE(e."orderId", '')
			FROM public."ExternalMessage" e
			WHERE e."ticketId" = $1 AND e."tenantId" = $2 AND e."buyerEmail" ILIKE '%@marketplace.amazon.%'
			ORDER BY (e."raw"->>'messageId' IS NOT NULL) DESC, e."receivedAt" DESC
			LIMIT 1`, req.TicketID, req.TenantID).Scan(&t.Alias, &t.BuyerSubject, &t.BuyerMessageID, &t.References, &t.OrderID)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT "country", "emailAddress" FROM public."inbound_addresses" WHERE "tenantId" = $1 AND "marketplace" = $2`,
			req.TenantID, marketplace.InboundMarketplace)
		if err != nil {
			return err
		}
		for rows.Next() {
			var cc, addr string
			if err := rows.Scan(&cc, &addr); err != nil {
				return err
			}
			t.Senders[cc] = addr
		}
		if err := rows.Err(); err != nil {
			return err
		}
		d, err := plan(t)
		if err != nil {
			return err
		}
		messageID := newCUID()
		payload, _ := json.Marshal(map[string]string{"outboundMessageId": d.ID, "ticketMessageId": messageID, "channel": "AMAZON", "to": d.To})
		batch := &pgx.Batch{}
		batch.Queue(`
			INSERT INTO public."TicketMessage" ("id", "ticketId", "tenantId", "senderType", "senderId", "sentAt", "body", "isInternal", "source")
			VALUES ($1, $2, $3, 'AGENT', NULLIF($4, ''), $5::timestamptz AT TIME ZONE 'UTC', $6, false, 'KEYBUZZ_UI')`,
			messageID, req.TicketID, req.TenantID, req.AgentID, now, d.Text)
		batch.Queue(`
			INSERT INTO public."MarketplaceOutboundMessage" ("id", "tenantId", "connectionId", "ticketId", "channel", "marketplaceType",
			    "externalThreadId", "orderId", "toAddress", "subject", "body", "bodyHash", "status", "attempts", "createdAt", "updatedAt")
			VALUES ($1, $2, $3, $4, 'AMAZON', 'AMAZON', NULLIF($5, ''), NULLIF($5, ''), $6, $7, $8, $9, 'PENDING', 0,
			    $10::timestamptz AT TIME ZONE 'UTC', $10::timestamptz AT TIME ZONE 'UTC')`,
			d.ID, req.TenantID, t.ConnectionID, req.TicketID, d.OrderID, d.To, d.Subject, d.Text, d.BodyHash, now)
		batch.Queue(`
			INSERT INTO public."TicketEvent" ("id", "ticketId", "tenantId", "type", "createdAt", "actorType", "actorId", "payload")
			VALUES ($1, $2, $3, 'MESSAGE_SENT', $4::timestamptz AT TIME ZONE 'UTC', 'AGENT', NULLIF($5, ''), $6::jsonb)`,
			newCUID(), req.TicketID, req.TenantID, now, req.AgentID, string(payload))
		batch.Queue(`
			UPDATE public."Ticket" SET "firstResponseAt" = COALESCE("firstResponseAt", $2::timestamptz AT TIME ZONE 'UTC'),
			    "updatedAt" = $2::timestamptz AT TIME ZONE 'UTC'
			WHERE "id" = $1`, req.TicketID, now)
		batch.Queue(`
			INSERT INTO keybuzz_amazon."Reply" ("id", "tenantId", "connectionId", "ticketId", "ticketMessageId", "agentId",
			    "idempotencyKey", "requestHash", "fromAddress", "toAddress", "subject", "inReplyTo", "references", "orderId",
			    "state", "nextAttemptAt", "queuedAt", "createdAt", "updatedAt")
			VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''), NULLIF($7, ''), $8, $9, $10, $11, NULLIF($12, ''), $13, NULLIF($14, ''),
			    'QUEUED', $15, $15, $15, $15)`,
			d.ID, req.TenantID, t.ConnectionID, req.TicketID, messageID, req.AgentID, req.IdempotencyKey, req.Hash(),
			d.From, d.To, d.Subject, d.InReplyTo, nonNil(d.References), d.OrderID, now)
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		out = reply.Queued{ReplyID: d.ID, Status: reply.StatusPending}
		return nil
	})
	if err != nil {
		if _, ok := marketplace.AsError(err); ok && !errors.Is(err, marketplace.ErrUnavailable) {
			return reply.Queued{}, err
		}
		return reply.Queued{}, unavailable("create reply", err)
	}
	return out, nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// Outbound lists a ticket's replies newest first, and when its oldest
// unanswered buyer message turns 24 hours old (nil when none waits).
// Another tenant's ticket is marketplace.ErrNotFound.
func (s *Store) Outbound(ctx context.Context, tenantID, ticketID string) ([]reply.Outbound, *time.Time, error) {
	var due *time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT (SELECT min(c."sentAt") FROM public."TicketMessage" c
		        WHERE c."ticketId" = t."id" AND c."senderType" = 'CUSTOMER' AND NOT c."isInternal"
		          AND c."sentAt" > COALESCE((SELECT max(a."sentAt") FROM public."TicketMessage" a
		                                    WHERE a."ticketId" = t."id" AND a."senderType" = 'AGENT' AND NOT a."isInternal"), '-infinity'))
		FROM public."Ticket" t WHERE t."id" = $1 AND t."tenantId" = $2`, ticketID, tenantID).Scan(&due)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, fmt.Errorf("ticket %s: %w", ticketID, marketplace.ErrNotFound)
	}
	if err != nil {
		return nil, nil, unavailable("outbound", err)
	}
	if due != nil {
		d := due.Add(24 * time.Hour)
		due = &d
	}
	rows, err := s.pool.Query(ctx, `
		SELECT "id", "status"::text, "body", "providerMessageId", "error", "attempts", "createdAt", "sentAt"
		FROM public."MarketplaceOutboundMessage" WHERE "ticketId" = $1 AND "tenantId" = $2
		ORDER BY "createdAt" DESC, "id" DESC`, ticketID, tenantID)
	if err != nil {
		return nil, nil, unavailable("outbound", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (reply.Outbound, error) {
		var o reply.Outbound
		err := r.Scan(&o.ID, &o.Status, &o.Body, &o.ProviderMessageID, &o.Error, &o.Attempts, &o.CreatedAt, &o.SentAt)
		return o, err
	})
	if err != nil {
		return nil, nil, unavailable("outbound", err)
	}
	if list == nil {
		list = []reply.Outbound{}
	}
	return list, due, nil
}

// ClaimReply takes a reply for sending until now+lease: a QUEUED reply
// whose time has come, or a SENDING one whose claim went stale (its sender
// died: Uncertain, since it may have reached SES). ok is false when the
// reply is not to be sent now; retryAt is then when it will be (zero when
// never: sent, failed, or another sender's live claim covers it).
func (s *Store) ClaimReply(ctx context.Context, id, owner string, lease time.Duration) (p reply.Pending, ok bool, retryAt time.Time, err error) {
	now := s.now()
	var prev string
	err = s.pool.QueryRow(ctx, `
		WITH cur AS (SELECT "state" AS prev, "nextAttemptAt" FROM keybuzz_amazon."Reply" WHERE "id" = $1 FOR UPDATE)
		UPDATE keybuzz_amazon."Reply" r SET "state" = 'SENDING', "leaseOwner" = $2, "leaseUntil" = $3::timestamptz + $4 * interval '1 millisecond',
		    "attempts" = r."attempts" + 1, "updatedAt" = $3
		FROM cur
		WHERE r."id" = $1 AND ((r."state" = 'QUEUED' AND r."nextAttemptAt" <= $3) OR (r."state" = 'SENDING' AND r."leaseUntil" < $3))
		RETURNING r."tenantId", r."ticketId", r."fromAddress", r."toAddress", r."subject", COALESCE(r."inReplyTo", ''), r."references",
		    (SELECT m."body" FROM public."MarketplaceOutboundMessage" m WHERE m."id" = r."id"), r."attempts" - 1, cur.prev,
		    COALESCE(r."reasonCode" = 'uncertain', false)`,
		id, owner, now, lease.Milliseconds()).Scan(&p.TenantID, &p.TicketID, &p.From, &p.To, &p.Subject, &p.InReplyTo, &p.References,
		&p.Text, &p.Attempts, &prev, &p.Uncertain)
	if err == nil {
		p.ID = id
		p.Uncertain = p.Uncertain || prev == reply.StateSending
		return p, true, time.Time{}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return p, false, time.Time{}, unavailable("claim reply", err)
	}
	var state string
	var next, leaseUntil *time.Time
	err = s.pool.QueryRow(ctx, `SELECT "state", "nextAttemptAt", "leaseUntil" FROM keybuzz_amazon."Reply" WHERE "id" = $1`, id).
		Scan(&state, &next, &leaseUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, time.Time{}, fmt.Errorf("claim reply %s: %w", id, ErrReplyNotFound)
	}
	if err != nil {
		return p, false, time.Time{}, unavailable("claim reply", err)
	}
	switch {
	case state == reply.StateQueued && next != nil:
		return p, false, *next, nil
	case state == reply.StateSending && leaseUntil != nil:
		return p, false, *leaseUntil, nil
	}
	return p, false, time.Time{}, nil
}

// SentBySES returns SES's MessageId of a reply's Send event, if SES
// published one (the reply reached SES even if its sender never knew).
func (s *Store) SentBySES(ctx context.Context, replyID string) (string, bool, error) {
	var id string
	err := s.pool.QueryRow(ctx, `
		SELECT "sesMessageId" FROM keybuzz_amazon."SesEvent" WHERE "replyId" = $1 AND "eventType" IN ('Send', 'Delivery', 'Bounce', 'DeliveryDelay')
		ORDER BY "id" LIMIT 1`, replyID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, unavailable("find SES event", err)
	}
	return id, true, nil
}

// ReplyAccepted records SES's MessageId: KeyBuzz's row becomes SENT (with
// OUTBOUND_SENT) unless an event already decided; fenced by the claim.
func (s *Store) ReplyAccepted(ctx context.Context, id, owner, sesMessageID string) error {
	return s.finishReply(ctx, id, owner, func(tx pgx.Tx, cur reply.Fate, now time.Time) error {
		tr := reply.Apply(cur, "Send")
		return s.writeFate(ctx, tx, id, now, tr, sesMessageID, "", "")
	})
}

// ReplyRetry puts a claimed reply back in the queue until next; uncertain
// says SES may have received this attempt (look for its Send event first).
func (s *Store) ReplyRetry(ctx context.Context, id, owner string, next time.Time, uncertain bool, reason string) error {
	return s.finishReply(ctx, id, owner, func(tx pgx.Tx, cur reply.Fate, now time.Time) error {
		code := "transient"
		if uncertain {
			code = "uncertain"
		}
		_, err := tx.Exec(ctx, `
			WITH r AS (
			    UPDATE keybuzz_amazon."Reply" SET "state" = 'QUEUED', "leaseOwner" = NULL, "leaseUntil" = NULL, "nextAttemptAt" = $2,
			        "reasonCode" = $3, "reason" = $4, "updatedAt" = $5
			    WHERE "id" = $1 RETURNING 1)
			UPDATE public."MarketplaceOutboundMessage" SET "attempts" = "attempts" + 1, "error" = $4, "updatedAt" = $5::timestamptz AT TIME ZONE 'UTC'
			WHERE "id" = $1 AND "status" = 'PENDING'`, id, next, code, reason, now)
		return err
	})
}

// ReplyFailed ends a claimed reply FAILED with a reason an agent reads.
func (s *Store) ReplyFailed(ctx context.Context, id, owner, code, reason string) error {
	return s.finishReply(ctx, id, owner, func(tx pgx.Tx, cur reply.Fate, now time.Time) error {
		tr := reply.Apply(cur, "Reject")
		return s.writeFate(ctx, tx, id, now, tr, "", code, reason)
	})
}

// finishReply runs f on a reply this owner still claims.
func (s *Store) finishReply(ctx context.Context, id, owner string, f func(pgx.Tx, reply.Fate, time.Time) error) error {
	now := s.now()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var cur reply.Fate
		var leaseOwner *string
		err := tx.QueryRow(ctx, `SELECT "state", "leaseOwner" FROM keybuzz_amazon."Reply" WHERE "id" = $1 FOR UPDATE`, id).Scan(&cur.State, &leaseOwner)
		if err != nil {
			return err
		}
		if cur.Status, err = outboundStatus(ctx, tx, id); err != nil {
			return err
		}
		if cur.State != reply.StateSending || leaseOwner == nil || *leaseOwner != owner {
			return nil // SES's events decided meanwhile, or another sender took over

		}
		return f(tx, cur, now)
	})
	return unavailable("finish reply", err)
}

// outboundStatus is KeyBuzz's status of a reply whose Reply row the
// transaction has just locked, read by a statement of its own: under READ
// COMMITTED it sees what a writer that held the lock committed, which a
// join locking only the Reply row would not (PostgreSQL re-reads the
// locked row only, the joined one keeps the statement's snapshot), and
// the same status change would write its TicketEvent twice.
func outboundStatus(ctx context.Context, tx pgx.Tx, id string) (string, error) {
	var st string
	err := tx.QueryRow(ctx, `SELECT "status"::text FROM public."MarketplaceOutboundMessage" WHERE "id" = $1`, id).Scan(&st)
	return st, err
}

// writeFate applies a transition to both tables (and KeyBuzz's TicketEvent),
// in one pipelined batch: one round trip inside the caller's transaction,
// which holds the reply's row (every caller locked it FOR UPDATE first).
func (s *Store) writeFate(ctx context.Context, tx pgx.Tx, id string, now time.Time, tr reply.Transition, sesMessageID, code, reason string) error {
	b := &pgx.Batch{}
	b.Queue(`
		UPDATE keybuzz_amazon."Reply" SET "state" = $2, "leaseOwner" = NULL, "leaseUntil" = NULL,
		    "sesMessageId" = COALESCE("sesMessageId", NULLIF($3, '')),
		    "acceptedAt" = CASE WHEN $2 IN ('ACCEPTED', 'DELIVERED') THEN COALESCE("acceptedAt", $4) ELSE "acceptedAt" END,
		    "deliveredAt" = CASE WHEN $5 THEN COALESCE("deliveredAt", $4) ELSE "deliveredAt" END,
		    "failedAt" = CASE WHEN $6 THEN $4 ELSE "failedAt" END,
		    "reasonCode" = CASE WHEN $6 THEN NULLIF($7, '') WHEN $2 IN ('ACCEPTED', 'DELIVERED') THEN NULL ELSE "reasonCode" END,
		    "reason" = CASE WHEN $6 THEN NULLIF($8, '') WHEN $2 IN ('ACCEPTED', 'DELIVERED') THEN NULL ELSE "reason" END,
		    "updatedAt" = $4
		WHERE "id" = $1`,
		id, tr.Next.State, sesMessageID, now, tr.Delivered, tr.Failed, code, reason)
	b.Queue(`
		UPDATE public."MarketplaceOutboundMessage" SET "status" = $2::"OutboundMessageStatus",
		    "providerMessageId" = COALESCE("providerMessageId", NULLIF($3, '')),
		    "sentAt" = CASE WHEN $2 = 'SENT' THEN COALESCE("sentAt", $4::timestamptz AT TIME ZONE 'UTC') ELSE "sentAt" END,
		    "error" = CASE WHEN $5 THEN NULLIF($6, '') WHEN $2 = 'SENT' THEN NULL ELSE "error" END,
		    "attempts" = GREATEST("attempts", (SELECT "attempts" FROM keybuzz_amazon."Reply" WHERE "id" = $1)),
		    "updatedAt" = $4::timestamptz AT TIME ZONE 'UTC'
		WHERE "id" = $1`, id, tr.Next.Status, sesMessageID, now, tr.Failed, reason)
	if tr.TicketEvent != "" {
		payload, _ := json.Marshal(map[string]string{"outboundMessageId": id, "providerMessageId": sesMessageID, "reasonCode": code, "reason": reason})
		b.Queue(`
			INSERT INTO public."TicketEvent" ("id", "ticketId", "tenantId", "type", "createdAt", "actorType", "payload")
			SELECT $1, r."ticketId", r."tenantId", $3::"TicketEventType", $4::timestamptz AT TIME ZONE 'UTC', 'SYSTEM', $5::jsonb
			FROM keybuzz_amazon."Reply" r WHERE r."id" = $2`,
			newCUID(), id, tr.TicketEvent, now, string(payload))
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write reply %s's fate: %w", id, err)
	}
	return nil
}

// ApplySESEvent records one of SES's events once and moves the reply it
// concerns (found by SES's MessageId, else by its reply tag and tenant):
// reply.Apply decides. Unknown replies are recorded only. It reports
// whether the event was new.
func (s *Store) ApplySESEvent(ctx context.Context, ev reply.Event) (bool, error) {
	now := s.now()
	fresh := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		payload := ev.Payload
		if len(payload) == 0 {
			payload = []byte("{}")
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO keybuzz_amazon."SesEvent" ("sesMessageId", "eventType", "eventKey", "replyId", "tenantId", "occurredAt", "payload", "receivedAt")
			VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6, $7::jsonb, $8)
			ON CONFLICT ("sesMessageId", "eventType", "eventKey") DO NOTHING`,
			ev.SESMessageID, ev.Type, ev.Key, ev.ReplyID, ev.TenantID, ev.At, string(payload), now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		fresh = true
		var id string
		var cur reply.Fate
		err = tx.QueryRow(ctx, `
			SELECT r."id", r."state" FROM keybuzz_amazon."Reply" r
			WHERE (r."sesMessageId" = NULLIF($1, '')) OR (r."id" = NULLIF($2, '') AND r."tenantId" = $3 AND (r."sesMessageId" IS NULL OR r."sesMessageId" = $1))
			ORDER BY (r."sesMessageId" = NULLIF($1, '')) DESC NULLS LAST LIMIT 1
			FOR UPDATE OF r`, ev.SESMessageID, ev.ReplyID, ev.TenantID).Scan(&id, &cur.State)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur.Status, err = outboundStatus(ctx, tx, id); err != nil {
			return err
		}
		tr := reply.Apply(cur, ev.Type)
		if tr.Next == cur && tr.TicketEvent == "" && !tr.Delivered {
			// Nothing changes but SES's id, which a lost answer left unknown.
			_, err := tx.Exec(ctx, `UPDATE keybuzz_amazon."Reply" SET "sesMessageId" = COALESCE("sesMessageId", NULLIF($2, '')) WHERE "id" = $1`, id, ev.SESMessageID)
			return err
		}
		return s.writeFate(ctx, tx, id, ev.At, tr, ev.SESMessageID, ev.ReasonCode, ev.Reason)
	})
	return fresh, unavailable("apply SES event", err)
}

// ReplyForNotice finds the reply an Amazon notice is about: the tenant's
// latest reply to that alias (and order, when the notice names one) that
// has not FAILED, one SES accepted first (Amazon can only refuse a mail it
// got; a newer reply still QUEUED or SENDING is taken only when none was
// accepted, as after an answer SES lost).
func (s *Store) ReplyForNotice(ctx context.Context, tenantID, alias, orderID string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `
		SELECT r."id" FROM keybuzz_amazon."Reply" r
		WHERE r."tenantId" = $1 AND lower(r."toAddress") = lower($2) AND ($3 = '' OR r."orderId" = $3) AND r."state" <> 'FAILED'
		ORDER BY r."state" IN ('ACCEPTED', 'DELIVERED') DESC, r."createdAt" DESC LIMIT 1`, tenantID, alias, orderID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, unavailable("reply for notice", err)
}

// ApplyNotice records Amazon's notice about a reply: the reply FAILED
// with Amazon's reason, an internal SYSTEM TicketMessage saying what to do,
// and, for an unapproved sender, the sending address marked as needing
// approval. Applying the same notice twice changes nothing more: ev.Key,
// the notice mail's receipt id, is recorded with the reply it failed, and
// seen (applied is true) when that notice comes again, whichever reply it
// picked this time. failed is false when the reply had already FAILED
// (another notice or a bounce came first).
func (s *Store) ApplyNotice(ctx context.Context, ev reply.Event, needsApproval bool) (failed, applied bool, err error) {
	now := s.now()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var cur reply.Fate
		var tenantID, ticketID, from string
		err := tx.QueryRow(ctx, `
			SELECT "state", "tenantId", "ticketId", "fromAddress" FROM keybuzz_amazon."Reply"
			WHERE "id" = $1 FOR UPDATE`, ev.ReplyID).Scan(&cur.State, &tenantID, &ticketID, &from)
		if err != nil {
			return err
		}
		// After the lock: a copy of this notice that held it first has
		// committed by now (each statement reads what is committed).
		if ev.Key != "" {
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM keybuzz_amazon."ReplyNotice" WHERE "noticeId" = $1)`, ev.Key).Scan(&applied); err != nil || applied {
				return err
			}
		}
		if cur.Status, err = outboundStatus(ctx, tx, ev.ReplyID); err != nil {
			return err
		}
		if needsApproval {
			if _, err := tx.Exec(ctx, `
				INSERT INTO keybuzz_amazon."SenderApproval" ("tenantId", "emailAddress", "needed", "reason", "noticedAt", "updatedAt")
				VALUES ($1, lower($2), true, $3, $4, $4)
				ON CONFLICT ("tenantId", "emailAddress") DO UPDATE SET "needed" = true, "reason" = EXCLUDED."reason",
				    "noticedAt" = EXCLUDED."noticedAt", "updatedAt" = EXCLUDED."updatedAt"`, tenantID, from, ev.Reason, now); err != nil {
				return err
			}
		}
		tr := reply.Apply(cur, reply.EventAmazonNotice)
		if tr.TicketEvent == "" {
			return nil
		}
		if ev.Key != "" {
			tag, err := tx.Exec(ctx, `
				INSERT INTO keybuzz_amazon."ReplyNotice" ("noticeId", "tenantId", "replyId", "receivedAt") VALUES ($1, $2, $3, $4)
				ON CONFLICT ("noticeId") DO NOTHING`, ev.Key, tenantID, ev.ReplyID, now)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				// A copy holding another reply's lock recorded it first.
				applied = true
				return errNoticeApplied
			}
		}
		failed = true
		if _, err := tx.Exec(ctx, `
			INSERT INTO public."TicketMessage" ("id", "ticketId", "tenantId", "senderType", "senderName", "sentAt", "body", "isInternal", "source")
			VALUES ($1, $2, $3, 'SYSTEM', 'Amazon', $4::timestamptz AT TIME ZONE 'UTC', $5, true, 'MARKETPLACE')`,
			newCUID(), ticketID, tenantID, now, ev.Reason); err != nil {
			return err
		}
		return s.writeFate(ctx, tx, ev.ReplyID, now, tr, "", ev.ReasonCode, ev.Reason)
	})
	if errors.Is(err, errNoticeApplied) {
		return false, true, nil
	}
	if err != nil {
		return false, false, unavailable("apply notice", err)
	}
	return failed, applied, nil
}

// errNoticeApplied rolls back a notice's transaction when a copy of the
// notice failed another reply meanwhile.
var errNoticeApplied = errors.New("notice applied by a copy")

// SendersNeedingApproval are a tenant's sending addresses Amazon refused as
// not approved, with Amazon's reason, until the seller's approval shows: a
// reply from the address delivered after the refusal that Amazon has not
// refused within reply.NoticeWindow.
func (s *Store) SendersNeedingApproval(ctx context.Context, tenantID string) (map[string]string, error) {
	// An address stops needing approval once a reply from it was delivered
	// after the refusal and reply.NoticeWindow has passed with no new
	// refusal (a new one moves "noticedAt" past that delivery).
	rows, err := s.pool.Query(ctx, `
		SELECT a."emailAddress", COALESCE(a."reason", '') FROM keybuzz_amazon."SenderApproval" a
		WHERE a."tenantId" = $1 AND a."needed" AND NOT EXISTS (
		    SELECT 1 FROM keybuzz_amazon."Reply" r
		    WHERE r."tenantId" = a."tenantId" AND lower(r."fromAddress") = a."emailAddress" AND r."state" = 'DELIVERED'
		      AND r."deliveredAt" > a."noticedAt" AND r."deliveredAt" <= $2)`, tenantID, s.now().Add(-reply.NoticeWindow))
	if err != nil {
		return nil, unavailable("senders needing approval", err)
	}
	out := map[string]string{}
	for rows.Next() {
		var a, r string
		if err := rows.Scan(&a, &r); err != nil {
			return nil, unavailable("senders needing approval", err)
		}
		out[a] = r
	}
	return out, unavailable("senders needing approval", rows.Err())
}

// TakeSendToken spends one token of the SES sending budget (rate per
// second, burst), persisted so that every sender shares it. It returns how
// long to wait when the bucket is empty (nothing spent then).
func (s *Store) TakeSendToken(ctx context.Context, name string, rate float64, burst int) (time.Duration, error) {
	now := s.now()
	var tokens float64
	var throttledUntil *time.Time
	err := s.pool.QueryRow(ctx, `
		INSERT INTO keybuzz_amazon."SendBudget" AS b ("name", "tokens", "rate", "burst", "refilledAt", "updatedAt")
		VALUES ($1, $3 - 1, $2, $3, $4, $4)
		ON CONFLICT ("name") DO UPDATE SET
		    "tokens" = CASE WHEN b."throttledUntil" > $4 THEN b."tokens"
		                    ELSE LEAST($3::double precision, b."tokens" + EXTRACT(EPOCH FROM ($4 - b."refilledAt")) * $2) - 1 END,
		    "refilledAt" = CASE WHEN b."throttledUntil" > $4 THEN b."refilledAt" ELSE $4 END,
		    "rate" = $2, "burst" = $3, "updatedAt" = $4
		RETURNING "tokens", "throttledUntil"`, name, rate, burst, now).Scan(&tokens, &throttledUntil)
	if err != nil {
		return 0, unavailable("take send token", err)
	}
	if throttledUntil != nil && throttledUntil.After(now) {
		return throttledUntil.Sub(now), nil
	}
	if tokens >= 0 {
		return 0, nil
	}
	// Give the token back: the caller waits and asks again.
	if _, err := s.pool.Exec(ctx, `UPDATE keybuzz_amazon."SendBudget" SET "tokens" = "tokens" + 1 WHERE "name" = $1`, name); err != nil {
		return 0, unavailable("take send token", err)
	}
	return waitFor(-tokens, rate), nil
}

// ThrottleSend empties the SES budget until until (SES answered throttled).
func (s *Store) ThrottleSend(ctx context.Context, name string, until time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE keybuzz_amazon."SendBudget" SET "tokens" = 0, "refilledAt" = $2, "throttledUntil" = $2, "updatedAt" = now()
		WHERE "name" = $1`, name, until)
	return unavailable("throttle send", err)
}

// UnansweredByAge counts the open AMAZON tickets whose oldest unanswered
// buyer message (after the last agent message) is under 12 hours old,
// 12-20 hours, 20-24 hours, and late (24 hours or more, Amazon's response
// clock), among buyer messages of the last 7 days (older ones are long
// late, and an index range keeps the count cheap every schedule tick).
func (s *Store) UnansweredByAge(ctx context.Context) (reply.Unanswered, error) {
	var u reply.Unanswered
	now := s.now()
	err := s.pool.QueryRow(ctx, `
		WITH waiting AS (
		    SELECT c."ticketId", min(c."sentAt") AS "since"
		    FROM public."TicketMessage" c JOIN public."Ticket" t ON t."id" = c."ticketId"
		    WHERE c."sentAt" > ($1::timestamptz AT TIME ZONE 'UTC') - interval '7 days'
		      AND c."senderType" = 'CUSTOMER' AND NOT c."isInternal"
		      AND t."channel" = 'AMAZON' AND t."status" NOT IN ('CLOSED', 'RESOLVED')
		      AND NOT EXISTS (SELECT 1 FROM public."TicketMessage" a WHERE a."ticketId" = c."ticketId"
		                      AND a."senderType" = 'AGENT' AND NOT a."isInternal" AND a."sentAt" >= c."sentAt")
		    GROUP BY c."ticketId"
		), aged AS (SELECT ($1::timestamptz AT TIME ZONE 'UTC') - "since" AS age FROM waiting)
		SELECT count(*) FILTER (WHERE age < interval '12 hours'),
		       count(*) FILTER (WHERE age >= interval '12 hours' AND age < interval '20 hours'),
		       count(*) FILTER (WHERE age >= interval '20 hours' AND age < interval '24 hours'),
		       count(*) FILTER (WHERE age >= interval '24 hours')
		FROM aged`, now).Scan(&u.Under12h, &u.From12To20h, &u.From20To24h, &u.Late)
	return u, unavailable("unanswered by age", err)
}
