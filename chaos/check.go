package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
)

// stats counts what was injected and done.
type stats struct {
	mu             sync.Mutex
	Faults         map[string]int `json:"faults"`
	Counters       map[string]int `json:"counters"`
	ConnectSeconds float64        `json:"connectSeconds"`
	SoakSeconds    float64        `json:"soakSeconds"`
	Settle         int            `json:"settleCyclesRun"`
}

func newStats() *stats { return &stats{Faults: map[string]int{}, Counters: map[string]int{}} }

func (s *stats) fault(kind string) { s.faultN(kind, 1) }

func (s *stats) faultN(kind string, n int) {
	s.mu.Lock()
	s.Faults[kind] += n
	s.mu.Unlock()
}

func (s *stats) add(name string, n int) {
	s.mu.Lock()
	s.Counters[name] += n
	s.mu.Unlock()
}

func (s *stats) get(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Counters[name]
}

// Invariants is the checker's verdict.
type Invariants struct {
	EventsTotal          int `json:"eventsTotal"`          // every buyer event the sandbox holds for the tenants
	EventsExpected       int `json:"eventsExpected"`       // in a look-back window and readable (not after a revocation)
	EventsStored         int `json:"eventsStored"`         // expected events found as ExternalMessage
	Lost                 int `json:"lost"`                 // expected, not stored
	Duplicated           int `json:"duplicated"`           // extra rows for one buyer event (whatever their externalId), extra TicketMessage / Ticket rows
	WrongTenant          int `json:"wrongTenant"`          // rows in a tenant other than the one whose seller the event belongs to
	AfterRevocation      int `json:"afterRevocation"`      // stored events from after the tenant's access ended (revoked, Vault secret deleted)
	Phantom              int `json:"phantom"`              // stored events the sandbox never had
	BeforeWindow         int `json:"beforeWindow"`         // events older than the look-back (not expected; stored when their order changed inside it)
	UnreachableRevoked   int `json:"unreachableRevoked"`   // before access ended, but never served by Amazon, or served to a poll an injected fault interrupted
	SecretGone           int `json:"secretGone"`           // tenants whose Vault secret was deleted
	TicketMessageMissing int `json:"ticketMessageMissing"` // ExternalMessage without its TicketMessage
	Tickets              int `json:"tickets"`
	TicketsWrong         int `json:"ticketsWrong"` // (tenant, order) with != 1 ticket
	ConnectionsWrong     int `json:"connectionsWrong"`
	Revoked              int `json:"revoked"`
	NeedsReauth          int `json:"needsReauth"`
	QueueLeft            int `json:"queueLeft"`
	HalfDone             int `json:"halfDone"` // a transaction killed before its commit that left rows behind
	// KeyBuzz's own Prisma client reading every row of the shared models
	// after the soak: rows read, and rows it could not read (must be 0).
	KeybuzzRowsRead   int `json:"keybuzzRowsRead"`
	KeybuzzUnreadable int `json:"keybuzzUnreadable"`
	DLQ               int `json:"dlq"`
	DLQUnexplained    int `json:"dlqUnexplained"`
	SecretsIssued     int `json:"secretsIssued"`
	// RequestsChecked counts the SP-API requests the sandbox checked against
	// Amazon's models; OutsideContract those outside them (openapicheck).
	RequestsChecked int `json:"requestsChecked"`
	OutsideContract int `json:"outsideContract"`
	// Scans: logs (bytes), database (values), queues (messages), s3 (objects).
	Scans map[string]scanReport `json:"scans"`
	// Channels: the push and mail channels (zero when off).
	Channels ChannelInvariants `json:"channels"`
	// Replies: the reply kills' replies against the SES stand-in's record (zero when off).
	Replies  ReplyInvariants `json:"replies"`
	Problems []string        `json:"problems,omitempty"` // the first violations, for a person
}

