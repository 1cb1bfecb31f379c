package replies_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sesout"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/replies"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/replymail"
	"github.com/keybuzz/keybuzz-amazon/shared/replysender"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
	"github.com/keybuzz/keybuzz-amazon/shared/sessender"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// jobs is an in-memory outbound queue.
type jobs struct {
	mu   sync.Mutex
	list []reply.Job
}

func (j *jobs) Enqueue(_ context.Context, job reply.Job) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.list = append(j.list, job)
	return nil
}

// snsToEvents plays SNS -> SQS -> the SES-events consumer: events go to the
// flow at once, or are held (a slow consumer) until released.
type snsToEvents struct {
	mu     sync.Mutex
	events *replies.Events
	hold   bool
	held   []string
}

func (p *snsToEvents) Publish(ctx context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	p.mu.Lock()
	if p.hold {
		p.held = append(p.held, *in.Message)
		p.mu.Unlock()
		return &sns.PublishOutput{}, nil
	}
	p.mu.Unlock()
	return &sns.PublishOutput{}, p.events.Handle(ctx, *in.Message)
}

func (p *snsToEvents) release(t *testing.T) {
	p.mu.Lock()
	held := p.held
	p.held, p.hold = nil, false
	p.mu.Unlock()
	for _, m := range held {
		if err := p.events.Handle(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

type world struct {
	t      *testing.T
	store  *postgres.Store
	pool   *pgxpool.Pool
	clock  *sandbox.ManualClock
	jobs   *jobs
	queue  *replies.Queue
	sender *replysender.Sender
	events *replies.Events
	ses    *sesout.Server
	pub    *snsToEvents
	tenant string
	conn   string
	ticket string
	alias  string
	from   string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	pool, _ := testenv.Pool(t)
	clock := sandbox.NewManualClock(t0)
	store := postgres.New(pool, postgres.WithClock(clock.Now))
	w := &world{t: t, store: store, pool: pool, clock: clock, jobs: &jobs{}}
	w.events = replies.NewEvents(store, nil)
	w.pub = &snsToEvents{events: w.events}
	ses, err := sesout.Start("127.0.0.1:0", sesout.Config{VerifiedDomains: []string{"inbound.keybuzz.test"},
		ConfigurationSets: []string{"replies"}, TopicArn: "arn:aws:sns:eu-west-1:000000000000:ses-events", SNS: w.pub})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ses.Close() })
	w.ses = ses
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_ENDPOINT_URL_SESV2", ses.URL())
	client, err := sessender.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.queue = replies.NewQueue(store, w.jobs, reply.DefaultRules(), nil)
	w.sender = replysender.NewSender(store, sessender.New(client, "replies"), replysender.SenderConfig{Rate: 1000, Burst: 1000, Now: clock.Now,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	w.tenant, w.conn = w.connected("tenant-r")
	w.from = fmt.Sprintf("amazon.%s.fr.tok@inbound.keybuzz.test", w.tenant)
	if err := store.EnsureInboundAddresses(context.Background(), w.tenant, []marketplace.InboundAddress{{Country: "FR", Token: "tok", EmailAddress: w.from}}); err != nil {
		t.Fatal(err)
	}
	w.alias = "buyer123+x@marketplace.amazon.fr"
	w.ticket = w.buyerWrites(w.tenant, w.conn, "171-1234567-1234567", w.alias, "<buyer-1@email.amazonses.com>")
	return w
}

// connected adds a CONNECTED Amazon connection for a new tenant.
func (w *world) connected(prefix string) (tenant, conn string) {
	tenant = testenv.ID(prefix)
	err := w.pool.QueryRow(context.Background(), `
		SELECT keybuzz_dev.connection($1, 'CONNECTED', 'eu', 'A13V1IB3VIYZZH')`, tenant).Scan(&conn)
	if err != nil {
		w.t.Fatal(err)
	}
	return tenant, conn
}

// buyerWrites stores a relay mail as the mail intake does and returns its ticket.
func (w *world) buyerWrites(tenant, conn, orderID, alias, msgID string) string {
	raw, _ := json.Marshal(map[string]any{"channel": "email_relay", "messageId": strings.Trim(msgID, "<>"),
		"references": []string{"first@amazon"}, "subject": "Livraison : question (Commande : " + orderID + ")", "from": alias})
	if _, err := testenv.IngestEvents(context.Background(), w.store, tenant, conn, []marketplace.InboundMessage{{ExternalID: msgID, ThreadKey: orderID,
		OrderID: orderID, BuyerName: "Camille", BuyerEmail: alias, Subject: "Livraison", Body: "Où est mon colis ?", ReceivedAt: w.clock.Now(), Raw: raw}}); err != nil {
		w.t.Fatal(err)
	}
	var ticket string
	if err := w.pool.QueryRow(context.Background(), `SELECT "ticketId" FROM "ExternalMessage" WHERE "externalId" = $1 AND "tenantId" = $2`, msgID, tenant).Scan(&ticket); err != nil {
		w.t.Fatal(err)
	}
	return ticket
}

func (w *world) send(text, key string) reply.Queued {
	w.t.Helper()
	q, err := w.queue.Reply(context.Background(), reply.Request{TenantID: w.tenant, TicketID: w.ticket, AgentID: "agent-1", IdempotencyKey: key, Text: text})
	if err != nil {
		w.t.Fatal(err)
	}
	w.clock.Advance(time.Second) // replies listed newest first are told apart by time
	return q
}

func (w *world) outbound() []reply.Outbound {
	w.t.Helper()
	list, _, err := w.store.Outbound(context.Background(), w.tenant, w.ticket)
	if err != nil {
		w.t.Fatal(err)
	}
	return list
}

func (w *world) count(sql string, args ...any) int {
	w.t.Helper()
	var n int
	if err := w.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *world) mailsTo(replyID string) int {
	n := 0
	for _, s := range w.ses.Sent() {
		if s.Tags[reply.TagReply] == replyID {
			n++
		}
	}
	return n
}

// TestReplyRoundTrip: the rows of one reply in KeyBuzz's shapes, its mail
// threaded to the buyer's, SENT with SES's id, delivered.
func TestReplyRoundTrip(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	q := w.send("  Bonjour Camille,\nvotre colis part demain.  ", "")
	if q.Status != reply.StatusPending || q.Replayed || !strings.HasPrefix(q.ReplyID, "c") || len(q.ReplyID) != 25 {
		t.Fatalf("queued %+v", q)
	}
	// KeyBuzz's rows, in one transaction.
	var senderType, senderID, source string
	var internal bool
	if err := w.pool.QueryRow(ctx, `SELECT "senderType"::text, "senderId", "source"::text, "isInternal" FROM "TicketMessage"
		WHERE "ticketId" = $1 AND "senderType" = 'AGENT'`, w.ticket).Scan(&senderType, &senderID, &source, &internal); err != nil {
		t.Fatal(err)
	}
	if senderID != "agent-1" || source != "KEYBUZZ_UI" || internal {
		t.Fatalf("agent message %s %s %s %v", senderType, senderID, source, internal)
	}
	var to, subject, body, hash, status, conn string
	if err := w.pool.QueryRow(ctx, `SELECT "toAddress", "subject", "body", "bodyHash", "status"::text, "connectionId" FROM "MarketplaceOutboundMessage" WHERE "id" = $1`,
		q.ReplyID).Scan(&to, &subject, &body, &hash, &status, &conn); err != nil {
		t.Fatal(err)
	}
	if to != w.alias || subject != "Re: Livraison : question (Commande : 171-1234567-1234567)" || body != "Bonjour Camille,\nvotre colis part demain." ||
		hash != reply.BodyHash(q.ReplyID, body) || status != "PENDING" || conn != w.conn {
		t.Fatalf("outbound row %q %q %q %q %s %s", to, subject, body, hash, status, conn)
	}
	if n := w.count(`SELECT count(*) FROM "TicketEvent" WHERE "ticketId" = $1 AND "type" = 'MESSAGE_SENT' AND "actorType" = 'AGENT' AND "actorId" = 'agent-1'`, w.ticket); n != 1 {
		t.Fatalf("%d MESSAGE_SENT events", n)
	}
	var first *time.Time
	_ = w.pool.QueryRow(ctx, `SELECT "firstResponseAt" FROM "Ticket" WHERE "id" = $1`, w.ticket).Scan(&first)
	if first == nil || !first.Equal(t0) {
		t.Fatalf("firstResponseAt %v", first)
	}
	if len(w.jobs.list) != 1 || w.jobs.list[0].ReplyID != q.ReplyID {
		t.Fatalf("jobs %v", w.jobs.list)
	}
	_, due, _ := w.store.Outbound(ctx, w.tenant, w.ticket)
	if due != nil {
		t.Fatalf("responseDueAt %v after the agent answered", due)
	}

	// Sent once, threaded; the events make it SENT then delivered.
	if err := w.sender.Handle(ctx, w.jobs.list[0]); err != nil {
		t.Fatal(err)
	}
	w.ses.Wait()
	sent := w.ses.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d mails", len(sent))
	}
	h := mail.Header(sent[0].Headers)
	if h.Get("From") != w.from || h.Get("To") != w.alias || h.Get("In-Reply-To") != "<buyer-1@email.amazonses.com>" ||
		h.Get("References") != "<first@amazon> <buyer-1@email.amazonses.com>" {
		t.Fatalf("headers %v", sent[0].Headers)
	}
	out := w.outbound()
	if len(out) != 1 || out[0].Status != "SENT" || out[0].ProviderMessageID == nil || *out[0].ProviderMessageID != sent[0].MessageID ||
		out[0].SentAt == nil || out[0].Error != nil || out[0].Attempts != 1 {
		t.Fatalf("outbound %+v", out)
	}
	if n := w.count(`SELECT count(*) FROM "TicketEvent" WHERE "ticketId" = $1 AND "type" = 'OUTBOUND_SENT'`, w.ticket); n != 1 {
		t.Fatalf("%d OUTBOUND_SENT", n)
	}
	// No relay configured in this world: no Delivery; a redelivered job sends nothing more.
	if err := w.sender.Handle(ctx, w.jobs.list[0]); err != nil {
		t.Fatal(err)
	}
	if len(w.ses.Sent()) != 1 {
		t.Fatal("a redelivered job sent again")
	}
}

// TestReplyRequestRules: the same text twice is two replies; the same
// Idempotency-Key twice is one; another tenant's ticket is not found; a
// content rule refuses before anything is stored; a ticket without a
// known alias says to answer in Seller Central.
func TestReplyRequestRules(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a, b := w.send("Merci", ""), w.send("Merci", "")
	if a.ReplyID == b.ReplyID || len(w.outbound()) != 2 {
		t.Fatalf("same text twice: %v %v, %d rows", a, b, len(w.outbound()))
	}
	k1, k2 := w.send("Avec clé", "key-1"), w.send("Avec clé", "key-1")
	if k1.ReplyID != k2.ReplyID || !k2.Replayed || len(w.outbound()) != 3 {
		t.Fatalf("same key twice: %+v %+v, %d rows", k1, k2, len(w.outbound()))
	}
	_, err := w.queue.Reply(ctx, reply.Request{TenantID: w.tenant, TicketID: w.ticket, IdempotencyKey: "key-1", Text: "Autre texte"})
	if !errors.Is(err, marketplace.ErrIdempotencyReused) {
		t.Fatalf("key reused with another text: %v", err)
	}
	other, _ := w.connected("tenant-other")
	_, err = w.queue.Reply(ctx, reply.Request{TenantID: other, TicketID: w.ticket, Text: "Bonjour"})
	if !errors.Is(err, marketplace.ErrNotFound) {
		t.Fatalf("another tenant's ticket: %v", err)
	}
	if _, _, err := w.store.Outbound(ctx, other, w.ticket); !errors.Is(err, marketplace.ErrNotFound) {
		t.Fatalf("another tenant's outbound: %v", err)
	}
	before := w.count(`SELECT count(*) FROM "TicketMessage" WHERE "ticketId" = $1`, w.ticket)
	for text, code := range map[string]string{
		"":                              reply.CodeEmpty,
		strings.Repeat("x", 2001):       reply.CodeTooLong,
		"Voir https://myshop.example/x": reply.CodeLink,
		"Écrivez à jane@example.com":    reply.CodeEmailAddress,
		"Appelez le 06 12 34 56 78":     reply.CodePhoneNumber,
		"We will refund you":            reply.CodeBlockedKeyword,
	} {
		_, err := w.queue.Reply(ctx, reply.Request{TenantID: w.tenant, TicketID: w.ticket, Text: text})
		var v *reply.Violation
		if !errors.As(err, &v) || v.Code != code {
			t.Fatalf("%q: %v, want %s", text, err, code)
		}
	}
	if after := w.count(`SELECT count(*) FROM "TicketMessage" WHERE "ticketId" = $1`, w.ticket); after != before {
		t.Fatal("a refused text stored a message")
	}
	// An order event's ticket (no relay mail, no buyer e-mail): no alias.
	if _, err := testenv.IngestEvents(ctx, w.store, w.tenant, w.conn, []marketplace.InboundMessage{{ExternalID: "404-1:cancel", ThreadKey: "404-1",
		OrderID: "404-1", Body: "cancel", ReceivedAt: t0}}); err != nil {
		t.Fatal(err)
	}
	var bare string
	_ = w.pool.QueryRow(ctx, `SELECT "ticketId" FROM "ExternalMessage" WHERE "externalId" = '404-1:cancel'`).Scan(&bare)
	_, err = w.queue.Reply(ctx, reply.Request{TenantID: w.tenant, TicketID: bare, Text: "Bonjour"})
	if !errors.Is(err, marketplace.ErrNoBuyerAddress) {
		t.Fatalf("no alias: %v", err)
	}
	// Disconnected: KeyBuzz's oauth_not_connected.
	if _, err := w.pool.Exec(ctx, `UPDATE "MarketplaceConnection" SET "status" = 'DISABLED' WHERE "id" = $1`, w.conn); err != nil {
		t.Fatal(err)
	}
	if _, err := w.queue.Reply(ctx, reply.Request{TenantID: w.tenant, TicketID: w.ticket, Text: "Bonjour"}); !errors.Is(err, marketplace.ErrOAuthNotConnected) {
		t.Fatalf("disconnected: %v", err)
	}
}

// TestReplySendFailures: throttling and a 5xx are retried and send once; a
// refused identity ends FAILED with SES's reason; after a crash between
// SES's answer and the commit, the Send event stops a second mail.
func TestReplySendFailures(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	handleUntilSettled := func(job reply.Job) {
		t.Helper()
		for i := 0; i < 10; i++ {
			err := w.sender.Handle(ctx, job)
			if err == nil {
				return
			}
			if !errors.Is(err, replysender.ErrRetryLater) {
				t.Fatal(err)
			}
			w.clock.Advance(10 * time.Minute)
		}
		t.Fatal("never settled")
	}
	for _, f := range []sesout.Faults{{Throttle: 2}, {ServerErrors: 1}, {LostAnswers: 1}} {
		w.ses.SetFaults(f)
		q := w.send(fmt.Sprintf("Bonjour (%+v)", f), "")
		job := reply.Job{ReplyID: q.ReplyID, TenantID: w.tenant}
		err := w.sender.Handle(ctx, job)
		if !errors.Is(err, replysender.ErrRetryLater) {
			t.Fatalf("%+v: first attempt %v", f, err)
		}
		out := w.outbound()[0]
		switch {
		case f.LostAnswers > 0:
			// SES sent it and its Send event already told: SENT, no retry needed.
			if out.Status != "SENT" {
				t.Fatalf("lost answer: %+v", out)
			}
		default:
			if out.Status != "PENDING" || out.Attempts != 1 || out.Error == nil {
				t.Fatalf("%+v after a failure: %+v", f, out)
			}
		}
		handleUntilSettled(job)
		if n := w.mailsTo(q.ReplyID); n != 1 {
			t.Fatalf("%+v: %d mails", f, n)
		}
		if out := w.outbound()[0]; out.Status != "SENT" || out.Error != nil {
			t.Fatalf("%+v: %+v", f, out)
		}
	}

	// A crash after SES accepted: the sender's claim goes stale before the
	// commit; the Send event (arriving late) is there when the job returns.
	w.pub.hold = true
	q := w.send("Après la panne", "")
	p, ok, _, err := w.store.ClaimReply(ctx, q.ReplyID, "dead-sender", time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	client, _ := sessender.NewClient(ctx)
	raw, _ := replymail.Compose(replymail.Mail{From: p.From, To: p.To, BuyerSubject: p.Subject, Text: p.Text})
	if _, err := sessender.New(client, "replies").Send(ctx, reply.Outgoing{ReplyID: p.ID, TenantID: p.TenantID, From: p.From, To: p.To, Raw: raw}); err != nil {
		t.Fatal(err)
	}
	// ...the process dies here. Its redelivered job, before the lease ends:
	if err := w.sender.Handle(ctx, reply.Job{ReplyID: q.ReplyID}); !errors.Is(err, replysender.ErrRetryLater) {
		t.Fatalf("live claim: %v", err)
	}
	w.pub.release(t)
	w.clock.Advance(2 * time.Minute)
	if err := w.sender.Handle(ctx, reply.Job{ReplyID: q.ReplyID}); err != nil {
		t.Fatal(err)
	}
	if n := w.mailsTo(q.ReplyID); n != 1 {
		t.Fatalf("crash: %d mails", n)
	}
	if out := w.outbound()[0]; out.Status != "SENT" || out.ProviderMessageID == nil {
		t.Fatalf("crash: %+v", out)
	}

	// The same crash, the Send event only recorded (not yet applied to the
	// reply) when the stale claim is taken: SentBySES finds it.
	w.pub.hold = true
	q = w.send("Deuxième panne", "")
	p, _, _, _ = w.store.ClaimReply(ctx, q.ReplyID, "dead-sender", time.Minute)
	raw, _ = replymail.Compose(replymail.Mail{From: p.From, To: p.To, BuyerSubject: p.Subject, Text: p.Text})
	sesID, err := sessender.New(client, "replies").Send(ctx, reply.Outgoing{ReplyID: p.ID, TenantID: p.TenantID, From: p.From, To: p.To, Raw: raw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.pool.Exec(ctx, `INSERT INTO keybuzz_amazon."SesEvent" ("sesMessageId", "eventType", "eventKey", "replyId", "tenantId", "occurredAt", "payload")
		VALUES ($1, 'Send', '', $2, $3, now(), '{}')`, sesID, q.ReplyID, w.tenant); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(2 * time.Minute)
	if err := w.sender.Handle(ctx, reply.Job{ReplyID: q.ReplyID}); err != nil {
		t.Fatal(err)
	}
	if n := w.mailsTo(q.ReplyID); n != 1 {
		t.Fatalf("crash, event recorded: %d mails", n)
	}
	if out := w.outbound()[0]; out.Status != "SENT" || out.ProviderMessageID == nil || *out.ProviderMessageID != sesID {
		t.Fatalf("crash, event recorded: %+v", out)
	}
	w.pub.release(t) // the held Send event: a duplicate of the recorded one

	// An identity SES does not know: FAILED at once with SES's words.
	if _, err := w.pool.Exec(ctx, `UPDATE keybuzz_amazon."Reply" SET "fromAddress" = 'noreply@keybuzz.io' WHERE "id" = $1`, "none"); err != nil {
		t.Fatal(err)
	}
	q = w.send("Identité refusée", "")
	if _, err := w.pool.Exec(ctx, `UPDATE keybuzz_amazon."Reply" SET "fromAddress" = 'noreply@keybuzz.io' WHERE "id" = $1`, q.ReplyID); err != nil {
		t.Fatal(err)
	}
	if err := w.sender.Handle(ctx, reply.Job{ReplyID: q.ReplyID}); err != nil {
		t.Fatal(err)
	}
	out := w.outbound()[0]
	if out.Status != "FAILED" || out.Error == nil || !strings.Contains(*out.Error, "not verified") {
		t.Fatalf("unverified: %+v", out)
	}
	if n := w.count(`SELECT count(*) FROM "TicketEvent" WHERE "type" = 'OUTBOUND_FAILED' AND "payload"->>'outboundMessageId' = $1`, q.ReplyID); n != 1 {
		t.Fatalf("%d OUTBOUND_FAILED", n)
	}
}

// TestReplyEventsAnyOrder: SES's events, duplicated and out of order,
// settle one fate and one KeyBuzz event per change; Amazon's notice fails
// a delivered reply with an internal note and marks the sender unapproved.
func TestReplyEventsAnyOrder(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.pub.hold = true
	q := w.send("Bonjour", "")
	if err := w.sender.Handle(ctx, reply.Job{ReplyID: q.ReplyID}); err != nil {
		t.Fatal(err)
	}
	sesID := *w.outbound()[0].ProviderMessageID
	w.pub.held = nil
	ev := func(typ string, fill func(*sesmail.Event)) string {
		e := sesmail.Event{EventType: typ, Mail: sesmail.EventMail{MessageID: sesID, Timestamp: t0, Source: w.from,
			Tags: map[string][]string{reply.TagReply: {q.ReplyID}, reply.TagTenant: {w.tenant}}}}
		if fill != nil {
			fill(&e)
		}
		s, _ := sesout.SNSBody(e, "sns", "arn", t0)
		return s
	}
	delivery := ev("Delivery", func(e *sesmail.Event) {
		e.Delivery = &sesmail.Delivery{Timestamp: t0.Add(time.Second), SMTPResponse: "250 ok"}
	})
	send := ev("Send", func(e *sesmail.Event) { e.Send = &struct{}{} })
	for _, body := range []string{delivery, delivery, send, send} {
		if err := w.events.Handle(ctx, body); err != nil {
			t.Fatal(err)
		}
	}
	var state string
	var delivered *time.Time
	_ = w.pool.QueryRow(ctx, `SELECT "state", "deliveredAt" FROM keybuzz_amazon."Reply" WHERE "id" = $1`, q.ReplyID).Scan(&state, &delivered)
	if state != reply.StateDelivered || delivered == nil {
		t.Fatalf("state %s delivered %v", state, delivered)
	}
	if n := w.count(`SELECT count(*) FROM "TicketEvent" WHERE "type" = 'OUTBOUND_SENT' AND "payload"->>'outboundMessageId' = $1`, q.ReplyID); n != 1 {
		t.Fatalf("%d OUTBOUND_SENT", n)
	}
	if n := w.count(`SELECT count(*) FROM keybuzz_amazon."SesEvent" WHERE "sesMessageId" = $1`, sesID); n != 2 {
		t.Fatalf("%d events recorded", n)
	}

	// Amazon's notice: the sender is not approved.
	found, err := w.events.ApplyNotice(ctx, replies.Notice{TenantID: w.tenant, Reason: "SENDER_NOT_APPROVED", OrderID: "171-1234567-1234567",
		Alias: strings.ToUpper(w.alias), Text: "We were unable to deliver the message…"})
	if err != nil || !found {
		t.Fatal(found, err)
	}
	out := w.outbound()[0]
	if out.Status != "FAILED" || out.Error == nil || !strings.Contains(*out.Error, "Messaging Permissions") {
		t.Fatalf("after notice: %+v", out)
	}
	if n := w.count(`SELECT count(*) FROM "TicketMessage" WHERE "ticketId" = $1 AND "senderType" = 'SYSTEM' AND "isInternal" AND "body" LIKE '%Messaging Permissions%'`, w.ticket); n != 1 {
		t.Fatalf("%d internal notes", n)
	}
	need, err := w.store.SendersNeedingApproval(ctx, w.tenant)
	if err != nil || need[strings.ToLower(w.from)] == "" {
		t.Fatalf("approval needed: %v %v", need, err)
	}
	// A bounce after it changes nothing more; the same notice again neither.
	bounce := ev("Bounce", func(e *sesmail.Event) {
		e.Bounce = &sesmail.Bounce{BounceType: "Permanent", BounceSubType: "General", FeedbackID: "fb-1", Timestamp: t0.Add(time.Minute)}
	})
	if err := w.events.Handle(ctx, bounce); err != nil {
		t.Fatal(err)
	}
	if _, err := w.events.ApplyNotice(ctx, replies.Notice{TenantID: w.tenant, Reason: "SENDER_NOT_APPROVED", Alias: w.alias}); err != nil {
		t.Fatal(err)
	}
	if n := w.count(`SELECT count(*) FROM "TicketEvent" WHERE "type" = 'OUTBOUND_FAILED' AND "payload"->>'outboundMessageId' = $1`, q.ReplyID); n != 1 {
		t.Fatalf("%d OUTBOUND_FAILED", n)
	}

	// A bounce on a fresh reply fails it with the diagnostic.
	w.clock.Advance(time.Second)
	q2 := w.send("Encore", "")
	if err := w.sender.Handle(ctx, reply.Job{ReplyID: q2.ReplyID}); err != nil {
		t.Fatal(err)
	}
	if out := w.outbound()[0]; out.ID != q2.ReplyID {
		t.Fatalf("newest first: %s, want %s", out.ID, q2.ReplyID)
	}
	sesID = *w.outbound()[0].ProviderMessageID
	b2 := ev("Bounce", func(e *sesmail.Event) {
		e.Mail.Tags[reply.TagReply] = []string{q2.ReplyID}
		e.Bounce = &sesmail.Bounce{BounceType: "Permanent", BounceSubType: "General", FeedbackID: "fb-2", Timestamp: t0,
			BouncedRecipients: []sesmail.Recipient{{EmailAddress: w.alias, DiagnosticCode: "smtp; 550 5.1.1 unknown"}}}
	})
	if err := w.events.Handle(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if out := w.outbound()[0]; out.Status != "FAILED" || out.Error == nil || !strings.Contains(*out.Error, "550 5.1.1") {
		t.Fatalf("bounce: %+v", out)
	}
}

// TestNoticeConcernsASentReply: Amazon's notice is about a mail it got, so
// it fails the agent's latest reply that reached SES, not a newer one still
// waiting for its turn (which would then never be sent, and the refused one
// would stay SENT).
func TestNoticeConcernsASentReply(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sent := w.send("Bonjour, il part demain.", "")
	if err := w.sender.Handle(ctx, reply.Job{ReplyID: sent.ReplyID}); err != nil {
		t.Fatal(err)
	}
	queued := w.send("Et le suivi arrive.", "")
	found, err := w.events.ApplyNotice(ctx, replies.Notice{TenantID: w.tenant, Reason: "SENDER_NOT_APPROVED", OrderID: "171-1234567-1234567", Alias: w.alias})
	if err != nil || !found {
		t.Fatal(found, err)
	}
	state := func(id string) string {
		var s string
		if err := w.pool.QueryRow(ctx, `SELECT "state" FROM keybuzz_amazon."Reply" WHERE "id" = $1`, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := state(sent.ReplyID); got != reply.StateFailed {
		t.Errorf("the reply Amazon refused: %s, want FAILED", got)
	}
	if got := state(queued.ReplyID); got != reply.StateQueued {
		t.Errorf("the reply not sent yet: %s, want QUEUED", got)
	}
}

// TestStatusEventOnceUnderRace: SES's Send event whose transaction waits
// on the sender's commit (the reply locked, moved to SENT) must see that
// commit whole: KeyBuzz's OUTBOUND_SENT is written once, by the sender.
func TestStatusEventOnceUnderRace(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	q := w.send("Bonjour, il part demain.", "")
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, stmt := range []string{
		`SELECT 1 FROM keybuzz_amazon."Reply" WHERE "id" = $1 FOR UPDATE`,
		`UPDATE keybuzz_amazon."Reply" SET "state" = 'ACCEPTED', "sesMessageId" = 'ses-race-1' WHERE "id" = $1`,
		`UPDATE public."MarketplaceOutboundMessage" SET "status" = 'SENT' WHERE "id" = $1`,
		`INSERT INTO public."TicketEvent" ("id", "ticketId", "tenantId", "type", "createdAt", "actorType", "payload")
		 SELECT 'te-race-' || r."id", r."ticketId", r."tenantId", 'OUTBOUND_SENT', now(), 'SYSTEM', jsonb_build_object('outboundMessageId', r."id")
		 FROM keybuzz_amazon."Reply" r WHERE r."id" = $1`,
	} {
		if _, err := tx.Exec(ctx, stmt, q.ReplyID); err != nil {
			t.Fatal(err)
		}
	}
	body, _ := sesout.SNSBody(sesmail.Event{EventType: "Send", Send: &struct{}{}, Mail: sesmail.EventMail{MessageID: "ses-race-1", Timestamp: t0, Source: w.from,
		Tags: map[string][]string{reply.TagReply: {q.ReplyID}, reply.TagTenant: {w.tenant}}}}, "sns", "arn", t0)
	done := make(chan error, 1)
	go func() { done <- w.events.Handle(ctx, body) }()
	time.Sleep(300 * time.Millisecond) // the event's transaction waits on the reply's lock
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := w.count(`SELECT count(*) FROM "TicketEvent" WHERE "type" = 'OUTBOUND_SENT' AND "payload"->>'outboundMessageId' = $1`, q.ReplyID); n != 1 {
		t.Fatalf("%d OUTBOUND_SENT, want 1", n)
	}
}

// TestConcurrentNotices: two notices about two replies to one buyer at
// once fail both replies, each once.
func TestConcurrentNotices(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var ids []string
	for _, text := range []string{"Bonjour, il part demain.", "Et le suivi arrive."} {
		q := w.send(text, "")
		if err := w.sender.Handle(ctx, reply.Job{ReplyID: q.ReplyID}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, q.ReplyID)
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := w.events.ApplyNotice(ctx, replies.Notice{TenantID: w.tenant, Reason: "SENDER_NOT_APPROVED", OrderID: "171-1234567-1234567", Alias: w.alias})
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		var state string
		_ = w.pool.QueryRow(ctx, `SELECT "state" FROM keybuzz_amazon."Reply" WHERE "id" = $1`, id).Scan(&state)
		if state != reply.StateFailed {
			t.Errorf("reply %s: %s, want FAILED", id, state)
		}
		if n := w.count(`SELECT count(*) FROM "TicketEvent" WHERE "type" = 'OUTBOUND_FAILED' AND "payload"->>'outboundMessageId' = $1`, id); n != 1 {
			t.Errorf("reply %s: %d OUTBOUND_FAILED, want 1", id, n)
		}
	}
}

// TestResponseClock: open Amazon tickets by the age of their oldest
// unanswered buyer message; an answered ticket and a closed one count
// nowhere; the report is one EMF line.
func TestResponseClock(t *testing.T) {
	w := newWorld(t) // its ticket: a buyer message at t0, unanswered
	ctx := context.Background()
	ticketAt := func(order string, age time.Duration) string {
		msg := fmt.Sprintf("<%s@email.amazonses.com>", order)
		raw, _ := json.Marshal(map[string]any{"channel": "email_relay", "messageId": strings.Trim(msg, "<>")})
		if _, err := testenv.IngestEvents(ctx, w.store, w.tenant, w.conn, []marketplace.InboundMessage{{ExternalID: msg, ThreadKey: order,
			OrderID: order, BuyerName: "B", BuyerEmail: "b@marketplace.amazon.fr", Body: "?", ReceivedAt: t0.Add(-age), Raw: raw}}); err != nil {
			t.Fatal(err)
		}
		var ticket string
		if err := w.pool.QueryRow(ctx, `SELECT "ticketId" FROM "ExternalMessage" WHERE "externalId" = $1`, msg).Scan(&ticket); err != nil {
			t.Fatal(err)
		}
		return ticket
	}
	ticketAt("402-0000001-0000001", 13*time.Hour)
	ticketAt("402-0000002-0000002", 21*time.Hour)
	ticketAt("402-0000003-0000003", 30*time.Hour)
	ticketAt("402-0000004-0000004", 40*time.Hour)
	closed := ticketAt("402-0000005-0000005", 50*time.Hour)
	if _, err := w.pool.Exec(ctx, `UPDATE "Ticket" SET "status" = 'CLOSED' WHERE "id" = $1`, closed); err != nil {
		t.Fatal(err)
	}
	answered := ticketAt("402-0000006-0000006", 5*time.Hour)
	if _, err := w.pool.Exec(ctx, `INSERT INTO "TicketMessage" ("id", "ticketId", "tenantId", "senderType", "sentAt", "body", "isInternal", "source")
		VALUES ('agent-answer', $1, $2, 'AGENT', $3::timestamptz AT TIME ZONE 'UTC', 'ok', false, 'KEYBUZZ_UI')`, answered, w.tenant, t0.Add(-4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	u, err := replies.NewClock(w.store, metrics.New(&out)).Report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u != (reply.Unanswered{Under12h: 1, From12To20h: 1, From20To24h: 1, Late: 2}) {
		t.Fatalf("unanswered %+v", u)
	}
	if !strings.Contains(out.String(), `"unansweredLate":2`) || !strings.Contains(out.String(), `"Function":"responseclock"`) {
		t.Fatalf("EMF line %s", out.String())
	}
}
