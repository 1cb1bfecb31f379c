package inboundmail_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/relaymail"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

// BenchmarkHandleSQS: relay mails through the handler (SNS envelope, SES
// notification, address lookup, S3 read, MIME parse, understanding,
// attachments, ingestion) with in-memory store and bucket, batches of 10:
// the parse figures of docs/inbound-mail.md, without the database.
func BenchmarkHandleSQS(b *testing.B) {
	files, _ := filepath.Glob("../../testdata/mail/*.eml")
	var relay [][]byte
	for _, f := range files {
		if strings.Contains(f, "hostile") {
			continue
		}
		raw, _ := os.ReadFile(f)
		relay = append(relay, raw)
	}
	f := newFixture(&testing.T{})
	f.flow = inboundmail.New(f.store, f.objects, domain, inboundmail.WithMaxBytes(1<<20),
		inboundmail.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	bodies := make([]string, 0, 1000)
	for i := 0; i < 1000; i++ {
		bodies = append(bodies, f.deliverB(fmt.Sprintf("ses-%d", i), relay[i%len(relay)]))
	}
	b.ResetTimer()
	start := time.Now()
	mails := 0
	for i := 0; i < b.N; i++ {
		ev := events.SQSEvent{}
		for j := 0; j < 10; j++ {
			k := (i*10 + j) % len(bodies)
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(k), Body: bodies[k]})
		}
		if _, err := sqsbatch.Handler(f.flow)(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
		mails += 10
	}
	b.ReportMetric(float64(mails)/time.Since(start).Seconds(), "mails/s")
}

// BenchmarkParseUnderstand: MIME parse and understanding alone, over the corpus.
func BenchmarkParseUnderstand(b *testing.B) {
	files, _ := filepath.Glob("../../testdata/mail/*.eml")
	var raws [][]byte
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		raws = append(raws, raw)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		m, err := relaymail.Parse(raws[i%len(raws)], relaymail.Limits{})
		if err == nil {
			_, _ = relaymail.Understand(m)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "mails/s")
}

// BenchmarkHandleSQSPostgres: the same through the real database of the
// test stack (the one ingestion path, outcome, attachments, address), the
// bucket in memory; every mail a new ticket message.
func BenchmarkHandleSQSPostgres(b *testing.B) {
	files, _ := filepath.Glob("../../testdata/mail/*.eml")
	var relay [][]byte
	for _, f := range files {
		if !strings.Contains(f, "hostile") && !strings.Contains(f, "no-message-id") {
			raw, _ := os.ReadFile(f)
			relay = append(relay, raw)
		}
	}
	pool, _ := testenv.Pool(b)
	store := postgres.New(pool)
	ctx := context.Background()
	tenant := testenv.ID("tenant")
	var conn string
	if err := pool.QueryRow(ctx, `SELECT keybuzz_dev.connection($1, 'CONNECTED', 'EU', 'A13V1IB3VIYZZH')`, tenant).Scan(&conn); err != nil {
		b.Fatal(err)
	}
	addrs, err := mailaddress.NewAddresses(store, domain).Provision(ctx, tenant, []string{"A13V1IB3VIYZZH"})
	if err != nil {
		b.Fatal(err)
	}
	objects := &fakeObjects{objects: map[string][]byte{}}
	flow := inboundmail.New(store, objects, domain, inboundmail.WithMaxBytes(1<<20),
		inboundmail.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	f := &fixture{objects: objects}
	// Each mail gets its own Message-ID, so each is a new message.
	body := func(i int) string {
		raw := relay[i%len(relay)]
		raw = []byte(strings.Replace(string(raw), "Message-ID: <", fmt.Sprintf("Message-ID: <b%d-", i), 1))
		return f.deliverTo(fmt.Sprintf("ses-%d", i), raw, addrs[0].EmailAddress)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ev := events.SQSEvent{}
		for j := 0; j < 10; j++ {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(i*10 + j), Body: body(i*10 + j)})
		}
		b.StartTimer()
		resp, err := sqsbatch.Handler(flow)(ctx, ev)
		if err != nil || len(resp.BatchItemFailures) > 0 {
			b.Fatal(err, resp.BatchItemFailures)
		}
	}
	b.ReportMetric(float64(b.N*10)/time.Since(start).Seconds(), "mails/s")
}