func (v *Invariants) problem(format string, args ...any) {
	if len(v.Problems) < 40 {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// OK is true when no invariant is violated.
func (v Invariants) OK() bool {
	return v.Lost == 0 && v.Duplicated == 0 && v.WrongTenant == 0 && v.AfterRevocation == 0 && v.Phantom == 0 && v.TicketMessageMissing == 0 &&
		v.TicketsWrong == 0 && v.ConnectionsWrong == 0 && v.QueueLeft == 0 && v.HalfDone == 0 && v.KeybuzzUnreadable == 0 && v.DLQUnexplained == 0 && v.SecretsFound() == 0 &&
		v.OutsideContract == 0 && v.Channels.NotificationsUnrecorded == 0 &&
		v.Replies.Duplicated == 0 && v.Replies.Lost == 0 && v.Replies.WrongTenant == 0 &&
		v.Replies.WrongFate == 0 && v.Replies.WrongReason == 0 && v.Replies.BuyerDuplicated == 0 &&
		v.Replies.EventsUnapplied == 0 && v.Replies.TicketEventsTwice == 0
}

// SecretsFound is every secret found by any scanner, in any form.
func (v Invariants) SecretsFound() int {
	n := 0
	for _, r := range v.Scans {
		n += r.Found
	}
	return n
}

// querier is what the checker reads through: the checker's pool, or a
// transaction in which a test has broken the system on purpose.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// storedMessage is one ExternalMessage row and what hangs off it.
type storedMessage struct {
	id, tenant, conn, externalID, order, item string
	ticketMessages                            []string
	// mail is a row that came from a buyer's mail (its body holds a
	// chaos-mail token, or a hostile mail's marker) rather than from an
	// order event: the channel checker judges it.
	mail bool
	body string
}

type storedTicketMessage struct{ id, ticket, tenant string }

// eventKey names a buyer event by what it is (order and item), never by
// the externalId the connector chose: the same event stored under two
// externalIds is two rows with one key.
var bodyKeyRe = regexp.MustCompile(`order (\S+) \(item ([^,)\s]+)`)

func eventKeyOf(externalID, order, body string) (string, string) {
	if m := bodyKeyRe.FindStringSubmatch(body); m != nil {
		return m[1], m[2]
	}
	parts := strings.Split(externalID, ":")
	if len(parts) >= 2 {
		return parts[0], parts[1]
	}
	return order, externalID
}

// loadStored reads every ExternalMessage (with what the connector's
// keybuzz_amazon."Message" keeps of it: its text and its TicketMessage),
// TicketMessage and Ticket.
func loadStored(ctx context.Context, q querier) (msgs []*storedMessage, tms map[string]storedTicketMessage, tickets map[string][2]string, err error) {
	rows, err := q.Query(ctx, `SELECT e."id", e."tenantId", e."connectionId", e."externalId", COALESCE(e."orderId", ''),
       COALESCE(m."body", ''), m."ticketMessageId"
FROM public."ExternalMessage" e
LEFT JOIN keybuzz_amazon."Message" m ON m."externalMessageId" = e."id"`)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read ExternalMessage: %w", err)
	}
	byID := map[string]*storedMessage{}
	for rows.Next() {
		m := &storedMessage{}
		var body string
		var tm *string
		if err := rows.Scan(&m.id, &m.tenant, &m.conn, &m.externalID, &m.order, &body, &tm); err != nil {
			return nil, nil, nil, err
		}
		if !bodyKeyRe.MatchString(body) && (mailWords.MatchString(body) || strings.Contains(body, "chaos-hostile")) {
			m.mail, m.body = true, body
		} else {
			m.order, m.item = eventKeyOf(m.externalID, m.order, body)
		}
		if tm != nil {
			m.ticketMessages = append(m.ticketMessages, *tm)
		}
		msgs = append(msgs, m)
		byID[m.id] = m
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, err
	}
	tms = map[string]storedTicketMessage{}
	// Internal messages (a mail's order context, a SYSTEM note on the
	// ticket) are the connector's own, no buyer event's; an agent's reply
	// is its Reply's (judged by judgeReplies against SES's record).
	rows, err = q.Query(ctx, `SELECT tm."id", tm."ticketId", tm."tenantId", NULL::text FROM public."TicketMessage" tm
WHERE NOT tm."isInternal" AND NOT EXISTS (SELECT 1 FROM keybuzz_amazon."Reply" r WHERE r."ticketMessageId" = tm."id" AND r."tenantId" = tm."tenantId")`)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read TicketMessage: %w", err)
	}
	for rows.Next() {
		var tm storedTicketMessage
		var em *string
		if err := rows.Scan(&tm.id, &tm.ticket, &tm.tenant, &em); err != nil {
			return nil, nil, nil, err
		}
		tms[tm.id] = tm
		if em != nil && byID[*em] != nil {
			byID[*em].ticketMessages = append(byID[*em].ticketMessages, tm.id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, err
	}
	tickets = map[string][2]string{} // id -> tenant, order
	rows, err = q.Query(ctx, `SELECT "id", "tenantId", COALESCE("externalId", '') FROM public."Ticket"`)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read Ticket: %w", err)
	}
	for rows.Next() {
		var id, tenant, order string
		if err := rows.Scan(&id, &tenant, &order); err != nil {
			return nil, nil, nil, err
		}
		tickets[id] = [2]string{tenant, order}
	}
	return msgs, tms, tickets, rows.Err()
}

// checkInvariants compares the sandbox's own record (every buyer event of
// every seller, and what it served to whom) with the database, for every
// tenant, revoked or disconnected ones included.
func (w *world) checkInvariants(ctx context.Context) (Invariants, error) {
	v, err := w.checkWith(ctx, w.check)
	if err != nil {
		return v, err
	}
	var err2 error
	if v.QueueLeft, err2 = w.queueDepth(ctx, w.queueURL); err2 != nil {
		return v, err2
	}
	dlq, err := w.drainDLQ(ctx)
	if err != nil {
		return v, err
	}
	if k := w.killer; k != nil {
		d, err := w.queueDepth(ctx, k.queueURL)
		if err != nil {
			return v, err
		}
		v.QueueLeft += d
		more, err := k.deadLetters(ctx)
		if err != nil {
			return v, err
		}
		dlq = append(dlq, more...)
		if k.notifyURL != "" {
			d, err := w.queueDepth(ctx, k.notifyURL)
			if err != nil {
				return v, err
			}
			v.QueueLeft += d
			more, err := w.drainQueue(ctx, k.notifyDLQ)
			if err != nil {
				return v, err
			}
			dlq = append(dlq, more...)
		}
		if err := w.checkReplies(ctx, &v); err != nil {
			return v, err
		}
		if k.replies != nil {
			// Dead-lettered reply jobs, traced like the others.
			for _, u := range []string{k.replies.dlqURL, k.replies.eventsDLQ} {
				more, err := w.drainQueue(ctx, u)
				if err != nil {
					return v, err
				}
				dlq = append(dlq, more...)
			}
		}
		v.HalfDone = len(k.halfDone)
		for _, h := range k.halfDone {
			v.problem("a transaction killed before its commit left work behind: %s", h)
		}
	}
	if w.ch != nil {
		for _, u := range []string{w.ch.notifyURL, w.ch.mailURL} {
			d, err := w.queueDepth(ctx, u)
			if err != nil {
				return v, err
			}
			v.QueueLeft += d
		}
		for _, u := range []string{w.ch.notifyDLQ, w.ch.mailDLQ} {
			more, err := w.drainQueue(ctx, u)
			if err != nil {
				return v, err
			}
			dlq = append(dlq, more...)
		}
	}
	w.judgeDeadLetters(&v, dlq)
	return v, nil
}

// checkWith is the database part of the checker, reading through q.
func (w *world) checkWith(ctx context.Context, q querier) (Invariants, error) {
	var v Invariants
	w.violations = append(w.violations, w.sb.TakeViolations()...)
	v.RequestsChecked = w.sb.Checked()
	if k := w.killer; k != nil {
		w.violations = append(w.violations, k.sb.TakeViolations()...)
		v.RequestsChecked += k.sb.Checked()
	}
	v.OutsideContract = len(w.violations)
	for _, viol := range w.violations {
		v.problem("a request outside Amazon's contract: %v", viol)
	}
	msgs, tms, tickets, err := loadStored(ctx, q)
	if err != nil {
		return v, err
	}
	connTenant := map[string]string{}
	rows, err := q.Query(ctx, `SELECT "id", "tenantId" FROM "MarketplaceConnection"`)
	if err != nil {
		return v, err
	}
	for rows.Next() {
		var id, tenant string
		if err := rows.Scan(&id, &tenant); err != nil {
			return v, err
		}
		connTenant[id] = tenant
	}
	if err := rows.Err(); err != nil {
		return v, err
	}
	// The sandbox's record: whose each order is.
	orderOwner := map[string]string{}
	eventsOf := map[string][]sandbox.Event{}
	for _, t := range w.allTenants() {
		evs := t.sb.BuyerEvents(t.seller)
		eventsOf[t.id] = evs
		for _, e := range evs {
			orderOwner[e.OrderID] = t.id
		}
	}

	// Amazon's notices about refused replies (the kill sandbox's record),
	// stored on their ticket by the mail intake: Message-ID -> tenant.
	notices := map[string]string{}
	if w.killer != nil {
		for _, t := range w.killTenants {
			for _, f := range w.killer.sb.RefusedReplies(t.seller) {
				if f.NoticeID != "" {
					notices[f.NoticeID] = t.id
				}
			}
		}
	}

	// Every stored row: in its tenant, traceable to a buyer event.
	byKey := map[string][]*storedMessage{} // tenant \x00 order \x00 item
	linked := map[string]bool{}
	var mails []*storedMessage
	for _, m := range msgs {
		if m.mail {
			mails = append(mails, m)
			continue
		}
		if connTenant[m.conn] != m.tenant {
			v.WrongTenant++
			v.problem("ExternalMessage %s of tenant %s hangs off connection %s of tenant %s", m.id, m.tenant, m.conn, connTenant[m.conn])
		}
		if owner, ok := notices[strings.Trim(m.externalID, "<>")]; ok {
			if owner != m.tenant {
				v.WrongTenant++
				v.problem("tenant %s: stored Amazon's notice %s, which is tenant %s's", m.tenant, m.externalID, owner)
			}
			for _, id := range m.ticketMessages {
				linked[id] = true
			}
			continue
		}
		switch owner := orderOwner[m.order]; {
		case owner == "":
			v.Phantom++
			v.problem("tenant %s: stored event %s (order %s) the sandbox never had", m.tenant, m.externalID, m.order)
		case owner != m.tenant:
			v.WrongTenant++
			v.problem("tenant %s: stored event of order %s, which is tenant %s's", m.tenant, m.order, owner)
		}
		for _, id := range m.ticketMessages {
			linked[id] = true
			tm := tms[id]
			if tm.tenant != m.tenant || tickets[tm.ticket][0] != m.tenant {
				v.WrongTenant++
				v.problem("tenant %s: event %s's ticket message is tenant %q's, its ticket tenant %q's", m.tenant, m.externalID, tm.tenant, tickets[tm.ticket][0])
			}
		}
		k := m.tenant + "\x00" + m.order + "\x00" + m.item
		byKey[k] = append(byKey[k], m)
	}
	for _, m := range mails {
		for _, id := range m.ticketMessages {
			linked[id] = true
		}
	}
	for id, tm := range tms {
		if !linked[id] {
			v.Duplicated++
			v.problem("ticket message %s on ticket %s (tenant %s) has no buyer event behind it", id, tm.ticket, tm.tenant)
		}
	}
	ticketsFor := map[string]int{} // tenant \x00 order -> Ticket rows
	for _, tk := range tickets {
		ticketsFor[tk[0]+"\x00"+tk[1]]++
		v.Tickets++
	}

	for _, t := range w.allTenants() {
		var status, lastError string
		var cursor *time.Time
		var token, lease *string
		if err := q.QueryRow(ctx, `
SELECT CASE WHEN c."status" = 'ERROR' AND k."reauthReason" IS NOT NULL THEN 'NEEDS_REAUTH' ELSE c."status"::text END,
       COALESCE(c."lastError", ''), s."cursorAt", s."paginationToken", s."leaseOwner"
FROM public."MarketplaceConnection" c LEFT JOIN keybuzz_amazon."Connection" k ON k."connectionId" = c."id"
LEFT JOIN keybuzz_amazon."SyncState" s ON s."connectionId" = c."id" WHERE c."id" = $1`, t.connID).
			Scan(&status, &lastError, &cursor, &token, &lease); err != nil {
			return v, fmt.Errorf("connection of %s: %w", t.id, err)
		}
		lost, lostWall := t.accessLost()
		windowStart := t.connectedAt.Add(-lookback)
		orderTickets := map[string]map[string]bool{} // order -> ticket ids its messages are on
		for _, ev := range eventsOf[t.id] {
			v.EventsTotal++
			rows := byKey[t.id+"\x00"+ev.OrderID+"\x00"+ev.OrderItemID]
			switch {
			case lost != nil && !ev.At.Before(lost.Truncate(time.Second)) && !servedBeforeLoss(t, ev, *lost):
				if len(rows) > 0 {
					v.AfterRevocation++
					v.problem("tenant %s: event %s/%s of %s stored although access ended at %s", t.id, ev.OrderID, ev.OrderItemID, ev.At, lost)
				}
				continue
			case ev.At.Before(windowStart):
				v.BeforeWindow++
			case lost != nil && len(rows) == 0:
				// Expected when Amazon served it before access ended and no
				// injected fault interfered with the poll that read it.
				sv, ok := t.front.servedOrder(t.seller, ev.OrderID)
				switch {
				case !ok || sv.sandbox.Before(ev.At):
					v.UnreachableRevoked++
				case w.trace.interfered(t.id, sv.wall.Add(-time.Minute), lostWall):
					v.UnreachableRevoked++
				default:
					v.EventsExpected++
					v.Lost++
					v.problem("tenant %s: event %s/%s (%s) served by Amazon at %s before access ended, never stored (faults: %v)",
						t.id, ev.OrderID, ev.OrderItemID, ev.At, sv.sandbox, t.faults)
				}
				continue
			default:
				v.EventsExpected++
				if len(rows) == 0 {
					v.Lost++
					v.problem("tenant %s: event %s/%s (%s) lost (faults: %v)", t.id, ev.OrderID, ev.OrderItemID, ev.At, t.faults)
					continue
				}
				v.EventsStored++
			}
			if len(rows) > 1 {
				v.Duplicated += len(rows) - 1
				ids := []string{}
				for _, r := range rows {
					ids = append(ids, r.externalID)
				}
				v.problem("tenant %s: event %s/%s stored %d times (externalIds %v)", t.id, ev.OrderID, ev.OrderItemID, len(rows), ids)
			}
			for _, r := range rows {
				switch n := len(r.ticketMessages); {
				case n > 1:
					v.Duplicated += n - 1
					v.problem("tenant %s: event %s has %d ticket messages", t.id, r.externalID, n)
				case n == 0:
					v.TicketMessageMissing++
					v.problem("tenant %s: event %s has no ticket message", t.id, r.externalID)
				}
				for _, id := range r.ticketMessages {
					if orderTickets[ev.OrderID] == nil {
						orderTickets[ev.OrderID] = map[string]bool{}
					}
					orderTickets[ev.OrderID][tms[id].ticket] = true
				}
			}
		}
		// A buyer's mails about an order are on the order's ticket too.
		for _, m := range mails {
			if m.tenant != t.id || m.order == "" {
				continue
			}
			for _, id := range m.ticketMessages {
				if orderTickets[m.order] == nil {
					orderTickets[m.order] = map[string]bool{}
				}
				orderTickets[m.order][tms[id].ticket] = true
			}
		}
		// One ticket per order thread: the messages of an order all on one
		// ticket, and one Ticket row for it.
		for order, ids := range orderTickets {
			n := ticketsFor[t.id+"\x00"+order]
			if len(ids) != 1 || n != 1 {
				v.TicketsWrong++
				if extra := max(len(ids), n) - 1; extra > 0 {
					v.Duplicated += extra
				}
				v.problem("tenant %s: order %s's messages are on %d tickets; %d Ticket rows for it", t.id, order, len(ids), n)
			}
		}
		// The connection's state is what its last fault implies.
		switch {
		case t.revokedAt != nil:
			v.Revoked++
			if status == "NEEDS_REAUTH" {
				v.NeedsReauth++
			} else {
				v.ConnectionsWrong++
				v.problem("tenant %s revoked at %s: status %s (%s), want NEEDS_REAUTH", t.id, t.revokedAt, status, lastError)
			}
		case t.emptiedAt != nil:
			v.SecretGone++
			if status != "ERROR" && status != "NEEDS_REAUTH" || lastError == "" {
				v.ConnectionsWrong++
				v.problem("tenant %s's Vault secret deleted at %s: status %s (%q), want ERROR or NEEDS_REAUTH with a reason", t.id, t.emptiedAt, status, lastError)
			}
		default:
			want := w.clock.Now().Add(-2 * time.Minute)
			if !t.wantCursor.IsZero() {
				want = t.wantCursor
			}
			if status != "CONNECTED" || lastError != "" || token != nil || lease != nil || cursor == nil || cursor.Before(want) {
				v.ConnectionsWrong++
				v.problem("tenant %s (faults %v): status %s lastError %q token %v lease %v cursor %v, want CONNECTED, caught up to %s",
					t.id, t.faults, status, lastError, token != nil, lease != nil, cursor, want)
			}
		}
	}
	if w.ch != nil {
		if err := w.checkChannels(ctx, q, &v, mails, connTenant, tms, tickets); err != nil {
			return v, err
		}
	}
	return v, nil
}

// allTenants is the soak's tenants and the real-kill phase's.
func (w *world) allTenants() []*tenant {
	return append(append([]*tenant(nil), w.tenants...), w.killTenants...)
}

// deadLetter is one message of the dead-letter queue.
type deadLetter struct{ id, tenant, body string }

// judgeDeadLetters traces every dead letter to the injected faults its
// deliveries met; one that a delivery without an injected cause led there
// is unexplained.
func (w *world) judgeDeadLetters(v *Invariants, dlq []deadLetter) {
	for _, d := range dlq {
		v.DLQ++
		id := d.id
		if _, ok := w.trace.explain(id); !ok {
			// fauxqs may give a moved message a new id: the delivered message
			// with the same body.
			var cands []string
			for _, kind := range []string{"poll", "kill", "notify", "mail", "reply", "ses-event"} {
				cands = append(cands, w.payloads.idsWithBody(kind, d.body)...)
			}
			for _, cand := range cands {
				if _, ok := w.trace.explain(cand); ok {
					id = cand
					break
				}
			}
		}
		causes, ok := w.trace.explain(id)
		if !ok {
			v.DLQUnexplained++
			v.problem("dead letter %s for tenant %s: a delivery without an injected cause (causes so far %v; its last logged failure: %s); its deliveries:%s",
				d.id, d.tenant, causes, w.lastFailure(d.tenant), w.trace.describe(id))
			continue
		}
		for _, c := range causes {
			w.stats.add("dlq_cause_"+c, 1)
		}
	}
}

// drainDLQ reads (and deletes) every dead letter of the poll queue.
func (w *world) drainDLQ(ctx context.Context) ([]deadLetter, error) {
	return w.drainQueue(ctx, w.dlqURL)
}

// drainQueue reads (and deletes) every message of a dead-letter queue.
func (w *world) drainQueue(ctx context.Context, dlqURL string) ([]deadLetter, error) {
	var out []deadLetter
	for empty := 0; empty < 2; {
		r, err := w.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlqURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 0})
		if err != nil {
			return nil, err
		}
		if len(r.Messages) == 0 {
			empty++
			continue
		}
		for _, m := range r.Messages {
			body := aws.ToString(m.Body)
			w.payloads.keep("poll-dlq", aws.ToString(m.MessageId), body)
			d := deadLetter{id: aws.ToString(m.MessageId), body: body}
			if msg, err := pollqueue.Decode(body); err == nil {
				d.tenant = msg.TenantID
			} else if t := w.notifyTenant(body); t != "" {
				d.tenant = t
			} else if t := w.mailTenant(body); t != "" {
				d.tenant = t
			} else if t := replyJobTenant(body); t != "" {
				d.tenant = t
			}
			out = append(out, d)
			_, _ = w.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(dlqURL), ReceiptHandle: m.ReceiptHandle})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}

