package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
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
	Duplicated           int `json:"duplicated"`           // extra ExternalMessage / TicketMessage / Ticket rows
	AfterRevocation      int `json:"afterRevocation"`      // stored events or tickets from after the tenant's revocation
	Phantom              int `json:"phantom"`              // stored events the sandbox never had
	BeforeWindow         int `json:"beforeWindow"`         // events older than the look-back (not expected; stored when their order changed inside it)
	UnreachableRevoked   int `json:"unreachableRevoked"`   // before the revocation but after the tenant's last readable window
	TicketMessageMissing int `json:"ticketMessageMissing"` // ExternalMessage without its TicketMessage
	Tickets              int `json:"tickets"`
	TicketsWrong         int `json:"ticketsWrong"` // (tenant, order) with != 1 ticket
	ConnectionsWrong     int `json:"connectionsWrong"`
	Revoked              int `json:"revoked"`
	NeedsReauth          int `json:"needsReauth"`
	QueueLeft            int `json:"queueLeft"`
	DLQ                  int `json:"dlq"`
	DLQUnexplained       int `json:"dlqUnexplained"`
	SecretsIssued        int `json:"secretsIssued"`
	// Scans: logs (bytes), database (values), queues (messages), s3 (objects).
	Scans    map[string]scanReport `json:"scans"`
	Problems []string              `json:"problems,omitempty"` // the first violations, for a person
}

