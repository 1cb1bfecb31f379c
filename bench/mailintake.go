package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

// mailWarmUp is how many mails each side handles before it is timed.
const mailWarmUp = 10

// benchMail measures the mail intake's throughput. sc.Mails relay mails
// (each about an order of its own) are composed by the sandbox and relayed
// by SMTP to dev/smtpses, which stores them in S3 and notifies through SNS
// to a queue; the records are received from the queue as the event source
// mapping would hand them over (and kept: nothing is deleted). Then, on
// the same records, in batches of the template's BatchSize, one invocation
// at a time: the bare baseline (the record's notification decoded, S3
// GetObject of the raw mail, one INSERT of it) and the real intake
// (sqsbatch.Handler(inboundmail.Flow) as functions/inboundmail wires it), each in a
// database of its own, with pools of boot.LambdaMaxConns as in Lambda; the
// baseline handles a batch's records with as many at once as the real flow
// was measured to during its warm-up. Statements sent in one pipelined
// batch count one each (sqlTrace's BatchTracer).
func benchMail(ctx context.Context, e *env) (section, error) {
	sec := section{Title: "Mail intake (SES's S3 + SNS to ticket)"}
	sc := e.sc
	total := sc.Mails + 2*mailWarmUp
	mapping, err := templateMapping("InboundMailFunction")
	if err != nil {
		return sec, err
	}
	mail, err := e.newMailRig(ctx, "mailintake", 3600)
	if err != nil {
		return sec, err
	}
	rig, err := e.newSandboxRig(ctx, 1, nil, false, func(c *sandbox.Config) { c.RelaySMTP = mail.smtp.Addr() })
	if err != nil {
		return sec, err
	}
	trace := newSQLTrace()
	store, _, err := e.freshStore(ctx, "mailintake", boot.LambdaMaxConns, nil, trace)
	if err != nil {
		return sec, err
	}
	tenant, _, seller, err := rig.connect(ctx, e, store, 0, "mail-intake", time.Now().UTC())
	if err != nil {
		return sec, err
	}
	addr, err := mail.provision(ctx, store, tenant, seller.MarketplaceIDs[0])
	if err != nil {
		return sec, err
	}
	rig.sb.SetForwarding(seller.ID, addr.EmailAddress)

	// The mails, relayed by SMTP 4 at a time (setup, not timed).
	t0 := time.Now()
	if err := relayMails(rig.sb, seller, total); err != nil {
		return sec, err
	}
	records, err := receiveAll(ctx, e.sqs, mail.queueURL, total)
	if err != nil {
		return sec, err
	}
	e.logf("mail: %d mails relayed over SMTP and received from the queue in %s", len(records), time.Since(t0).Round(time.Millisecond))
	warmBase, warmReal, timed := records[:mailWarmUp], records[mailWarmUp:2*mailWarmUp], records[2*mailWarmUp:]

	// The real intake, as functions/inboundmail wires it.
	secrets := credcache.New(rig.secrets)
	orders := sellerapi.New(secrets, lwa.New(rig.url+"/auth/o2/token"), spapi.New(), store, sellerapi.WithEndpoint(rig.url), sellerapi.WithLogger(e.quiet))
	var objects *countingObjects
	var inFlight *recordsInFlight
	inFlight = &recordsInFlight{}
	flow := mail.flow(e, store, orders, &mailWrap{
		objects: func(o inboundmail.Objects) inboundmail.Objects {
			objects = &countingObjects{Objects: o, inFlight: inFlight}
			return objects
		},
		store: func(s inboundmail.Store) inboundmail.Store { inFlight.Store = s; return inFlight },
	})
	realSide := func(ctx context.Context, ev events.SQSEvent) error {
		resp, err := sqsbatch.Handler(flow)(ctx, ev)
		if err == nil && len(resp.BatchItemFailures) > 0 {
			err = fmt.Errorf("%d records failed", len(resp.BatchItemFailures))
		}
		return err
	}

	// The bare baseline, in a database of its own.
	baseTrace := newSQLTrace()
	u, err := e.freshDB(ctx, "mailbare")
	if err != nil {
		return sec, err
	}
	basePool, err := openTracedPool(ctx, u, boot.LambdaMaxConns, baseTrace)
	if err != nil {
		return sec, err
	}
	e.cleanup = append(e.cleanup, basePool.Close)
	if _, err := basePool.Exec(ctx, `CREATE TABLE "BenchMail" ("sesMessageId" text PRIMARY KEY, "objectKey" text NOT NULL, "raw" bytea NOT NULL)`); err != nil {
		return sec, err
	}
	var baseGet time.Duration
	var baseGets atomic.Int64
	var mu sync.Mutex
	parallel := 1
	bareSide := func(ctx context.Context, ev events.SQSEvent) error {
		return eachRecord(ctx, ev, parallel, func(ctx context.Context, r events.SQSMessage) error {
			n, err := sesmail.Decode(r.Body)
			if err != nil {
				return err
			}
			a := n.Receipt.Action
			g0 := time.Now()
			out, err := mail.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(a.BucketName), Key: aws.String(a.ObjectKey)})
			if err != nil {
				return err
			}
			raw, err := readAll(out)
			d := time.Since(g0)
			mu.Lock()
			baseGet += d
			mu.Unlock()
			baseGets.Add(1)
			if err != nil {
				return err
			}
			_, err = basePool.Exec(ctx, `INSERT INTO "BenchMail" ("sesMessageId", "objectKey", "raw") VALUES ($1, $2, $3)`, n.Mail.MessageID, a.ObjectKey, raw)
			return err
		})
	}

	// Warm-ups (the real one first: it shows how many records the flow
	// handles at once), then one timed round of each in the run's order
	// (the baseline first in odd runs, the real intake first in even runs).
	if _, err := inBatches(ctx, warmReal, mapping.batch, realSide); err != nil {
		return sec, fmt.Errorf("real intake warm-up: %w", err)
	}
	parallel = max(int(inFlight.peak.Load()), 1)
	if _, err := inBatches(ctx, warmBase, mapping.batch, bareSide); err != nil {
		return sec, fmt.Errorf("baseline warm-up: %w", err)
	}
	var bareD, realD time.Duration
	var callsBefore int
	order, err := e.inOrder(func() (err error) {
		baseTrace.reset()
		mu.Lock()
		baseGet = 0
		mu.Unlock()
		baseGets.Store(0)
		if bareD, err = inBatches(ctx, timed, mapping.batch, bareSide); err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		return nil
	}, func() (err error) {
		trace.reset()
		objects.reset()
		callsBefore = rig.sb.Stats(seller.ID).Calls["getOrder"]
		if realD, err = inBatches(ctx, timed, mapping.batch, realSide); err != nil {
			return fmt.Errorf("real intake: %w", err)
		}
		return nil
	})
	if err != nil {
		return sec, err
	}
	// What the real intake sent, counted before the other side could add
	// to the sandbox's counts (the baseline sends no SP-API call).
	getOrders := rig.sb.Stats(seller.ID).Calls["getOrder"] - callsBefore
	realCalls, realSQL, realTable := trace.calls(), trace.meanMS()*float64(trace.calls()), trace.table()
	outcomes, err := mailOutcomes(ctx, poolOf(store), tenant)
	if err != nil {
		return sec, err
	}
	var ticketed int
	if err := poolOf(store).QueryRow(ctx, `SELECT count(*) FROM keybuzz_amazon."InboundMail" WHERE "tenantId" = $1 AND "outcome" = 'TICKETED'`, tenant).Scan(&ticketed); err != nil {
		return sec, err
	}
	if ticketed != len(timed)+len(warmReal) {
		return sec, fmt.Errorf("%d mails TICKETED, want %d (outcomes: %s)", ticketed, len(timed)+len(warmReal), outcomes)
	}

	n := len(timed)
	bareRate, realRate := rate(n, bareD), rate(n, realD)
	e.logf("mail: bare S3 read + INSERT %.0f mails/s, real intake %.0f mails/s (%.3f)", bareRate, realRate, ratio(realRate, bareRate))
	perMail := func(d time.Duration) float64 { return ms(d) / float64(max(n, 1)) }
	stmts, baseStmts := float64(realCalls)/float64(n), float64(baseTrace.calls())/float64(n)
	sqlMS, baseSQLMS := realSQL/float64(n), baseTrace.meanMS()*float64(baseTrace.calls())/float64(n)
	getMS := ms(objects.getTime()) / float64(max(objects.gets.Load(), 1))
	baseGetMS := ms(baseGet) / float64(max(baseGets.Load(), 1))
	bound := fmt.Sprintf(`In the last run a mail cost the real intake %.2f ms of wall time (%d at most
at once within a batch of %d) against the baseline's %.2f ms: per mail %.1f
statements (pgx tracer; %.2f ms of client time in all, round trips
included) against the baseline's %.1f (%.2f ms); %.2f S3 reads of %.2f ms
each and %.2f S3 writes (the attachments) against one read of %.2f ms; and
%.2f getOrder calls to the sandbox for the order's context (%d in all).
Each side has a pool of %d connections (boot.LambdaMaxConns): the real
intake's statements kept them busy %.0f%% of its wall time (statement time
per mail / connections / wall time per mail), the baseline's %.0f%% of its.`,
		perMail(realD), parallel, mapping.batch, perMail(bareD), stmts, sqlMS, baseStmts, baseSQLMS,
		float64(objects.gets.Load())/float64(n), getMS, float64(objects.puts.Load())/float64(n), baseGetMS,
		float64(getOrders)/float64(n), getOrders, boot.LambdaMaxConns,
		100*sqlMS/boot.LambdaMaxConns/max(perMail(realD), 0.001), 100*baseSQLMS/boot.LambdaMaxConns/max(perMail(bareD), 0.001))
	sec.Results = append(sec.Results, Result{
		Name: "mail_intake_throughput", Value: realRate, Unit: "mails/s",
		Baselines: map[string]float64{"s3_read_plus_insert": bareRate}, Ratios: map[string]float64{"s3_read_plus_insert": ratio(realRate, bareRate)},
		Goal: "report only",
	}, Result{
		Name: "mail_intake_statements_per_mail", Value: round3(stmts), Unit: "statements/mail",
		Baselines: map[string]float64{"s3_read_plus_insert": round3(baseStmts)}, Ratios: map[string]float64{"s3_read_plus_insert": ratio(stmts, baseStmts)},
		Goal: "report only",
	})
	sec.Notes = append(sec.Notes, fmt.Sprintf(`%d relay mails (plus %d for each side's warm-up), each about an order of its
own, composed by the sandbox and relayed by SMTP to the tenant's inbound
address through %s; the records were then received from the queue (%d in
all) as the event source mapping hands them over and kept, so both sides
handle the same SQS records, in batches of %d (the template's BatchSize
for inboundmail), one invocation at a time, after a warm-up each; odd runs
time the baseline first, even runs the real intake first (this run: %s).

- **Real intake**: sqsbatch.Handler(inboundmail.Flow) as functions/inboundmail wires it (SNS envelope and SES notification, the address lookup, S3 read, MIME parse and understanding, the one ingestion path with the outcome row, then the order's context by getOrder within its budget), on a fresh database. Outcomes: %s.
- **Baseline** (s3_read_plus_insert): per record, the SES notification decoded (shared/sesmail), S3 GetObject of the raw mail, one INSERT of it into a table of its own (primary key only) on a fresh database; a batch's records %d at a time, as many as the real flow handled at once in its warm-up (the most records between their S3 read and their ingestion at once).

%s

Statements of the real intake (pgx tracer on its store's pool; client time,
round trip included):

%s
Statements of the baseline:

%s`, n, mailWarmUp, mail.what(), len(records), mapping.batch, order, outcomes, parallel, bound, realTable, baseTrace.table()))
	return sec, nil
}

