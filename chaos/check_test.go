package main

import (
	"context"
	"errors"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sesout"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

// tiny is a soak small enough to break on purpose: a few tenants, no
// injected fault, one of them revoked before the second cycle.
func tiny() Settings {
	return Settings{Name: "tiny", Tenants: 4, Cycles: 2, SettleCycles: 2, Workers: 2, Batch: 5, PageSize: 20,
		ActivityRate: 1, RevokeTenants: 1, Visibility: 1, DrainTimeout: 2 * time.Minute, Seed: 7,
		Channels: true, MailRate: 1}
}

// TestCheckerFailsOnBrokenSystem runs the tiny soak, checks that the
// checker passes it, then breaks the database in one way at a time (inside
// a transaction the checker reads through, rolled back afterwards) and
// shows that the check meant to see that break fails; last, a store defect
// at run time sends a tenant's messages to the dead-letter queue, which the
// tracer must count as unexplained, while the same dead letters caused by
// an injected Amazon fault are explained.
func TestCheckerFailsOnBrokenSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a small soak")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := &syncBuffer{}
	w, err := newWorld(ctx, tiny(), out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	defer func() {
		if t.Failed() {
			t.Log(string(out.Bytes()))
		}
	}()
	if err := w.connectAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.soak(ctx); err != nil {
		t.Fatal(err)
	}
	base, err := w.checkWith(ctx, w.check)
	if err != nil {
		t.Fatal(err)
	}
	if !base.OK() || base.EventsExpected == 0 || base.Revoked != 1 {
		t.Fatalf("the unbroken tiny soak does not pass: %+v", base)
	}
	if c := base.Channels; c.MailsStored == 0 || c.NotificationsRecorded == 0 || c.NotificationsForged == 0 {
		t.Fatalf("the tiny soak's channels proved nothing: %+v", c)
	}
	live, revoked := w.tenants[0], w.tenants[len(w.tenants)-1]
	other := w.tenants[1]
	var afterRevocation sandbox.Event
	for _, e := range w.sb.BuyerEvents(revoked.seller) {
		if !e.At.Before(*revoked.revokedAt) {
			afterRevocation = e
		}
	}
	if afterRevocation.OrderID == "" {
		t.Fatal("no buyer event after the revocation")
	}

	// An order event's message of tenant tn (the first one).
	msgOf := func(tx pgx.Tx, tn *tenant) (id, ext string) {
		if err := tx.QueryRow(ctx, `SELECT "id", "externalId" FROM "ExternalMessage" WHERE "tenantId" = $1 AND "externalId" LIKE '%:cancellation' ORDER BY "externalId" LIMIT 1`, tn.id).Scan(&id, &ext); err != nil {
			t.Fatal(err)
		}
		return id, ext
	}
	// copyRow inserts a copy of a row of table with some columns changed,
	// whatever the table's other columns are.
	copyRow := func(tx pgx.Tx, table, id string, set map[string]any) {
		if _, err := tx.Exec(ctx, `INSERT INTO "`+table+`" SELECT (jsonb_populate_record(NULL::"`+table+`", to_jsonb(r) || $2::jsonb)).* FROM "`+table+`" r WHERE r."id" = $1`, id, set); err != nil {
			t.Fatal(err)
		}
	}
	// copyMessage copies an ExternalMessage and what the connector keeps of
	// it (keybuzz_amazon."Message": no TicketMessage; "body" set replaces
	// its text), with the columns of set changed.
	copyMessage := func(tx pgx.Tx, id string, set map[string]any) {
		copyRow(tx, "ExternalMessage", id, set)
		link := map[string]any{"externalMessageId": set["id"], "ticketMessageId": nil}
		if b, ok := set["body"]; ok {
			link["body"] = b
		}
		if _, err := tx.Exec(ctx, `INSERT INTO keybuzz_amazon."Message"
SELECT (jsonb_populate_record(NULL::keybuzz_amazon."Message", to_jsonb(r) || $2::jsonb)).* FROM keybuzz_amazon."Message" r WHERE r."externalMessageId" = $1`, id, link); err != nil {
			t.Fatal(err)
		}
	}
	// A mail message of tenant tn (one of its buyer's mails).
	mailOf := func(tx pgx.Tx, tn *tenant) (id, ext string) {
		if err := tx.QueryRow(ctx, `SELECT e."id", e."externalId" FROM public."ExternalMessage" e JOIN keybuzz_amazon."Message" m ON m."externalMessageId" = e."id"
	WHERE e."tenantId" = $1 AND m."body" LIKE '%chaos-mail-%' ORDER BY e."externalId" LIMIT 1`, tn.id).Scan(&id, &ext); err != nil {
			t.Fatal(err)
		}
		return id, ext
	}
	// dropTicketMessage deletes ExternalMessage id's TicketMessage (and the
	// connector's link to it).
	dropTicketMessage := func(tx pgx.Tx, id string) {
		var tm string
		if err := tx.QueryRow(ctx, `SELECT "ticketMessageId" FROM keybuzz_amazon."Message" WHERE "externalMessageId" = $1`, id).Scan(&tm); err != nil {
			t.Fatal(err)
		}
		mustExec(t, tx, `UPDATE keybuzz_amazon."Message" SET "ticketMessageId" = NULL WHERE "externalMessageId" = $1`, id)
		mustExec(t, tx, `DELETE FROM "TicketMessage" WHERE "id" = $1`, tm)
	}
	// secondTicket moves ExternalMessage id's ticket message to a copy of its ticket.
	secondTicket := func(tx pgx.Tx, id string) {
		var tm, ticket string
		if err := tx.QueryRow(ctx, `SELECT tm."id", tm."ticketId" FROM "TicketMessage" tm WHERE tm."id" = (SELECT m."ticketMessageId" FROM keybuzz_amazon."Message" m WHERE m."externalMessageId" = $1)`, id).Scan(&tm, &ticket); err != nil {
			t.Fatal(err)
		}
		copyRow(tx, "Ticket", ticket, map[string]any{"id": "second-" + ticket, "externalThreadId": nil})
		mustExec(t, tx, `UPDATE "TicketMessage" SET "ticketId" = $2 WHERE "id" = $1`, tm, "second-"+ticket)
	}
	breaks := []struct {
		name  string
		brk   func(tx pgx.Tx)
		check func(v Invariants) int
	}{
		{"an event lost", func(tx pgx.Tx) {
			id, _ := msgOf(tx, live)
			mustExec(t, tx, `DELETE FROM "ExternalMessage" WHERE "id" = $1`, id)
		}, func(v Invariants) int { return v.Lost }},
		{"an event of the revoked tenant lost (served by Amazon before the revocation)", func(tx pgx.Tx) {
			id, _ := msgOf(tx, revoked)
			mustExec(t, tx, `DELETE FROM "ExternalMessage" WHERE "id" = $1`, id)
		}, func(v Invariants) int { return v.Lost }},
		{"the same event under a second externalId", func(tx pgx.Tx) {
			id, ext := msgOf(tx, live)
			copyMessage(tx, id, map[string]any{"id": "dup-" + id, "externalId": ext + ":again"})
		}, func(v Invariants) int { return v.Duplicated }},
		{"two tickets for one order thread", func(tx pgx.Tx) {
			id, _ := msgOf(tx, live)
			var tm, ticket string
			if err := tx.QueryRow(ctx, `SELECT tm."id", tm."ticketId" FROM "TicketMessage" tm JOIN "ExternalMessage" e ON e."tenantId" = tm."tenantId"
WHERE e."id" = $1 AND tm."ticketId" = (SELECT t."ticketId" FROM "TicketMessage" t WHERE t."id" = (SELECT m."ticketMessageId" FROM keybuzz_amazon."Message" m WHERE m."externalMessageId" = $1)) LIMIT 1`, id).Scan(&tm, &ticket); err != nil {
				t.Fatal(err)
			}
			copyRow(tx, "Ticket", ticket, map[string]any{"id": "second-" + ticket, "externalThreadId": nil})
			mustExec(t, tx, `UPDATE "TicketMessage" SET "ticketId" = $2 WHERE "id" = $1`, tm, "second-"+ticket)
		}, func(v Invariants) int { return v.TicketsWrong }},
		{"an event in another tenant", func(tx pgx.Tx) {
			id, _ := msgOf(tx, live)
			mustExec(t, tx, `UPDATE "ExternalMessage" SET "tenantId" = $2 WHERE "id" = $1`, id, other.id)
		}, func(v Invariants) int { return v.WrongTenant }},
		{"an event stored after the seller revoked", func(tx pgx.Tx) {
			id, _ := msgOf(tx, revoked)
			copyMessage(tx, id, map[string]any{"id": "late-" + id, "orderId": afterRevocation.OrderID,
				"externalId": afterRevocation.OrderID + ":" + afterRevocation.OrderItemID + ":cancellation",
				"body":       "Buyer requested cancellation of order " + afterRevocation.OrderID + " (item " + afterRevocation.OrderItemID + "). Reason: x"})
		}, func(v Invariants) int { return v.AfterRevocation }},
		{"an event the sandbox never had", func(tx pgx.Tx) {
			id, _ := msgOf(tx, live)
			copyMessage(tx, id, map[string]any{"id": "phantom-" + id, "orderId": "999-0000000-0000000",
				"externalId": "999-0000000-0000000:1:cancellation", "body": "Buyer requested cancellation of order 999-0000000-0000000 (item 1). Reason: x"})
		}, func(v Invariants) int { return v.Phantom }},
		// The push and mail channels.
		{"a mail lost", func(tx pgx.Tx) {
			id, _ := mailOf(tx, live)
			mustExec(t, tx, `DELETE FROM "ExternalMessage" WHERE "id" = $1`, id)
		}, func(v Invariants) int { return v.Channels.MailsLost }},
		{"one mail as two messages (a second externalId)", func(tx pgx.Tx) {
			id, ext := mailOf(tx, live)
			copyMessage(tx, id, map[string]any{"id": "dup-" + id, "externalId": "ses:" + ext})
		}, func(v Invariants) int { return v.Channels.MailsDuplicated }},
		{"one mail as two tickets", func(tx pgx.Tx) {
			id, _ := mailOf(tx, live)
			secondTicket(tx, id)
		}, func(v Invariants) int { return v.TicketsWrong }},
		{"a mail in another tenant", func(tx pgx.Tx) {
			id, _ := mailOf(tx, live)
			mustExec(t, tx, `UPDATE "ExternalMessage" SET "tenantId" = $2 WHERE "id" = $1`, id, other.id)
		}, func(v Invariants) int { return v.WrongTenant }},
		{"a malformed mail stored", func(tx pgx.Tx) {
			id, _ := mailOf(tx, live)
			copyMessage(tx, id, map[string]any{"id": "hostile-" + id, "externalId": "<hostile@x>", "body": "chaos-hostile"})
		}, func(v Invariants) int { return v.Channels.HostileStored }},
		{"a notification recorded under another tenant", func(tx pgx.Tx) {
			mustExec(t, tx, `UPDATE keybuzz_amazon."Notification" SET "tenantId" = $1 WHERE "notificationId" = (SELECT "notificationId" FROM keybuzz_amazon."Notification"
WHERE "tenantId" IS NOT NULL AND "tenantId" <> $1 AND "notificationId" NOT LIKE 'chaos-forged-%' LIMIT 1)`, other.id)
		}, func(v Invariants) int { return v.Channels.NotificationsWrongOwner }},
		{"a notification delivered and never recorded", func(tx pgx.Tx) {
			mustExec(t, tx, `DELETE FROM keybuzz_amazon."Notification" WHERE "notificationId" = (SELECT "notificationId" FROM keybuzz_amazon."Notification"
WHERE "tenantId" = $1 AND "notificationId" NOT LIKE 'chaos-forged-%' LIMIT 1)`, live.id)
		}, func(v Invariants) int { return v.Channels.NotificationsUnrecorded }},
		{"an event without its TicketMessage", func(tx pgx.Tx) {
			id, _ := msgOf(tx, live)
			dropTicketMessage(tx, id)
		}, func(v Invariants) int { return v.TicketMessageMissing }},
		{"a mail without its TicketMessage", func(tx pgx.Tx) {
			id, _ := mailOf(tx, live)
			dropTicketMessage(tx, id)
		}, func(v Invariants) int { return v.TicketMessageMissing }},
		{"a live connection left in ERROR", func(tx pgx.Tx) {
			mustExec(t, tx, `UPDATE "MarketplaceConnection" SET "status" = 'ERROR', "lastError" = 'broken on purpose' WHERE "tenantId" = $1`, live.id)
		}, func(v Invariants) int { return v.ConnectionsWrong }},
		{"a revoked connection left CONNECTED", func(tx pgx.Tx) {
			mustExec(t, tx, `UPDATE "MarketplaceConnection" SET "status" = 'CONNECTED', "lastError" = NULL WHERE "tenantId" = $1`, revoked.id)
		}, func(v Invariants) int { return v.ConnectionsWrong }},
		{"a forged notification stored", func(tx pgx.Tx) {
			mustExec(t, tx, `UPDATE keybuzz_amazon."Notification" SET "outcome" = 'STORED' WHERE "notificationId" LIKE 'chaos-forged-%'`)
		}, func(v Invariants) int { return v.Channels.ForgedStored }},
		{"a pushed event and its poll as two rows", func(tx pgx.Tx) {
			// What a push intake storing under its own id would leave.
			id, ext := msgOf(tx, live)
			copyMessage(tx, id, map[string]any{"id": "push-" + id, "externalId": "push:" + ext})
		}, func(v Invariants) int { return v.Duplicated }},
	}
	for _, b := range breaks {
		t.Run(b.name, func(t *testing.T) {
			tx, err := w.check.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			b.brk(tx)
			v, err := w.checkWith(ctx, tx)
			if err != nil {
				t.Fatal(err)
			}
			if b.check(v) == 0 || v.OK() {
				t.Fatalf("the check did not fail: %+v", v)
			}
			t.Logf("failed as it should: %v", v.Problems)
		})
	}

	// A mail stored although its tenant was not CONNECTED when it was sent
	// (the harness's record of one stored mail says so).
	t.Run("a mail stored for a tenant that was not CONNECTED", func(t *testing.T) {
		w.ch.mu.Lock()
		var m *sentMail
		for _, s := range w.ch.mails {
			if s.tenant == live.id && s.accepting {
				m = s
				break
			}
		}
		w.ch.mu.Unlock()
		if m == nil {
			t.Fatal("no mail of the live tenant")
		}
		m.accepting = false
		defer func() { m.accepting = true }()
		v, err := w.checkWith(ctx, w.check)
		if err != nil {
			t.Fatal(err)
		}
		if v.AfterRevocation == 0 || v.OK() {
			t.Fatalf("the check did not fail: %+v", v)
		}
	})
	// A row KeyBuzz's own Prisma client cannot read: a status its schema's
	// enum does not have (wave 2's NEEDS_REAUTH made KeyBuzz's client throw
	// P2023 so), written for a moment and put back (the label stays in
	// this private database's type, unused).
	t.Run("a row KeyBuzz's client cannot read", func(t *testing.T) {
		var base Invariants
		if err := w.keybuzzRead(ctx, &base); err != nil {
			t.Fatal(err)
		}
		if base.KeybuzzRowsRead == 0 || base.KeybuzzUnreadable != 0 {
			t.Fatalf("the unbroken soak's rows: %d read, %d unreadable (%v)", base.KeybuzzRowsRead, base.KeybuzzUnreadable, base.Problems)
		}
		if _, err := w.check.Exec(ctx, `ALTER TYPE public."TicketStatus" ADD VALUE IF NOT EXISTS 'CHAOS_UNKNOWN'`); err != nil {
			t.Fatal(err)
		}
		var id, status string
		if err := w.check.QueryRow(ctx, `SELECT "id", "status"::text FROM public."Ticket" WHERE "tenantId" = $1 LIMIT 1`, live.id).Scan(&id, &status); err != nil {
			t.Fatal(err)
		}
		if _, err := w.check.Exec(ctx, `UPDATE public."Ticket" SET "status" = 'CHAOS_UNKNOWN' WHERE "id" = $1`, id); err != nil {
			t.Fatal(err)
		}
		defer w.check.Exec(context.WithoutCancel(ctx), `UPDATE public."Ticket" SET "status" = $2::text::public."TicketStatus" WHERE "id" = $1`, id, status)
		var v Invariants
		if err := w.keybuzzRead(ctx, &v); err != nil {
			t.Fatal(err)
		}
		if v.KeybuzzUnreadable == 0 || v.OK() {
			t.Fatalf("the check did not fail: %d read, %d unreadable", v.KeybuzzRowsRead, v.KeybuzzUnreadable)
		}
		t.Logf("failed as it should: %v", v.Problems)
	})
	// A message the system left in a queue.
	t.Run("a message left in the poll queue", func(t *testing.T) {
		if _, err := w.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(w.queueURL), MessageBody: aws.String(`{"left":"behind"}`)}); err != nil {
			t.Fatal(err)
		}
		v, err := w.checkInvariants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out, err := w.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.queueURL), WaitTimeSeconds: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			w.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(w.queueURL), ReceiptHandle: m.ReceiptHandle})
		}
		if v.QueueLeft == 0 || v.OK() {
			t.Fatalf("the check did not fail: %+v", v)
		}
	})
	// A request outside Amazon's contract (an unknown searchOrders
	// parameter) reaches the sandbox.
	t.Run("a request outside Amazon's contract", func(t *testing.T) {
		resp, err := http.Get(w.sbServer.URL + "/orders/2026-01-01/orders?marketplaceIds=A13V1IB3VIYZZH&notAParameter=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		defer func() { w.violations = nil }()
		v, err := w.checkWith(ctx, w.check)
		if err != nil {
			t.Fatal(err)
		}
		if v.OutsideContract == 0 || v.OK() {
			t.Fatalf("the check did not fail: %+v", v)
		}
	})

	// Dead letters: a defect of the store for one tenant (no injected
	// fault) is unexplained; an injected Amazon fault explains its own.
	deadLetters := func(t *testing.T, tn *tenant, inject func()) Invariants {
		t.Helper()
		w.drainDLQ(ctx)
		w.activity(tn)
		inject()
		stop := w.startWorkers(ctx)
		w.clock.Advance(cycleStep)
		err := w.cycle(ctx, 99, false)
		stop()
		if err != nil {
			t.Fatal(err)
		}
		var v Invariants
		dlq, err := w.drainDLQ(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w.judgeDeadLetters(&v, dlq)
		return v
	}
	t.Run("a dead letter without an injected cause", func(t *testing.T) {
		w.bug = func(tenantID string) error {
			if tenantID == live.id {
				return errors.New("a deliberate defect")
			}
			return nil
		}
		defer func() { w.bug = nil }()
		v := deadLetters(t, live, func() {})
		if v.DLQ == 0 || v.DLQUnexplained == 0 {
			t.Fatalf("the dead-letter check did not fail: %+v", v)
		}
	})
	t.Run("a dead letter an injected fault explains", func(t *testing.T) {
		v := deadLetters(t, other, func() { w.sb.InjectFault(other.seller, sandbox.Fault{Kind: "500", Count: 1000}) })
		w.sb.InjectFault(other.seller, sandbox.Fault{Kind: "500", Count: 0})
		if v.DLQ == 0 || v.DLQUnexplained != 0 {
			t.Fatalf("want dead letters, all explained: %+v", v)
		}
	})
}

func mustExec(t *testing.T, tx pgx.Tx, sql string, args ...any) {
	t.Helper()
	if _, err := tx.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// An event stamped in the second access ended counts as stored after it
// unless Amazon served its order before the instant it ended.
func TestServedBeforeLoss(t *testing.T) {
	lost := time.Date(2026, 12, 2, 10, 0, 0, 700e6, time.UTC)
	sec := lost.Truncate(time.Second)
	for _, tc := range []struct {
		name   string
		at     time.Time
		served *time.Time
		want   bool
	}{
		{"same second, served before the instant", sec, ptr(sec.Add(300 * time.Millisecond)), true},
		{"same second, never served", sec, nil, false},
		{"same second, last served after the instant", sec, ptr(lost.Add(time.Second)), false},
		{"same second, served before the event", sec, ptr(sec.Add(-time.Second)), false},
		{"at the instant's second, stamped after it", lost.Add(time.Second).Truncate(time.Second), ptr(lost.Add(-time.Millisecond)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := &tenant{seller: "S1", front: &front{served: map[string]map[string]servedAt{}}}
			if tc.served != nil {
				tn.front.served["S1"] = map[string]servedAt{"o1": {sandbox: *tc.served}}
			}
			if got := servedBeforeLoss(tn, sandbox.Event{OrderID: "o1", At: tc.at}, lost); got != tc.want {
				t.Fatalf("servedBeforeLoss = %v, want %v", got, tc.want)
			}
		})
	}
}

func ptr(t time.Time) *time.Time { return &t }

// TestDrainWaitsForDelayedNotifications reproduces the short run's leftover
// (clean clone at d257994: "2 messages left in the poll queue", every data
// count 0): the settle cycles keep Amazon's delivery faults, so a
// notification published by the last settle cycle's activity and delayed
// by the sandbox reached the notifications queue after the drain had seen
// it empty and the containers had stopped. With every notification delayed
// longer than the drain's three empty looks, the tiny soak must still end
// with every queue empty.
func TestDrainWaitsForDelayedNotifications(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a small soak")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	set := tiny()
	set.PushFaults = sandbox.DeliveryFaults{DelayEvery: 1, Delay: 2500 * time.Millisecond}
	out := &syncBuffer{}
	w, err := newWorld(ctx, set, out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if err := w.connectAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.soak(ctx); err != nil {
		t.Fatal(err)
	}
	st := w.sb.NotificationStats()
	if st.Delayed == 0 {
		t.Fatalf("no notification was delayed: %+v", st)
	}
	// What a late notification would have become by the time it lands.
	time.Sleep(set.PushFaults.Delay + time.Second)
	v, err := w.checkInvariants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.QueueLeft != 0 {
		t.Log(string(out.Bytes()))
		t.Fatalf("%d messages left in the queues after the soak (notifications %+v)", v.QueueLeft, st)
	}
}

// TestCheckerReplies breaks the reply judge's inputs one way at a time:
// each break must fail the verdict through the check meant to see it.
func TestCheckerReplies(t *testing.T) {
	good := func() ([]replyRequest, []replyRow, []sesout.Sent) {
		reqs := []replyRequest{
			{tenant: "ta", ticket: "k1", alias: "b1@marketplace.amazon.fr", ids: []string{"c1", "c1"}, sameKey: true},
			{tenant: "tb", ticket: "k2", alias: "b2@marketplace.amazon.fr", ids: []string{"c2"}},
			{tenant: "tb", ticket: "k2", alias: "b2@marketplace.amazon.fr", ids: []string{"c3"}},
		}
		rows := []replyRow{
			{id: "c1", tenant: "ta", state: reply.StateAccepted, from: "a@in.test", to: "b1@marketplace.amazon.fr"},
			{id: "c2", tenant: "tb", state: reply.StateDelivered, from: "b@in.test", to: "b2@marketplace.amazon.fr"},
			{id: "c3", tenant: "tb", state: reply.StateFailed, reason: "SES refused the message", from: "b@in.test", to: "b2@marketplace.amazon.fr"},
		}
		mail := func(id, tenant, from, to string) sesout.Sent {
			return sesout.Sent{MessageID: "m-" + id, From: from, To: []string{to}, Tags: map[string]string{reply.TagReply: id, reply.TagTenant: tenant}}
		}
		mails := []sesout.Sent{mail("c1", "ta", "a@in.test", "b1@marketplace.amazon.fr"), mail("c2", "tb", "b@in.test", "b2@marketplace.amazon.fr")}
		return reqs, rows, mails
	}
	addrs := map[string]map[string]bool{"ta": {"a@in.test": true}, "tb": {"b@in.test": true}}
	aliases := map[string]string{"b1@marketplace.amazon.fr": "ta", "b2@marketplace.amazon.fr": "tb"}
	judge := func(reqs []replyRequest, rows []replyRow, mails []sesout.Sent) Invariants {
		var v Invariants
		judgeReplies(&v, reqs, rows, mails, addrs, aliases)
		return v
	}
	if v := judge(good()); !v.OK() || v.Replies.Requested != 3 || v.Replies.Sent != 2 || v.Replies.Failed != 1 || v.Replies.Mails != 2 {
		t.Fatalf("the unbroken replies do not pass: %+v %v", v.Replies, v.Problems)
	}
	for _, tc := range []struct {
		name  string
		brk   func(reqs []replyRequest, rows []replyRow, mails []sesout.Sent) ([]replyRequest, []replyRow, []sesout.Sent)
		check func(r ReplyInvariants) int
	}{
		{"a second mail accepted for one reply", func(q []replyRequest, r []replyRow, m []sesout.Sent) ([]replyRequest, []replyRow, []sesout.Sent) {
			return q, r, append(m, m[0])
		}, func(r ReplyInvariants) int { return r.Duplicated }},
		{"a mail of no reply", func(q []replyRequest, r []replyRow, m []sesout.Sent) ([]replyRequest, []replyRow, []sesout.Sent) {
			x := m[0]
			x.Tags = map[string]string{reply.TagReply: "c9", reply.TagTenant: "ta"}
			return q, r, append(m, x)
		}, func(r ReplyInvariants) int { return r.Duplicated }},
		{"a replayed key answering another reply", func(q []replyRequest, r []replyRow, m []sesout.Sent) ([]replyRequest, []replyRow, []sesout.Sent) {
			q[0].ids[1] = "c8"
			return q, r, m
		}, func(r ReplyInvariants) int { return r.Duplicated }},
		{"a reply left queued", func(q []replyRequest, r []replyRow, m []sesout.Sent) ([]replyRequest, []replyRow, []sesout.Sent) {
			r[2].state, r[2].reason = reply.StateQueued, ""
			return q, r, m
		}, func(r ReplyInvariants) int { return r.Lost }},
		{"a reply FAILED without a reason", func(q []replyRequest, r []replyRow, m []sesout.Sent) ([]replyRequest, []replyRow, []sesout.Sent) {
			r[2].reason = " "
			return q, r, m
		}, func(r ReplyInvariants) int { return r.Lost }},
		{"a reply SENT whose mail SES never accepted", func(q []replyRequest, r []replyRow, m []sesout.Sent) ([]replyRequest, []replyRow, []sesout.Sent) {
			return q, r, m[:1]
		}, func(r ReplyInvariants) int { return r.Lost }},
		{"a reply the API accepted and nothing recorded", func(q []replyRequest, r []replyRow, m []sesout.Sent) ([]replyRequest, []replyRow, []sesout.Sent) {
			return q, r[:2], m
		}, func(r ReplyInvariants) int { return r.Lost }},
		{"a mail from another tenant's address", func(q []replyRequest, r []replyRow, m []sesout.Sent) ([]replyRequest, []replyRow, []sesout.Sent) {
			m[1].From = "a@in.test"
			return q, r, m
		}, func(r ReplyInvariants) int { return r.WrongTenant }},
		{"a mail to another tenant's buyer", func(q []replyRequest, r []replyRow, m []sesout.Sent) ([]replyRequest, []replyRow, []sesout.Sent) {
			m[1].To = []string{"b1@marketplace.amazon.fr"}
			return q, r, m
		}, func(r ReplyInvariants) int { return r.WrongTenant }},
		{"a reply recorded under another tenant", func(q []replyRequest, r []replyRow, m []sesout.Sent) ([]replyRequest, []replyRow, []sesout.Sent) {
			r[0].tenant = "tb"
			return q, r, m
		}, func(r ReplyInvariants) int { return r.WrongTenant }},
	} {
		v := judge(tc.brk(good()))
		if v.OK() || tc.check(v.Replies) == 0 {
			t.Errorf("%s: the check did not fail: %+v", tc.name, v.Replies)
		}
	}
}

// TestCheckerReplyFates breaks the fate judge's inputs one way at a time:
// each break must fail the verdict through the check meant to see it.
func TestCheckerReplyFates(t *testing.T) {
	type input struct {
		rows    []replyRow
		mails   []sesout.Sent
		evs     []sesout.Event
		inbox   []sandbox.BuyerMail
		refused []sandbox.RefusedReply
	}
	good := func() input {
		mail := func(id, tenant string) sesout.Sent {
			return sesout.Sent{MessageID: "m-" + id, From: tenant + "@in.test", To: []string{"b-" + tenant + "@marketplace.amazon.fr"},
				Tags: map[string]string{reply.TagReply: id, reply.TagTenant: tenant}}
		}
		ev := func(id, typ, fault string) sesout.Event {
			n := 1
			if fault == "dropped" {
				n = 0
			}
			return sesout.Event{MessageID: "m-" + id, Type: typ, Fault: fault, Published: n}
		}
		got := func(id, seller string) sandbox.BuyerMail {
			return sandbox.BuyerMail{SellerID: seller, Alias: "b@marketplace.amazon.fr", MessageID: "m-" + id + "@eu-west-1.amazonses.com"}
		}
		return input{
			rows: []replyRow{
				{id: "d1", tenant: "ta", state: reply.StateDelivered},                                                     // delivered
				{id: "s1", tenant: "ta", state: reply.StateAccepted},                                                      // its Delivery lost
				{id: "f1", tenant: "tb", state: reply.StateFailed, reasonCode: "amazon_sender_not_approved", reason: "x"}, // refused
				{id: "f2", tenant: "ta", state: reply.StateFailed, reasonCode: "bounce_permanent_general", reason: "y"},   // bounced after its delivery
			},
			mails: []sesout.Sent{mail("d1", "ta"), mail("s1", "ta"), mail("f1", "tb"), mail("f2", "ta")},
			evs: []sesout.Event{
				ev("d1", sesmail.EventSend, ""), ev("d1", sesmail.EventDelivery, "duplicated"),
				ev("s1", sesmail.EventSend, ""), ev("s1", sesmail.EventDelivery, "dropped"),
				ev("f1", sesmail.EventSend, ""), ev("f1", sesmail.EventDelivery, "delayed"),
				ev("f2", sesmail.EventSend, ""), ev("f2", sesmail.EventBounce, "reordered"), ev("f2", sesmail.EventDelivery, ""),
			},
			inbox:   []sandbox.BuyerMail{got("d1", "sa"), got("s1", "sa"), got("f2", "sa")},
			refused: []sandbox.RefusedReply{{SellerID: "sb", Reason: "sender_not_approved", MessageID: "m-f1@eu-west-1.amazonses.com"}},
		}
	}
	sellers := map[string]string{"sa": "ta", "sb": "tb"}
	judge := func(in input) Invariants {
		var v Invariants
		judgeFates(&v, in.rows, in.mails, in.evs, in.inbox, in.refused, sellers)
		return v
	}
	if v := judge(good()); !v.OK() || v.Replies.Delivered != 1 || v.Replies.Refused != 1 || v.Replies.Bounced != 1 || v.Replies.DeliveryLost != 1 {
		t.Fatalf("the unbroken fates do not pass: %+v %v", v.Replies, v.Problems)
	}
	for _, tc := range []struct {
		name  string
		brk   func(in *input)
		check func(r ReplyInvariants) int
	}{
		{"a refused reply left DELIVERED", func(in *input) { in.rows[2].state, in.rows[2].reasonCode = reply.StateDelivered, "" },
			func(r ReplyInvariants) int { return r.WrongFate }},
		{"a refused reply FAILED for another reason", func(in *input) { in.rows[2].reasonCode = "amazon_buyer_opted_out" },
			func(r ReplyInvariants) int { return r.WrongReason }},
		{"a bounced reply left DELIVERED (the Bounce came first)", func(in *input) { in.rows[3].state, in.rows[3].reasonCode = reply.StateDelivered, "" },
			func(r ReplyInvariants) int { return r.WrongFate }},
		{"a reply DELIVERED whose Delivery was lost", func(in *input) { in.rows[1].state = reply.StateDelivered },
			func(r ReplyInvariants) int { return r.WrongFate }},
		{"a delivered reply left SENT", func(in *input) { in.rows[0].state = reply.StateAccepted },
			func(r ReplyInvariants) int { return r.WrongFate }},
		{"a buyer who got a reply twice", func(in *input) { in.inbox = append(in.inbox, in.inbox[0]) },
			func(r ReplyInvariants) int { return r.BuyerDuplicated }},
		{"a buyer's mail of no reply", func(in *input) {
			in.inbox = append(in.inbox, sandbox.BuyerMail{SellerID: "sa", MessageID: "m-zz@eu-west-1.amazonses.com"})
		}, func(r ReplyInvariants) int { return r.BuyerDuplicated }},
		{"a reply at another seller's buyer", func(in *input) { in.inbox[0].SellerID = "sb" },
			func(r ReplyInvariants) int { return r.WrongTenant }},
	} {
		in := good()
		tc.brk(&in)
		v := judge(in)
		if v.OK() || tc.check(v.Replies) == 0 {
			t.Errorf("%s: the check did not fail: %+v", tc.name, v.Replies)
		}
	}
}

// TestReplyDeadLetterTenant: a dead-lettered reply job is read as its
// tenant's, so the tracer can explain it.
func TestReplyDeadLetterTenant(t *testing.T) {
	for body, want := range map[string]string{
		`{"replyId":"r1","tenantId":"tenant-kill-00003"}`: "tenant-kill-00003",
		`{"tenantId":"t"}`: "",
		`not json`:         "",
	} {
		if got := replyJobTenant(body); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}

// TestCheckerAppliedOnce: a killed SES event must be recorded once after
// its redelivery, and no reply writes a status event twice.
func TestCheckerAppliedOnce(t *testing.T) {
	e := killedEvent{sesID: "m-1", eventType: sesmail.EventDelivery}
	tests := []struct {
		name   string
		killed map[killedEvent]int
		twice  map[string]int
		check  func(r ReplyInvariants) int
	}{
		{"applied once", map[killedEvent]int{e: 1}, nil, nil},
		{"never applied after the kill", map[killedEvent]int{e: 0}, nil, func(r ReplyInvariants) int { return r.EventsUnapplied }},
		{"applied twice", map[killedEvent]int{e: 2}, nil, func(r ReplyInvariants) int { return r.EventsUnapplied }},
		{"a status event written twice", map[killedEvent]int{e: 1}, map[string]int{"r1 OUTBOUND_SENT": 2}, func(r ReplyInvariants) int { return r.TicketEventsTwice }},
	}
	for _, tc := range tests {
		var v Invariants
		judgeAppliedOnce(&v, tc.killed, tc.twice)
		if tc.check == nil {
			if !v.OK() {
				t.Errorf("%s: fails: %v", tc.name, v.Problems)
			}
			continue
		}
		if v.OK() || tc.check(v.Replies) == 0 {
			t.Errorf("%s: the check did not fail: %+v", tc.name, v.Replies)
		}
	}
}

// TestBudgetAfter429: a delivery failing on a getOrder budget is explained
// by a 429 of the same tenant whose back-off ends at (or within a minute
// of) the budget's end, and by nothing else.
func TestBudgetAfter429(t *testing.T) {
	w := &world{ch: &channels{throttled: map[string]bool{"t1\x002026-11-20T15:08:04Z": true}}}
	for _, tc := range []struct {
		tenant, err string
		want        bool
	}{
		{"t1", "notification failed; SQS will deliver it again: rate budget empty until 2026-11-20T15:08:04Z", true},
		{"t1", "notification failed; SQS will deliver it again: rate budget empty until 2026-11-20T15:07:58Z", true},
		{"t1", "notification failed; SQS will deliver it again: rate budget empty until 2026-11-20T15:10:00Z", false},
		{"t2", "notification failed; SQS will deliver it again: rate budget empty until 2026-11-20T15:08:04Z", false},
		{"t1", "notification failed: connection refused", false},
	} {
		if got := w.budgetAfter429(tc.tenant, []string{tc.err}); got != tc.want {
			t.Errorf("%s %q: %v, want %v", tc.tenant, tc.err, got, tc.want)
		}
	}
}