func (v *Invariants) problem(format string, args ...any) {
	if len(v.Problems) < 40 {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// OK is true when no invariant is violated.
func (v Invariants) OK() bool {
	return v.Lost == 0 && v.Duplicated == 0 && v.AfterRevocation == 0 && v.Phantom == 0 && v.TicketMessageMissing == 0 &&
		v.TicketsWrong == 0 && v.ConnectionsWrong == 0 && v.QueueLeft == 0 && v.DLQUnexplained == 0 && v.SecretsFound() == 0
}

// SecretsFound is every secret found by any scanner, in any form.
func (v Invariants) SecretsFound() int {
	n := 0
	for _, r := range v.Scans {
		n += r.Found
	}
	return n
}

type storedEvent struct {
	count, ticketMessages int
	orderID               string
	createdAt             time.Time
}

// checkInvariants compares the sandbox's ground truth with the database.
func (w *world) checkInvariants(ctx context.Context) (Invariants, error) {
	var v Invariants
	stored := map[string]map[string]*storedEvent{} // connectionId -> externalId
	rows, err := w.check.Query(ctx, `
SELECT e."connectionId", e."externalId", COALESCE(e."orderId", ''), e."createdAt", count(tm."id")
FROM "ExternalMessage" e LEFT JOIN "TicketMessage" tm ON tm."externalMessageId" = e."id"
GROUP BY e."id"`)
	if err != nil {
		return v, err
	}
	for rows.Next() {
		var conn, ext, order string
		var created time.Time
		var tms int
		if err := rows.Scan(&conn, &ext, &order, &created, &tms); err != nil {
			return v, err
		}
		if stored[conn] == nil {
			stored[conn] = map[string]*storedEvent{}
		}
		se := stored[conn][ext]
		if se == nil {
			se = &storedEvent{orderID: order, createdAt: created}
			stored[conn][ext] = se
		}
		se.count++
		se.ticketMessages += tms
	}
	if err := rows.Err(); err != nil {
		return v, err
	}
	tickets := map[string]int{} // tenant \x00 order
	ticketCreated := map[string]time.Time{}
	rows, err = w.check.Query(ctx, `SELECT "tenantId", COALESCE("orderId", "externalThreadId"), "createdAt" FROM "Ticket"`)
	if err != nil {
		return v, err
	}
	for rows.Next() {
		var tenant, order string
		var created time.Time
		if err := rows.Scan(&tenant, &order, &created); err != nil {
			return v, err
		}
		tickets[tenant+"\x00"+order]++
		if c, ok := ticketCreated[tenant]; !ok || created.After(c) {
			ticketCreated[tenant] = created
		}
		v.Tickets++
	}
	if err := rows.Err(); err != nil {
		return v, err
	}
	for k, n := range tickets {
		if n != 1 {
			v.TicketsWrong++
			v.Duplicated += n - 1
			v.problem("%d tickets for (tenant, order) %q", n, strings.ReplaceAll(k, "\x00", ", "))
		}
	}

	for _, t := range w.tenants {
		var status, lastError string
		var cursor *time.Time
		var token, lease *string
		if err := w.check.QueryRow(ctx, `
SELECT c."status", COALESCE(c."lastError", ''), s."cursor", s."paginationToken", s."leaseOwner"
FROM "MarketplaceConnection" c LEFT JOIN "MarketplaceSyncState" s ON s."connectionId" = c."id" WHERE c."id" = $1`, t.connID).
			Scan(&status, &lastError, &cursor, &token, &lease); err != nil {
			return v, fmt.Errorf("connection of %s: %w", t.id, err)
		}
		mine := stored[t.connID]
		seen := map[string]bool{}
		orders := map[string]bool{}
		windowStart := t.connectedAt.Add(-lookback)
		for _, ev := range w.sb.BuyerEvents(t.seller) {
			v.EventsTotal++
			id := ev.OrderID + ":" + ev.OrderItemID + ":cancellation"
			seen[id] = true
			se := mine[id]
			switch {
			case t.revokedAt != nil && !ev.At.Before(t.revokedAt.Truncate(time.Second)):
				if se != nil {
					v.AfterRevocation++
					v.problem("tenant %s: event %s of %s stored although the seller revoked at %s", t.id, id, ev.At, t.revokedAt)
				}
				continue
			case ev.At.Before(windowStart):
				v.BeforeWindow++
			case t.revokedAt != nil && se == nil && (cursor == nil || ev.At.After(*cursor)):
				v.UnreachableRevoked++ // happened before the revocation, after the last window it could read
			default:
				v.EventsExpected++
				if se == nil {
					v.Lost++
					v.problem("tenant %s: event %s (%s) lost (faults: %v)", t.id, id, ev.At, t.faults)
					continue
				}
				v.EventsStored++
			}
			if se != nil {
				orders[ev.OrderID] = true
				if se.count > 1 {
					v.Duplicated += se.count - 1
					v.problem("tenant %s: event %s stored %d times", t.id, id, se.count)
				}
				switch {
				case se.ticketMessages > se.count:
					v.Duplicated += se.ticketMessages - se.count
					v.problem("tenant %s: event %s has %d ticket messages", t.id, id, se.ticketMessages)
				case se.ticketMessages < se.count:
					v.TicketMessageMissing++
					v.problem("tenant %s: event %s has no ticket message", t.id, id)
				}
			}
		}
		for id := range mine {
			if !seen[id] {
				v.Phantom++
				v.problem("tenant %s: stored event %s the sandbox never had", t.id, id)
			}
		}
		for o := range orders {
			if tickets[t.id+"\x00"+o] == 0 {
				v.TicketsWrong++
				v.problem("tenant %s: order %s has events but no ticket", t.id, o)
			}
		}
		// The connection's state is what its last fault implies.
		if t.revokedAt != nil {
			v.Revoked++
			if status == "NEEDS_REAUTH" {
				v.NeedsReauth++
			} else {
				v.ConnectionsWrong++
				v.problem("tenant %s revoked at %s: status %s (%s), want NEEDS_REAUTH", t.id, t.revokedAt, status, lastError)
			}
			if c, ok := ticketCreated[t.id]; ok && !c.Before(*t.revokedAt) {
				v.AfterRevocation++
				v.problem("tenant %s: a ticket created at %s, after its revocation at %s", t.id, c, t.revokedAt)
			}
			continue
		}
		want := w.clock.Now().Add(-2 * time.Minute)
		if status != "CONNECTED" || lastError != "" || token != nil || lease != nil || cursor == nil || cursor.Before(want) {
			v.ConnectionsWrong++
			v.problem("tenant %s (faults %v): status %s lastError %q token %v lease %v cursor %v, want CONNECTED, caught up to %s",
				t.id, t.faults, status, lastError, token != nil, lease != nil, cursor, want)
		}
	}

	// The queue is empty; every dead letter belongs to a tenant whose faults explain it.
	var err2 error
	if v.QueueLeft, err2 = w.queueDepth(ctx, w.queueURL); err2 != nil {
		return v, err2
	}
	dlq, err := w.drainDLQ(ctx)
	if err != nil {
		return v, err
	}
	infra := w.stats.Faults["vault_restarted"] + w.stats.Faults["postgres_restarted"]
	for _, tenantID := range dlq {
		v.DLQ++
		t := w.byTenant[tenantID]
		if t == nil || (len(t.faults) == 0 && infra == 0 && w.set.CrashRate == 0) {
			v.DLQUnexplained++
			v.problem("dead letter for tenant %s without an injected fault", tenantID)
		}
	}
	return v, nil
}

// drainDLQ reads (and deletes) every dead letter, returning their tenants.
func (w *world) drainDLQ(ctx context.Context) ([]string, error) {
	var out []string
	for empty := 0; empty < 2; {
		r, err := w.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.dlqURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 0})
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
			tenant := body
			if i := strings.Index(body, `"tenantId":"`); i >= 0 {
				tenant = body[i+12:]
				tenant = tenant[:strings.IndexByte(tenant, '"')]
			}
			out = append(out, tenant)
			_, _ = w.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(w.dlqURL), ReceiptHandle: m.ReceiptHandle})
		}
	}
	sort.Strings(out)
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