// relayMails has the sandbox relay n buyer messages of the seller, each
// about a new order, by SMTP, a few at a time.
func relayMails(sb *sandbox.Server, seller sandbox.Seller, n int) error {
	ids := make(chan int)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				orderID, err := sb.AddOrder(seller.ID, seller.MarketplaceIDs[0], false)
				if err == nil {
					_, err = sb.SendBuyerMessage(seller.ID, sandbox.BuyerMessage{OrderID: orderID, Text: fmt.Sprintf("Hello, where is my parcel? (mail %d)", i)})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
loop:
	for i := range n {
		select {
		case ids <- i:
		case err = <-errs:
			break loop
		}
	}
	close(ids)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

// receiveAll receives n messages from the queue and returns them as an
// event source mapping hands them to Lambda. Each receive hides what it
// got for receiveHide only, and a message is kept once (by its id): a
// receive whose answer was lost on the way does not hide its messages for
// the queue's whole visibility timeout.
func receiveAll(ctx context.Context, client *sqs.Client, queueURL string, n int) ([]events.SQSMessage, error) {
	var out []events.SQSMessage
	seen := map[string]bool{}
	deadline := time.Now().Add(time.Minute)
	for len(out) < n {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("received %d of %d messages within a minute (the queue holds %s)", len(out), n, queueCounts(ctx, client, queueURL))
		}
		res, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			VisibilityTimeout: receiveHide})
		if err != nil {
			return nil, fmt.Errorf("receive: %w", err)
		}
		for _, m := range res.Messages {
			id := aws.ToString(m.MessageId)
			if seen[id] {
				continue
			}
			seen[id] = true
			out = append(out, events.SQSMessage{MessageId: id, ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body), EventSource: "aws:sqs", AWSRegion: "eu-west-1"})
		}
	}
	return out, nil
}