// secretValues are every token, code and secret issued during the soak.
func (w *world) secretValues() []string {
	w.mu.Lock()
	vals := append([]string(nil), w.known...)
	w.mu.Unlock()
	vals = append(vals, w.sb.IssuedSecrets()...)
	return append(vals, "sandbox-client-secret")
}

// scanAll runs the four scanners: the output (logs), every database value,
// every queue payload seen and every S3 object.
func (w *world) scanAll(ctx context.Context, v *Invariants, sc *scanner) error {
	v.Scans = map[string]scanReport{}
	db, err := scanDatabase(ctx, w.check, sc)
	if err != nil {
		return fmt.Errorf("database scan: %w", err)
	}
	v.Scans["database"] = db
	v.Scans["queues"] = scanQueues(&w.payloads, sc)
	s3r, err := scanBuckets(ctx, w.s3, sc)
	if err != nil {
		return fmt.Errorf("s3 scan: %w", err)
	}
	v.Scans["s3"] = s3r
	return nil
}

// scanLogs looks for every secret in everything the soak printed and logged.
func (w *world) scanLogs(v *Invariants, sc *scanner) {
	if v.Scans == nil {
		v.Scans = map[string]scanReport{}
	}
	v.Scans["logs"] = scanText(sc, "output", string(w.out.Bytes()))
}

