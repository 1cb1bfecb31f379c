package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// TestIngestWritesKeyBuzzShape: whatever the channel, a new thread is one
// KeyBuzz Ticket (channel AMAZON, status OPEN, priority NORMAL, the order id
// as externalId) and each event one ExternalMessage and one TicketMessage
// (senderType CUSTOMER, source MARKETPLACE); an event a second channel brings
// again is stored once; a mail about the order joins the order's ticket; a
// mail about no order opens a ticket of its buyer alias.
func TestIngestWritesKeyBuzzShape(t *testing.T) {
	t.Parallel()
	store, pool, clock, id, tenant := oneConnection(t)
	ctx := context.Background()
	order := marketplace.InboundMessage{
		ExternalID: "402-7:1:cancellation", ThreadKey: "402-7", OrderID: "402-7", MarketplaceID: "A13V1IB3VIYZZH",
		BuyerEmail: "x7@marketplace.amazon.fr", Language: "fr", Subject: "Cancellation request - order 402-7",
		Body: "cancel please", ReceivedAt: clock.Now(), Raw: []byte(`{"orderId":"402-7"}`),
	}
	mail := marketplace.InboundMessage{
		ExternalID: "<m1@amazon.fr>", ThreadKey: "402-7", OrderID: "402-7", BuyerName: "Camille",
		BuyerEmail: "x7@marketplace.amazon.fr", Language: "fr", Subject: "Re: commande 402-7", Body: "où est-elle ?",
		ReceivedAt: clock.Now().Add(time.Minute),
	}
	lone := marketplace.InboundMessage{
		ExternalID: "<m2@amazon.fr>", ThreadKey: "y9@marketplace.amazon.fr", BuyerEmail: "y9@marketplace.amazon.fr",
		Language: "fr", Body: "une question", ReceivedAt: clock.Now(),
	}
	steps := []struct {
		name                  string
		msgs                  []marketplace.InboundMessage
		wantMsgs, wantTickets int
	}{
		{"order event", []marketplace.InboundMessage{order}, 1, 1},
		{"same event by another channel", []marketplace.InboundMessage{order}, 0, 0},
		{"mail about the order", []marketplace.InboundMessage{mail}, 1, 0},
		{"mail about no order", []marketplace.InboundMessage{lone, lone}, 1, 1},
	}
	for _, s := range steps {
		res, err := testenv.IngestEvents(ctx, store, tenant, id, s.msgs)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if res.MessagesCreated != s.wantMsgs || res.TicketsCreated != s.wantTickets ||
			len(res.ExternalMessageIDs) != s.wantMsgs || len(res.TicketIDs) != s.wantTickets {
			t.Fatalf("%s: %+v, want %d messages %d tickets (and their ids)", s.name, res, s.wantMsgs, s.wantTickets)
		}
		for _, id := range res.ExternalMessageIDs { // the ids are KeyBuzz's rows, in Prisma's cuid shape
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM public."ExternalMessage" WHERE "id" = $1 AND "id" ~ '^c[0-9a-z]{24}$'`, id).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%s: created ExternalMessage %q: %d rows, %v", s.name, id, n, err)
			}
		}
	}
	rows, err := pool.Query(ctx, `
SELECT t."externalId", t."customerName", COALESCE(t."customerEmail", ''), t."channel"::text, t."status"::text, t."priority"::text, t."subject",
       count(tm."id"), string_agg(DISTINCT tm."senderType"::text || '/' || tm."source"::text || '/' || tm."isInternal"::text, ',')
FROM public."Ticket" t JOIN public."TicketMessage" tm ON tm."ticketId" = t."id"
WHERE t."tenantId" = $1 GROUP BY t."id" ORDER BY t."externalId"`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var ext, name, email, channel, status, priority, subject, kinds string
		var n int
		if err := rows.Scan(&ext, &name, &email, &channel, &status, &priority, &subject, &n, &kinds); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s|%d|%s", ext, name, email, channel, status, priority, subject, n, kinds))
	}
	want := []string{
		"402-7|Amazon Buyer|x7@marketplace.amazon.fr|AMAZON|OPEN|NORMAL|Cancellation request - order 402-7|2|CUSTOMER/MARKETPLACE/false",
		"y9@marketplace.amazon.fr|Amazon Buyer|y9@marketplace.amazon.fr|AMAZON|OPEN|NORMAL|une question|1|CUSTOMER/MARKETPLACE/false",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tickets:\n got %q\nwant %q", got, want)
	}
	var raw, lang, senderName string
	if err := pool.QueryRow(ctx, `SELECT e."raw"::text, COALESCE(e."language", ''), tm."senderName" FROM public."ExternalMessage" e
		JOIN keybuzz_amazon."Message" m ON m."externalMessageId" = e."id"
		JOIN public."TicketMessage" tm ON tm."id" = m."ticketMessageId" WHERE e."externalId" = '<m1@amazon.fr>'`).Scan(&raw, &lang, &senderName); err != nil {
		t.Fatal(err)
	}
	if raw != "{}" || lang != "fr" || senderName != "Camille" {
		t.Fatalf("mail stored with raw %s, language %q, sender %q", raw, lang, senderName)
	}
}

// TestIngestConcurrentThreadOneTicket: batches that open the same thread at
// the same time end with one ticket, every message on it.
func TestIngestConcurrentThreadOneTicket(t *testing.T) {
	t.Parallel()
	store, pool, clock, id, tenant := oneConnection(t)
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := testenv.IngestEvents(ctx, store, tenant, id, []marketplace.InboundMessage{{
				ExternalID: fmt.Sprintf("<m%d@amazon.fr>", i), ThreadKey: "402-9", OrderID: "402-9",
				Body: "b", ReceivedAt: clock.Now(),
			}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var tickets, onIt int
	pool.QueryRow(ctx, `SELECT count(*) FROM public."Ticket" WHERE "tenantId" = $1`, tenant).Scan(&tickets)
	pool.QueryRow(ctx, `SELECT count(*) FROM public."TicketMessage" tm JOIN keybuzz_amazon."TicketThread" th ON th."ticketId" = tm."ticketId" WHERE th."threadKey" = '402-9'`).Scan(&onIt)
	if tickets != 1 || onIt != n {
		t.Fatalf("%d tickets, %d messages on the thread's ticket; want 1 and %d", tickets, onIt, n)
	}
}

// TestIngestPageFence: a page stores its messages and the sync position
// only while its poller holds the lease. A poller whose lease another took
// gets ErrLeaseLost and writes nothing (no message, no ticket, no sync
// position, no lastSyncAt); the holder's pages move the position, heartbeat
// the lease, count pages and events, and the window's last page sets the
// cursor and lastSyncAt; an empty last page still saves the position.
func TestIngestPageFence(t *testing.T) {
	t.Parallel()
	store, pool, clock, id, tenant := oneConnection(t)
	ctx := context.Background()
	if st, err := store.AcquirePoll(ctx, tenant, id, "old", time.Minute); err != nil || !st.Leased {
		t.Fatal(st, err)
	}
	clock.Advance(2 * time.Minute) // the old lease expired: another poller takes it
	if st, err := store.AcquirePoll(ctx, tenant, id, "new", time.Minute); err != nil || !st.Leased {
		t.Fatal(st, err)
	}
	msg := func(order string) marketplace.InboundMessage {
		return marketplace.InboundMessage{ExternalID: order + ":1:cancellation", ThreadKey: order, OrderID: order,
			Subject: "s", Body: "b", ReceivedAt: clock.Now(), Raw: []byte(`{"orderId":"` + order + `"}`)}
	}
	type state struct {
		messages, tickets, pages, events int
		token                            *string
		cursor, leaseUntil, lastSyncAt   *time.Time
	}
	read := func() state {
		t.Helper()
		var s state
		if err := pool.QueryRow(ctx, `
SELECT (SELECT count(*) FROM public."ExternalMessage" WHERE "connectionId" = $1), (SELECT count(*) FROM public."Ticket" WHERE "tenantId" = $2),
       st."pageCount", st."eventCount", st."paginationToken", st."cursorAt", st."leaseUntil", c."lastSyncAt" AT TIME ZONE 'UTC'
FROM keybuzz_amazon."SyncState" st JOIN public."MarketplaceConnection" c ON c."id" = st."connectionId" WHERE st."connectionId" = $1`, id, tenant).
			Scan(&s.messages, &s.tickets, &s.pages, &s.events, &s.token, &s.cursor, &s.leaseUntil, &s.lastSyncAt); err != nil {
			t.Fatal(err)
		}
		return s
	}
	show := func(s state) string {
		str := func(p any) string {
			switch v := p.(type) {
			case *string:
				if v != nil {
					return *v
				}
			case *time.Time:
				if v != nil {
					return v.UTC().String()
				}
			}
			return "NULL"
		}
		return fmt.Sprintf("messages=%d tickets=%d pages=%d events=%d token=%s cursor=%s leaseUntil=%s lastSyncAt=%s",
			s.messages, s.tickets, s.pages, s.events, str(s.token), str(s.cursor), str(s.leaseUntil), str(s.lastSyncAt))
	}
	before := read()
	end := clock.Now()
	_, err := store.IngestPage(ctx, marketplace.InboundPage{ConnectionID: id, TenantID: tenant, LeaseOwner: "old", LeaseFor: time.Hour,
		Messages: []marketplace.InboundMessage{msg("o1"), msg("o2")}, Cursor: &end})
	if !errors.Is(err, marketplace.ErrLeaseLost) {
		t.Fatalf("old owner's page: %v, want ErrLeaseLost", err)
	}
	if after := read(); show(after) != show(before) {
		t.Fatalf("old owner's page wrote: %s, before %s", show(after), show(before))
	}

	res, err := store.IngestPage(ctx, marketplace.InboundPage{ConnectionID: id, TenantID: tenant, LeaseOwner: "new", LeaseFor: time.Hour,
		Messages: []marketplace.InboundMessage{msg("o1"), msg("o2")}, NextToken: "tok-2", WindowStart: t0, MarketplaceIDs: []string{"A13V1IB3VIYZZH"}})
	if err != nil || res.MessagesCreated != 2 || res.TicketsCreated != 2 {
		t.Fatalf("holder's first page: %+v %v", res, err)
	}
	s := read()
	if s.messages != 2 || s.tickets != 2 || s.pages != before.pages+1 || s.events != before.events+2 || s.token == nil || *s.token != "tok-2" ||
		s.lastSyncAt != nil || s.leaseUntil == nil || !s.leaseUntil.Equal(clock.Now().Add(time.Hour)) {
		t.Fatalf("after the holder's first page: %s", show(s))
	}

	clock.Advance(time.Second)
	end = clock.Now()
	if res, err := store.IngestPage(ctx, marketplace.InboundPage{ConnectionID: id, TenantID: tenant, LeaseOwner: "new", Cursor: &end}); err != nil || res.MessagesCreated != 0 || res.TicketsCreated != 0 || len(res.ExternalMessageIDs) != 0 {
		t.Fatalf("holder's empty last page: %+v %v", res, err)
	}
	s = read()
	if s.pages != before.pages+2 || s.events != before.events+2 || s.token != nil || s.cursor == nil || !s.cursor.Equal(end) ||
		s.lastSyncAt == nil || !s.lastSyncAt.Equal(end) {
		t.Fatalf("after the holder's last page: %s", show(s))
	}
}

// Text from outside that PostgreSQL's text and jsonb refuse (a NUL, bytes
// that are not UTF-8, JSON's \u0000) is stored with U+FFFD in their place:
// a hostile mail is recorded (MALFORMED) and a message with such bytes is
// stored, never failed back to SQS until the DLQ.
func TestTextPostgreSQLRefusesIsStored(t *testing.T) {
	t.Parallel()
	store, pool, clock, id, tenant := oneConnection(t)
	ctx := context.Background()
	bad := "a\x00b\xffc"
	// A refusal to a known address also leaves its reason on the address.
	if err := store.EnsureInboundAddresses(ctx, tenant, []marketplace.InboundAddress{{TenantID: tenant, Country: "FR", MarketplaceID: "A13V1IB3VIYZZH",
		Token: "nulnulnulnulnul1", EmailAddress: "amazon.nul.fr.nulnulnulnulnul1@inbound.test"}}); err != nil {
		t.Fatal(err)
	}
	addr, err := store.InboundAddressByEmail(ctx, "amazon.nul.fr.nulnulnulnulnul1@inbound.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.RecordMail(ctx, marketplace.ReceivedMail{SESMessageID: "ses-nul-1", Recipient: addr.EmailAddress, From: bad, Subject: bad,
		TenantID: tenant, ConnectionID: id, AddressID: addr.ID,
		Decision: "parse: malformed MIME header line: " + bad, Outcome: marketplace.MailMalformed, ReceivedAt: clock.Now()}); err != nil {
		t.Fatalf("record a malformed mail with a NUL: %v", err)
	}
	res, err := testenv.IngestEvents(ctx, store, tenant, id, []marketplace.InboundMessage{{ExternalID: "<nul@x>", ThreadKey: "402-8", OrderID: "402-8",
		BuyerName: bad, Subject: bad, Body: bad, ReceivedAt: clock.Now(), Raw: []byte(`{"subject":"a\u0000b"}`)}})
	if err != nil || res.MessagesCreated != 1 {
		t.Fatalf("ingest a message with a NUL: %+v %v", res, err)
	}
	var decision, body string
	if err := pool.QueryRow(ctx, `SELECT "decision", (SELECT tm."body" FROM public."ExternalMessage" e JOIN keybuzz_amazon."Message" m ON m."externalMessageId" = e."id"
		JOIN public."TicketMessage" tm ON tm."id" = m."ticketMessageId" WHERE e."externalId" = '<nul@x>')
	FROM keybuzz_amazon."InboundMail" WHERE "sesMessageId" = 'ses-nul-1'`).
		Scan(&decision, &body); err != nil {
		t.Fatal(err)
	}
	if want := "a\uFFFDb\uFFFDc"; body != want || decision != "parse: malformed MIME header line: "+want {
		t.Errorf("stored %q and %q", body, decision)
	}
}

// TestIngestMailOutcomes: IngestMail stores a mail's message, attachments,
// outcome and the address's last reception in one round trip and one
// transaction; a redelivery keeps the first outcome and adds nothing; the
// same mail under another SES message is DUPLICATE without attachments; a
// failing record stores nothing at all (the message neither); RecordMail
// keeps a refusal's reason on the address, once.
func TestIngestMailOutcomes(t *testing.T) {
	t.Parallel()
	store, pool, clock, conn, tenant := oneConnection(t)
	ctx := context.Background()
	email := fmt.Sprintf("amazon.%s.fr.tok@inbound.test", tenant)
	if err := store.EnsureInboundAddresses(ctx, tenant, []marketplace.InboundAddress{{Country: "FR", Token: "tok", EmailAddress: email}}); err != nil {
		t.Fatal(err)
	}
	addr, err := store.InboundAddressByEmail(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	// A thread an order event opened: its ticket knows no buyer name.
	if _, err := testenv.IngestEvents(ctx, store, tenant, conn, []marketplace.InboundMessage{{ExternalID: "171-1:cancel", ThreadKey: "171-1", OrderID: "171-1", Body: "cancel", ReceivedAt: clock.Now()}}); err != nil {
		t.Fatal(err)
	}
	att := marketplace.MailAttachment{ObjectKey: "attachments/" + tenant + "/ses-1/2-colis.png", Filename: "colis.png", ContentType: "image/png", Size: 3, SHA256: "abc"}
	mail := func(ses, rcpt, msgID string, at time.Time) (marketplace.ReceivedMail, marketplace.InboundMessage) {
		return marketplace.ReceivedMail{SESMessageID: ses, Recipient: rcpt, Bucket: "b", ObjectKey: "raw/" + ses, Size: 10,
				TenantID: tenant, ConnectionID: conn, AddressID: addr.ID, MessageID: msgID, From: "x@marketplace.amazon.fr",
				OrderID: "171-1", Kind: "BUYER_MESSAGE", Verdicts: marketplace.MailVerdicts{SPF: "PASS", DKIM: "PASS", DMARC: "PASS"}, ReceivedAt: at},
			marketplace.InboundMessage{ExternalID: msgID, ThreadKey: "171-1", OrderID: "171-1", BuyerName: "Camille", Body: "où ?", ReceivedAt: at}
	}
	steps := []struct {
		name, ses, rcpt, msgID string
		atts                   []marketplace.MailAttachment
		badTime, wantErr       bool
		want                   marketplace.MailResult // TicketID checked apart
		wantMessages, wantAtts int
		wantOutcomes           string
	}{
		{name: "new mail", ses: "ses-1", rcpt: email, msgID: "m1@amazon.fr", atts: []marketplace.MailAttachment{att},
			want: marketplace.MailResult{Outcome: marketplace.MailTicketed, MessageCreated: true}, wantMessages: 2, wantAtts: 1, wantOutcomes: "ses-1:TICKETED"},
		{name: "redelivery", ses: "ses-1", rcpt: email, msgID: "m1@amazon.fr", atts: []marketplace.MailAttachment{att},
			want: marketplace.MailResult{Outcome: marketplace.MailTicketed}, wantMessages: 2, wantAtts: 1, wantOutcomes: "ses-1:TICKETED"},
		{name: "same mail, another SES message", ses: "ses-2", rcpt: email, msgID: "m1@amazon.fr", atts: []marketplace.MailAttachment{att},
			want: marketplace.MailResult{Outcome: marketplace.MailDuplicate}, wantMessages: 2, wantAtts: 1, wantOutcomes: "ses-1:TICKETED ses-2:DUPLICATE"},
		// A reception time beyond timestamptz's range fails the record,
		// after the message's statement, which must not have stored it.
		{name: "failing record", ses: "ses-3", rcpt: email, msgID: "m3@amazon.fr", badTime: true, wantErr: true,
			wantMessages: 2, wantAtts: 1, wantOutcomes: "ses-1:TICKETED ses-2:DUPLICATE"},
		{name: "next mail", ses: "ses-4", rcpt: email, msgID: "m4@amazon.fr",
			want: marketplace.MailResult{Outcome: marketplace.MailTicketed, MessageCreated: true}, wantMessages: 3, wantAtts: 1, wantOutcomes: "ses-1:TICKETED ses-2:DUPLICATE ses-4:TICKETED"},
	}
	var ticket string
	for i, s := range steps {
		at := clock.Now().Add(time.Duration(i) * time.Minute)
		rec, msg := mail(s.ses, s.rcpt, s.msgID, at)
		if s.badTime {
			rec.ReceivedAt = time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		res, err := store.IngestMail(ctx, rec, msg, s.atts)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: err %v, want error %v", s.name, err, s.wantErr)
		}
		if err != nil {
			t.Logf("%s: %v", s.name, err)
		} else {
			if ticket == "" {
				ticket = res.TicketID
			}
			if res.TicketID == "" || res.TicketID != ticket {
				t.Errorf("%s: ticket %q, want the order's %q", s.name, res.TicketID, ticket)
			}
			res.TicketID = ""
			if res != s.want {
				t.Errorf("%s: %+v, want %+v", s.name, res, s.want)
			}
		}
		var msgs, atts int
		var outcomes string
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM public."ExternalMessage" WHERE "connectionId" = $1),
    (SELECT count(*) FROM keybuzz_amazon."InboundMailAttachment" WHERE "tenantId" = $2),
    (SELECT COALESCE(string_agg("sesMessageId" || ':' || "outcome", ' ' ORDER BY "sesMessageId"), '') FROM keybuzz_amazon."InboundMail" WHERE "tenantId" = $2)`,
			conn, tenant).Scan(&msgs, &atts, &outcomes); err != nil {
			t.Fatal(err)
		}
		if msgs != s.wantMessages || atts != s.wantAtts || outcomes != s.wantOutcomes {
			t.Errorf("%s: %d messages, %d attachments, outcomes %q; want %d, %d, %q", s.name, msgs, atts, outcomes, s.wantMessages, s.wantAtts, s.wantOutcomes)
		}
	}
	var name, status, lastMsg string
	var last time.Time
	if err := pool.QueryRow(ctx, `SELECT t."customerName", a."pipelineStatus"::text, a."lastInboundAt", a."lastInboundMessageId"
FROM public."Ticket" t, public."inbound_addresses" a WHERE t."id" = $1 AND a."id" = $2`, ticket, addr.ID).Scan(&name, &status, &last, &lastMsg); err != nil {
		t.Fatal(err)
	}
	if wantAt := clock.Now().Add(4 * time.Minute).UTC().Truncate(time.Millisecond); name != "Camille" || status != "VALIDATED" || !last.Equal(wantAt) || lastMsg != "m4@amazon.fr" {
		t.Errorf("ticket's buyer %q, address %s last %s %q; want Camille, VALIDATED, %s m4@amazon.fr", name, status, last, lastMsg, wantAt)
	}

	// A refusal: its outcome once, its reason on the address.
	refused := marketplace.ReceivedMail{SESMessageID: "ses-5", Recipient: email, TenantID: tenant, ConnectionID: conn, AddressID: addr.ID,
		Outcome: marketplace.MailSpoofed, Decision: "dmarcVerdict=FAIL", ReceivedAt: clock.Now()}
	for _, r := range []marketplace.ReceivedMail{refused, {SESMessageID: "ses-5", Recipient: email, TenantID: tenant, AddressID: addr.ID,
		Outcome: marketplace.MailQuarantined, Decision: "spamVerdict=FAIL", ReceivedAt: clock.Now()}} {
		if err := store.RecordMail(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Unknown recipients have no address.
	if err := store.RecordMail(ctx, marketplace.ReceivedMail{SESMessageID: "ses-6", Recipient: "nobody@inbound.test", Outcome: marketplace.MailUnknownRecipient, ReceivedAt: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	var lastErr, outcome string
	if err := pool.QueryRow(ctx, `SELECT COALESCE(a."lastError", ''), m."outcome" FROM public."inbound_addresses" a, keybuzz_amazon."InboundMail" m
WHERE a."id" = $1 AND m."sesMessageId" = 'ses-5'`, addr.ID).Scan(&lastErr, &outcome); err != nil {
		t.Fatal(err)
	}
	if lastErr != "SPOOFED: dmarcVerdict=FAIL" || outcome != "SPOOFED" {
		t.Errorf("after a refusal and its redelivery: lastError %q, outcome %s; want the first's", lastErr, outcome)
	}
	var unknown int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM keybuzz_amazon."InboundMail" WHERE "sesMessageId" = 'ses-6' AND "outcome" = 'UNKNOWN_RECIPIENT' AND "addressId" IS NULL`).Scan(&unknown); err != nil || unknown != 1 {
		t.Errorf("unknown recipient recorded %d times (%v), want once", unknown, err)
	}
}