// receiveHide is how long a receive of receiveAll hides its messages.
const receiveHide = 15

// queueCounts says how many messages a queue holds, visible and not.
func queueCounts(ctx context.Context, client *sqs.Client, queueURL string) string {
	a, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return "an unknown number: " + err.Error()
	}
	return fmt.Sprintf("%s visible, %s in flight", a.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)],
		a.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
}

// inBatches hands the records to handle in batches of size, one after the
// other, and returns the time it took.
func inBatches(ctx context.Context, records []events.SQSMessage, size int, handle func(context.Context, events.SQSEvent) error) (time.Duration, error) {
	t0 := time.Now()
	for i := 0; i < len(records); i += size {
		if err := handle(ctx, events.SQSEvent{Records: records[i:min(i+size, len(records))]}); err != nil {
			return 0, err
		}
	}
	return time.Since(t0), nil
}

// eachRecord runs f on a batch's records, at most parallel at once.
func eachRecord(ctx context.Context, ev events.SQSEvent, parallel int, f func(context.Context, events.SQSMessage) error) error {
	sem := make(chan struct{}, parallel)
	errs := make(chan error, len(ev.Records))
	var wg sync.WaitGroup
	for _, r := range ev.Records {
		wg.Add(1)
		sem <- struct{}{}
		go func(r events.SQSMessage) {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- f(ctx, r)
		}(r)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func readAll(out *s3.GetObjectOutput) ([]byte, error) {
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// recordsInFlight counts the records the flow has between a mail's S3 read
// (countingObjects.Get; the address is looked up once per batch, so its
// lookup no longer marks each mail) and its ingestion or recorded refusal,
// and the most at once. Every timed mail is read and TICKETED (the
// benchmark checks it), so each read has its ingestion.
type recordsInFlight struct {
	inboundmail.Store
	n, peak atomic.Int64
}

func (r *recordsInFlight) read() {
	n := r.n.Add(1)
	for p := r.peak.Load(); n > p && !r.peak.CompareAndSwap(p, n); p = r.peak.Load() {
	}
}

func (r *recordsInFlight) RecordMail(ctx context.Context, rec marketplace.ReceivedMail) error {
	defer r.n.Add(-1)
	return r.Store.RecordMail(ctx, rec)
}

func (r *recordsInFlight) IngestMail(ctx context.Context, rec marketplace.ReceivedMail, msg marketplace.InboundMessage, atts []marketplace.MailAttachment) (marketplace.MailResult, error) {
	defer r.n.Add(-1)
	return r.Store.IngestMail(ctx, rec, msg, atts)
}

// countingObjects counts the flow's S3 calls and their time.
type countingObjects struct {
	inboundmail.Objects
	inFlight   *recordsInFlight
	gets, puts atomic.Int64
	mu         sync.Mutex
	getD       time.Duration
}

func (c *countingObjects) Get(ctx context.Context, bucket, key string, max int64) ([]byte, error) {
	c.inFlight.read()
	t0 := time.Now()
	b, err := c.Objects.Get(ctx, bucket, key, max)
	d := time.Since(t0)
	c.gets.Add(1)
	c.mu.Lock()
	c.getD += d
	c.mu.Unlock()
	return b, err
}

func (c *countingObjects) Put(ctx context.Context, bucket, key, contentType string, body []byte) error {
	c.puts.Add(1)
	return c.Objects.Put(ctx, bucket, key, contentType, body)
}

func (c *countingObjects) getTime() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getD
}

func (c *countingObjects) reset() {
	c.gets.Store(0)
	c.puts.Store(0)
	c.mu.Lock()
	c.getD = 0
	c.mu.Unlock()
}