// lastFailure is the error of the last "poll failed" line logged for
// tenant, so an unexplained dead letter says what went wrong.
func (w *world) lastFailure(tenant string) string {
	last := "none logged"
	for _, line := range bytes.Split(w.out.Bytes(), []byte("\n")) {
		if !bytes.Contains(line, []byte(`"tenant_id":"`+tenant+`"`)) || !bytes.Contains(line, []byte("poll failed")) {
			continue
		}
		var rec struct {
			Msg string `json:"msg"`
			Err string `json:"err"`
		}
		if json.Unmarshal(line, &rec) == nil {
			last = rec.Msg + ": " + rec.Err
		}
	}
	return last
}

// servedBeforeLoss reports whether ev, stamped (to the second, as Amazon's
// times are) in the second access ended but before the instant it did, was
// in an order Amazon last served to the seller before that instant: then it
// happened before access ended, and storing it is right. An event stamped
// at or after the instant never is.
func servedBeforeLoss(t *tenant, ev sandbox.Event, lost time.Time) bool {
	if !ev.At.Before(lost) {
		return false
	}
	sv, ok := t.front.servedOrder(t.seller, ev.OrderID)
	return ok && sv.sandbox.Before(lost) && !sv.sandbox.Before(ev.At)
}

// replyJobTenant is the tenant of a reply job's body ({"replyId","tenantId"}).
func replyJobTenant(body string) string {
	var j struct {
		ReplyID  string `json:"replyId"`
		TenantID string `json:"tenantId"`
	}
	if json.Unmarshal([]byte(body), &j) != nil || j.ReplyID == "" {
		return ""
	}
	return j.TenantID
}
