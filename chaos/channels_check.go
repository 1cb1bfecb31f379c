package main

import (
	"context"
	"fmt"
	"strings"
)

// ChannelInvariants is the checker's verdict on the push and mail
// channels, against the senders' own records: every buyer mail the
// sandbox relayed, every notification body that reached the queue,
// every forged or malformed one the harness sent. Violations are counted
// in Invariants' Lost, Duplicated, WrongTenant, Phantom, AfterRevocation
// and TicketsWrong too.
type ChannelInvariants struct {
	MailsSent         int `json:"mailsSent"`        // buyer mails relayed to tenants' addresses
	MailsStored       int `json:"mailsStored"`      // expected and stored exactly once, in the right tenant
	MailsNotExpected  int `json:"mailsNotExpected"` // S3 object never written, or the tenant not CONNECTED (refused)
	MailsLost         int `json:"mailsLost"`
	MailsDeadLettered int `json:"mailsDeadLettered"` // not stored: every delivery met an injected fault, then the DLQ
	MailsDuplicated   int `json:"mailsDuplicated"`   // one mail as several messages (whatever their externalId)
	HostileSent       int `json:"hostileSent"`       // malformed and oversized mails
	HostileStored     int `json:"hostileStored"`     // a hostile mail that became a message (must be 0)
	HostileRefused    int `json:"hostileRefused"`    // InboundMail rows MALFORMED or TOO_LARGE

	NotificationsSent       int            `json:"notificationsSent"`     // genuine bodies delivered to the queue (duplicates once)
	NotificationsRecorded   int            `json:"notificationsRecorded"` // of those, recorded (MarketplaceNotification)
	NotificationsForged     int            `json:"notificationsForged"`
	ForgedStored            int            `json:"forgedStored"` // forged ones recorded as stored (must be 0)
	NotificationsMalformed  int            `json:"notificationsMalformed"`
	NotificationOutcomes    map[string]int `json:"notificationOutcomes"`
	NotificationsWrongOwner int            `json:"notificationsWrongOwner"` // recorded under a tenant other than their seller's
	// Genuine ones delivered but never recorded: dead-lettered (every
	// delivery met an injected fault) or dropped by the intake (must be 0).
	NotificationsDeadLettered int `json:"notificationsDeadLettered"`
	NotificationsUnrecorded   int `json:"notificationsUnrecorded"`
}

// notificationDeadLettered reports whether a delivery of the notification
// with that id reached the DLQ, every delivery of its message explained.
func (w *world) notificationDeadLettered(id string) bool {
	body, ok := w.payloads.body("notify-sent", id)
	if !ok {
		return false
	}
	for _, msgID := range append(w.payloads.idsWithBody("notify", body), w.payloads.idsWithBody("kill-notify", body)...) {
		if w.trace.deadLettered(msgID, 5) {
			return true
		}
	}
	return false
}

// mailDeadLettered reports whether the mail with token reached the DLQ,
// every delivery of its message explained.
func (w *world) mailDeadLettered(token string) bool {
	w.ch.mu.Lock()
	ids := append([]string(nil), w.ch.sesSQS[w.ch.bySES[token]]...)
	w.ch.mu.Unlock()
	for _, id := range ids {
		if w.trace.deadLettered(id, 5) {
			return true
		}
	}
	return false
}

