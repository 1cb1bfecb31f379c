package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

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
