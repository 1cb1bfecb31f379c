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

	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/relaymail"
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
	f.flow = inboundmail.New(inboundmail.Config{Domain: domain, MaxBytes: 1 << 20}, f.store, f.objects,
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
		if _, err := f.flow.HandleSQS(context.Background(), ev); err != nil {
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
