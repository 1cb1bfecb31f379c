package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

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
	store, pool, clock := newStore(t)
	ctx := context.Background()
	id := addConnections(t, pool, 1)[0]
	tenant := tenantOf(t, pool, id)
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
		res, err := store.Ingest(ctx, tenant, id, s.msgs)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if res.MessagesCreated != s.wantMsgs || res.TicketsCreated != s.wantTickets {
			t.Fatalf("%s: %+v, want %d messages %d tickets", s.name, res, s.wantMsgs, s.wantTickets)
		}
	}
	rows, err := pool.Query(ctx, `
SELECT t."externalId", t."customerName", COALESCE(t."customerEmail", ''), t."channel"::text, t."status"::text, t."priority"::text, t."subject",
       count(tm."id"), string_agg(DISTINCT tm."senderType"::text || '/' || tm."source"::text || '/' || tm."isInternal"::text, ',')
FROM "Ticket" t JOIN "TicketMessage" tm ON tm."ticketId" = t."id"
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
	if err := pool.QueryRow(ctx, `SELECT e."raw"::text, COALESCE(e."language", ''), tm."senderName" FROM "ExternalMessage" e
		JOIN "TicketMessage" tm ON tm."id" = e."ticketMessageId" WHERE e."externalId" = '<m1@amazon.fr>'`).Scan(&raw, &lang, &senderName); err != nil {
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
	store, pool, clock := newStore(t)
	ctx := context.Background()
	id := addConnections(t, pool, 1)[0]
	tenant := tenantOf(t, pool, id)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := store.Ingest(ctx, tenant, id, []marketplace.InboundMessage{{
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
	pool.QueryRow(ctx, `SELECT count(*) FROM "Ticket" WHERE "tenantId" = $1`, tenant).Scan(&tickets)
	pool.QueryRow(ctx, `SELECT count(*) FROM "TicketMessage" tm JOIN "TicketThread" th ON th."ticketId" = tm."ticketId" WHERE th."threadKey" = '402-9'`).Scan(&onIt)
	if tickets != 1 || onIt != n {
		t.Fatalf("%d tickets, %d messages on the thread's ticket; want 1 and %d", tickets, onIt, n)
	}
}