// checkChannels compares the mail and push channels' records with the
// database (read through q).
func (w *world) checkChannels(ctx context.Context, q querier, v *Invariants, mails []*storedMessage, connTenant map[string]string,
	tms map[string]storedTicketMessage, tickets map[string][2]string) error {
	ch := w.ch
	c := &v.Channels
	ch.mu.Lock()
	sent := append([]*sentMail(nil), ch.mails...)
	notes := append([]sentNotification(nil), ch.notifications...)
	c.HostileSent, c.NotificationsMalformed = ch.hostile, ch.malformed
	ch.mu.Unlock()

	// Every mail row: in its tenant, on a ticket of its tenant, traced to a
	// mail that was sent.
	byToken := map[string][]*storedMessage{}
	for _, m := range mails {
		if connTenant[m.conn] != m.tenant {
			v.WrongTenant++
			v.problem("mail message %s of tenant %s hangs off connection %s of tenant %s", m.id, m.tenant, m.conn, connTenant[m.conn])
		}
		tok := mailWords.FindString(m.body)
		if tok == "" {
			c.HostileStored++
			v.Phantom++
			v.problem("tenant %s: a malformed or oversized mail became message %s", m.tenant, m.externalID)
			continue
		}
		byToken[tok] = append(byToken[tok], m)
		switch n := len(m.ticketMessages); {
		case n == 0:
			v.TicketMessageMissing++
			v.problem("tenant %s: mail message %s has no ticket message", m.tenant, m.externalID)
		case n > 1:
			v.Duplicated += n - 1
			v.problem("tenant %s: mail message %s has %d ticket messages", m.tenant, m.externalID, n)
		}
		for _, id := range m.ticketMessages {
			if tm := tms[id]; tm.tenant != m.tenant || tickets[tm.ticket][0] != m.tenant {
				v.WrongTenant++
				v.problem("tenant %s: mail %s's ticket message is tenant %q's, its ticket tenant %q's", m.tenant, m.externalID, tm.tenant, tickets[tm.ticket][0])
			}
		}
	}
	known := map[string]bool{}
	for _, s := range sent {
		c.MailsSent++
		known[s.token] = true
		var own []*storedMessage
		for _, r := range byToken[s.token] {
			if r.tenant != s.tenant {
				v.WrongTenant++
				v.problem("mail %s to tenant %s's address stored in tenant %s", s.token, s.tenant, r.tenant)
				continue
			}
			own = append(own, r)
		}
		t := w.byTenant[s.tenant]
		lost, _ := t.accessLost()
		switch {
		case !s.accepting:
			c.MailsNotExpected++
			if len(own) > 0 {
				v.AfterRevocation++
				v.problem("tenant %s: mail %s stored although the tenant was not CONNECTED when it was sent", s.tenant, s.token)
			}
			continue
		case s.fault == "s3_missing":
			c.MailsNotExpected++
			if len(own) > 0 {
				v.Phantom++
				v.problem("tenant %s: mail %s stored although its S3 object was never written", s.tenant, s.token)
			}
			continue
		case len(own) == 0 && lost != nil:
			c.MailsNotExpected++ // access ended while it was on its way: refused
			continue
		case len(own) == 0 && w.mailDeadLettered(s.token):
			// Every delivery of its message met an injected fault (its object
			// late, kills, redeliveries) until the DLQ, where the raw mail
			// waits in the bucket (docs/inbound-mail.md).
			c.MailsDeadLettered++
			continue
		case len(own) == 0:
			c.MailsLost++
			v.Lost++
			v.problem("tenant %s: mail %s about order %s (fault %q) never stored", s.tenant, s.token, s.order, s.fault)
			continue
		}
		c.MailsStored++
		if len(own) > 1 {
			c.MailsDuplicated += len(own) - 1
			v.Duplicated += len(own) - 1
			ids := []string{}
			for _, r := range own {
				ids = append(ids, r.externalID)
			}
			v.problem("tenant %s: mail %s stored %d times (externalIds %v)", s.tenant, s.token, len(own), ids)
		}
	}
	for tok, rows := range byToken {
		if !known[tok] {
			v.Phantom += len(rows)
			v.problem("tenant %s: mail message %s (%s) no mail sent", rows[0].tenant, rows[0].externalID, tok)
		}
	}
	if err := q.QueryRow(ctx, `SELECT count(*) FROM keybuzz_amazon."InboundMail" WHERE "outcome" IN ('MALFORMED', 'TOO_LARGE')`).Scan(&c.HostileRefused); err != nil {
		return fmt.Errorf("InboundMail: %w", err)
	}

	// Notifications: each genuine one recorded once under its seller's
	// tenant; each forged one never stored.
	type rec struct{ tenant, outcome string }
	recs := map[string]rec{}
	rows, err := q.Query(ctx, `SELECT "notificationId", COALESCE("tenantId", ''), "outcome" FROM keybuzz_amazon."Notification"`)
	if err != nil {
		return fmt.Errorf("MarketplaceNotification: %w", err)
	}
	for rows.Next() {
		var id string
		var r rec
		if err := rows.Scan(&id, &r.tenant, &r.outcome); err != nil {
			return err
		}
		recs[id] = r
	}
	if err := rows.Err(); err != nil {
		return err
	}
	c.NotificationOutcomes = map[string]int{}
	seen := map[string]bool{}
	for _, n := range notes {
		if seen[n.id] {
			continue // a duplicate delivery: one notification
		}
		seen[n.id] = true
		r, ok := recs[n.id]
		if n.forged {
			c.NotificationsForged++
			if ok && (r.outcome == "STORED" || r.outcome == "DUPLICATE") {
				c.ForgedStored++
				v.WrongTenant++
				v.problem("forged notification %s (SellerId %s on another tenant's subscription) recorded %s for tenant %s", n.id, n.seller, r.outcome, r.tenant)
			}
			continue
		}
		c.NotificationsSent++
		if !ok {
			// Its event is the fallback poll's (the lost check), but a
			// notification the intake received must leave a record, unless
			// every delivery of it failed on an injected fault.
			if w.notificationDeadLettered(n.id) {
				c.NotificationsDeadLettered++
			} else {
				c.NotificationsUnrecorded++
				v.problem("notification %s of seller %s (order %s) reached the queue and was never recorded", n.id, n.seller, n.order)
			}
			continue
		}
		c.NotificationsRecorded++
		c.NotificationOutcomes[r.outcome]++
		if owner := w.bySeller[n.seller]; owner != nil && r.tenant != "" && r.tenant != owner.id {
			c.NotificationsWrongOwner++
			v.WrongTenant++
			v.problem("notification %s of seller %s recorded for tenant %s, not %s", n.id, n.seller, r.tenant, owner.id)
		}
	}
	for id, r := range recs {
		if !seen[id] && r.outcome != "MALFORMED" && !strings.HasPrefix(id, "sqs:") {
			v.Phantom++
			v.problem("notification record %s (%s, tenant %q) for a notification never sent", id, r.outcome, r.tenant)
		}
	}
	return nil
}
