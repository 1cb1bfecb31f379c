package inboundmail_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

const domain = "inbound.example"

// fakeStore keeps what the flow stores, with the adapter's promises:
// RecordMail keeps the first outcome, IngestMail is idempotent by
// (connection, externalId).
type fakeStore struct {
	mu         sync.Mutex
	addrs      map[string]marketplace.InboundAddress
	records    map[string]marketplace.ReceivedMail // sesMessageId|recipient
	messages   map[string]marketplace.InboundMessage
	threads    map[string]string // tenant|threadKey -> ticket
	atts       map[string][]marketplace.MailAttachment
	failIngest error
}

func newStore() *fakeStore {
	return &fakeStore{addrs: map[string]marketplace.InboundAddress{}, records: map[string]marketplace.ReceivedMail{},
		messages: map[string]marketplace.InboundMessage{}, threads: map[string]string{}, atts: map[string][]marketplace.MailAttachment{}}
}

func (s *fakeStore) InboundAddressByEmail(_ context.Context, email string) (marketplace.InboundAddress, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.addrs[strings.ToLower(email)]
	if !ok {
		return a, marketplace.ErrNotFound
	}
	return a, nil
}

func (s *fakeStore) RecordMail(_ context.Context, r marketplace.ReceivedMail) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := r.SESMessageID + "|" + r.Recipient
	if _, ok := s.records[k]; !ok {
		s.records[k] = r
	}
	return nil
}

func (s *fakeStore) IngestMail(ctx context.Context, r marketplace.ReceivedMail, m marketplace.InboundMessage, atts []marketplace.MailAttachment) (marketplace.MailResult, error) {
	if s.failIngest != nil {
		return marketplace.MailResult{}, s.failIngest
	}
	s.mu.Lock()
	var res marketplace.MailResult
	key := r.ConnectionID + "|" + m.ExternalID
	if _, ok := s.messages[key]; !ok {
		s.messages[key] = m
		s.atts[key] = atts
		res.MessageCreated = true
	}
	tk := r.TenantID + "|" + m.ThreadKey
	if _, ok := s.threads[tk]; !ok {
		s.threads[tk] = fmt.Sprintf("ticket-%d", len(s.threads)+1)
		res.TicketCreated = true
	}
	res.TicketID = s.threads[tk]
	r.Outcome = marketplace.MailDuplicate
	if res.MessageCreated {
		r.Outcome = marketplace.MailTicketed
	}
	s.mu.Unlock()
	_ = s.RecordMail(ctx, r)
	s.mu.Lock()
	res.Outcome = s.records[r.SESMessageID+"|"+r.Recipient].Outcome
	s.mu.Unlock()
	return res, nil
}

func (s *fakeStore) outcome(sesID, rcpt string) marketplace.MailOutcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records[sesID+"|"+rcpt].Outcome
}

type fakeObjects struct {
	mu      sync.Mutex
	objects map[string][]byte
	getErr  error
}

func (o *fakeObjects) Get(_ context.Context, bucket, key string, max int64) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.getErr != nil {
		return nil, o.getErr
	}
	b, ok := o.objects[bucket+"/"+key]
	if !ok {
		return nil, marketplace.ErrMailMissing
	}
	if int64(len(b)) > max {
		return nil, marketplace.ErrMailTooLarge
	}
	return b, nil
}

func (o *fakeObjects) Put(_ context.Context, bucket, key, _ string, body []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.objects[bucket+"/"+key] = body
	return nil
}

type fixture struct {
	store   *fakeStore
	objects *fakeObjects
	flow    *inboundmail.Flow
	orders  *fakeOrders
}

type fakeOrders struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeOrders) Attach(_ context.Context, tenantID, _, ticketID, orderID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, tenantID+"/"+ticketID+"/"+orderID)
	return nil
}

func (f *fakeOrders) RetryDue(context.Context, int) (int, error) { return 0, nil }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: newStore(), objects: &fakeObjects{objects: map[string][]byte{}}, orders: &fakeOrders{}}
	f.addAddress("amazon.tenant-a.fr.tok1@"+domain, "tenant-a", "conn-a", true)
	f.addAddress("amazon.tenant-b.fr.tok2@"+domain, "tenant-b", "conn-b", true)
	f.addAddress("amazon.tenant-c.fr.tok3@"+domain, "tenant-c", "conn-c", false)
	f.flow = inboundmail.New(f.store, f.objects, domain, inboundmail.WithMaxBytes(1<<20),
		inboundmail.WithOrderContext(f.orders), inboundmail.WithClock(func() time.Time { return time.Unix(1764580000, 0) }))
	return f
}

func (f *fixture) addAddress(email, tenant, conn string, accepting bool) {
	f.store.addrs[email] = marketplace.InboundAddress{ID: "addr-" + tenant, TenantID: tenant, ConnectionID: conn,
		EmailAddress: email, Country: "FR", Accepting: accepting}
}

func corpusMail(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "mail", name+".eml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deliver stores raw as SES would and returns the SQS body of its
// notification, with verdicts overridden by set ("spf=FAIL").
func (f *fixture) deliver(t *testing.T, sesID string, raw []byte, rcpts []string, set ...string) string {
	t.Helper()
	key := "raw/" + sesID
	f.objects.objects["bucket/"+key] = raw
	pass := sesmail.Verdict{Status: sesmail.Pass}
	n := sesmail.Notification{NotificationType: "Received",
		Mail: sesmail.Mail{MessageID: sesID, Timestamp: time.Unix(1764580000, 0).UTC(), Destination: rcpts},
		Receipt: sesmail.Receipt{Timestamp: time.Unix(1764580000, 0).UTC(), Recipients: rcpts,
			SpamVerdict: pass, VirusVerdict: pass, SPFVerdict: pass, DKIMVerdict: pass, DMARCVerdict: pass,
			Action: sesmail.Action{Type: "S3", BucketName: "bucket", ObjectKey: key}}}
	for _, kv := range set {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "spf":
			n.Receipt.SPFVerdict.Status = v
		case "dkim":
			n.Receipt.DKIMVerdict.Status = v
		case "dmarc":
			n.Receipt.DMARCVerdict.Status = v
		case "spam":
			n.Receipt.SpamVerdict.Status = v
		case "virus":
			n.Receipt.VirusVerdict.Status = v
		}
	}
	body, err := smtpses.SNSBody(n, "sns-"+sesID, "arn:aws:sns:eu-west-1:000000000000:mail", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// deliverB is deliver for benchmarks (all verdicts PASS, recipient A).
func (f *fixture) deliverB(sesID string, raw []byte) string {
	return f.deliver(&testing.T{}, sesID, raw, []string{rcptA})
}

func (f *fixture) deliverTo(sesID string, raw []byte, rcpt string) string {
	return f.deliver(&testing.T{}, sesID, raw, []string{rcpt})
}

func (f *fixture) process(t *testing.T, body string) error {
	t.Helper()
	return f.flow.Consume(context.Background(), "sqs-1", body, 0)
}

const rcptA = "amazon.tenant-a.fr.tok1@" + domain

func TestRelayMailBecomesATicketOnce(t *testing.T) {
	f := newFixture(t)
	raw := corpusMail(t, "fr-fr-iso88591-qp")
	if err := f.process(t, f.deliver(t, "ses-1", raw, []string{rcptA})); err != nil {
		t.Fatal(err)
	}
	if o := f.store.outcome("ses-1", rcptA); o != marketplace.MailTicketed {
		t.Fatalf("outcome %s, want TICKETED", o)
	}
	if len(f.store.messages) != 1 {
		t.Fatalf("%d messages", len(f.store.messages))
	}
	for _, m := range f.store.messages {
		if m.BuyerName != "Amélie Poulain" || m.ThreadKey != "402-3456789-1234567" || m.OrderID != m.ThreadKey ||
			!strings.HasPrefix(m.Body, "Bonjour,") || strings.Contains(m.Body, "commMgrTok") || m.Language != "fr" ||
			m.BuyerEmail != "q1w2e3r4t5@marketplace.amazon.fr" || m.MarketplaceID != "A13V1IB3VIYZZH" {
			t.Errorf("message %+v", m)
		}
	}
	// SQS redelivers the same notification: nothing new, the outcome stays.
	if err := f.process(t, f.deliver(t, "ses-1", raw, []string{rcptA})); err != nil {
		t.Fatal(err)
	}
	// SES receives the same mail again (another SES message id): DUPLICATE.
	if err := f.process(t, f.deliver(t, "ses-2", raw, []string{rcptA})); err != nil {
		t.Fatal(err)
	}
	if len(f.store.messages) != 1 || f.store.outcome("ses-1", rcptA) != marketplace.MailTicketed || f.store.outcome("ses-2", rcptA) != marketplace.MailDuplicate {
		t.Errorf("after redelivery: %d messages, outcomes %s %s", len(f.store.messages), f.store.outcome("ses-1", rcptA), f.store.outcome("ses-2", rcptA))
	}
	if len(f.orders.calls) != 1 || f.orders.calls[0] != "tenant-a/ticket-1/402-3456789-1234567" {
		t.Errorf("order context calls %v, want one for the new message", f.orders.calls)
	}
}

func TestOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mail    string
		rcpt    string
		set     []string
		want    marketplace.MailOutcome
		decided string
	}{
		{"not amazon", "hostile-not-amazon", rcptA, nil, marketplace.MailRejectedSender, "jane@example.com"},
		{"lookalike domain", "hostile-lookalike-domain", rcptA, nil, marketplace.MailRejectedSender, "evil.example"},
		{"dmarc fails", "en-us-utf8-qp", rcptA, []string{"dmarc=FAIL"}, marketplace.MailSpoofed, "dmarcVerdict=FAIL"},
		{"spf and dkim fail", "en-us-utf8-qp", rcptA, []string{"spf=FAIL", "dkim=FAIL"}, marketplace.MailSpoofed, "spfVerdict=FAIL dkimVerdict=FAIL"},
		{"spf gray, dkim pass", "en-us-utf8-qp", rcptA, []string{"spf=GRAY"}, marketplace.MailTicketed, ""},
		{"virus", "en-us-utf8-qp", rcptA, []string{"virus=FAIL"}, marketplace.MailQuarantined, "virusVerdict=FAIL"},
		{"spam", "en-us-utf8-qp", rcptA, []string{"spam=FAIL"}, marketplace.MailQuarantined, "spamVerdict=FAIL"},
		{"unknown address", "en-us-utf8-qp", "amazon.nobody.fr.x@" + domain, nil, marketplace.MailUnknownRecipient, "no such"},
		{"other domain", "en-us-utf8-qp", "someone@elsewhere.example", nil, marketplace.MailUnknownRecipient, "not on"},
		{"disconnected tenant", "en-us-utf8-qp", "amazon.tenant-c.fr.tok3@" + domain, nil, marketplace.MailUnknownRecipient, "not CONNECTED"},
		{"garbage", "hostile-garbage", rcptA, nil, marketplace.MailMalformed, "parse"},
		{"no from", "hostile-no-from", rcptA, nil, marketplace.MailMalformed, "parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if err := f.process(t, f.deliver(t, "ses-x", corpusMail(t, tc.mail), []string{tc.rcpt}, tc.set...)); err != nil {
				t.Fatalf("Process: %v (a refusal is recorded, never retried)", err)
			}
			got := f.store.records["ses-x|"+strings.ToLower(tc.rcpt)]
			if got.Outcome != tc.want || !strings.Contains(got.Decision, tc.decided) {
				t.Errorf("outcome %s (%q), want %s (%q)", got.Outcome, got.Decision, tc.want, tc.decided)
			}
			if tc.want != marketplace.MailTicketed && len(f.store.messages) != 0 {
				t.Errorf("a %s mail made a message", tc.want)
			}
			if got.Verdicts.SPF == "" || got.ObjectKey != "raw/ses-x" {
				t.Errorf("record lacks verdicts or key: %+v", got)
			}
		})
	}
}

func TestTooLargeKeepsTheRawMail(t *testing.T) {
	f := newFixture(t)
	raw := append(corpusMail(t, "en-us-utf8-qp"), []byte(strings.Repeat("x", 2<<20))...)
	if err := f.process(t, f.deliver(t, "ses-big", raw, []string{rcptA})); err != nil {
		t.Fatal(err)
	}
	if o := f.store.outcome("ses-big", rcptA); o != marketplace.MailTooLarge {
		t.Errorf("outcome %s", o)
	}
	if _, ok := f.objects.objects["bucket/raw/ses-big"]; !ok {
		t.Error("the raw mail was removed")
	}
}

func TestTransientFailuresGoBackToSQS(t *testing.T) {
	f := newFixture(t)
	body := f.deliver(t, "ses-t", corpusMail(t, "en-us-utf8-qp"), []string{rcptA})
	f.objects.getErr = errors.New("s3 unavailable")
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: body}, {MessageId: "m2", Body: "not json"}}}
	resp, err := sqsbatch.Handler(f.flow)(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m1" {
		t.Fatalf("failures %+v, want m1 only (m2 is malformed: recorded, acknowledged)", resp.BatchItemFailures)
	}
	if f.store.outcome("sqs:m2", "") != marketplace.MailMalformed {
		t.Errorf("malformed notification not recorded")
	}
	if f.store.outcome("ses-t", rcptA) != "" {
		t.Errorf("a transient failure recorded an outcome")
	}
	// The object is missing (not yet readable): also retried.
	f.objects.getErr = nil
	delete(f.objects.objects, "bucket/raw/ses-t")
	if err := f.process(t, body); !errors.Is(err, marketplace.ErrMailMissing) {
		t.Errorf("missing object: %v", err)
	}
	// Back: it goes through.
	f.objects.objects["bucket/raw/ses-t"] = corpusMail(t, "en-us-utf8-qp")
	f.store.failIngest = errors.New("database down")
	if err := f.process(t, body); err == nil {
		t.Error("a database failure was acknowledged")
	}
	f.store.failIngest = nil
	if err := f.process(t, body); err != nil || f.store.outcome("ses-t", rcptA) != marketplace.MailTicketed {
		t.Errorf("retry: %v %s", err, f.store.outcome("ses-t", rcptA))
	}
}

func TestOneMailTwoTenantsStaysApart(t *testing.T) {
	f := newFixture(t)
	rcptB := "amazon.tenant-b.fr.tok2@" + domain
	if err := f.process(t, f.deliver(t, "ses-2t", corpusMail(t, "fr-fr-attachment-pdf-inline-image"), []string{rcptA, strings.ToUpper(rcptB)})); err != nil {
		t.Fatal(err)
	}
	if f.store.outcome("ses-2t", rcptA) != marketplace.MailTicketed || f.store.outcome("ses-2t", rcptB) != marketplace.MailTicketed {
		t.Fatalf("outcomes %s %s", f.store.outcome("ses-2t", rcptA), f.store.outcome("ses-2t", rcptB))
	}
	for key, atts := range f.store.atts {
		tenant := "tenant-a"
		if strings.HasPrefix(key, "conn-b|") {
			tenant = "tenant-b"
		}
		if len(atts) != 2 {
			t.Errorf("%s: %d attachments, want 2", key, len(atts))
		}
		for _, a := range atts {
			if !strings.HasPrefix(a.ObjectKey, "attachments/"+tenant+"/") {
				t.Errorf("%s: attachment %s outside its tenant's prefix", key, a.ObjectKey)
			}
			if _, ok := f.objects.objects["bucket/"+a.ObjectKey]; !ok || a.SHA256 == "" || a.Size == 0 {
				t.Errorf("attachment %+v not stored", a)
			}
		}
	}
}

func TestNoOrderThreadsByAliasAndNoMessageIDFallsBack(t *testing.T) {
	f := newFixture(t)
	for i, name := range []string{"en-us-no-order", "en-us-no-message-id"} {
		if err := f.process(t, f.deliver(t, fmt.Sprintf("ses-%d", i), corpusMail(t, name), []string{rcptA})); err != nil {
			t.Fatal(err)
		}
	}
	var keys, ids []string
	for _, m := range f.store.messages {
		keys, ids = append(keys, m.ThreadKey), append(ids, m.ExternalID)
	}
	joined := strings.Join(keys, " ") + " " + strings.Join(ids, " ")
	if !strings.Contains(joined, "buyer:sam.g@marketplace.amazon.com") || !strings.Contains(joined, "ses:ses-1") {
		t.Errorf("threads %v, externalIds %v", keys, ids)
	}
	if len(f.orders.calls) != 1 {
		t.Errorf("order context for a mail with no order: %v", f.orders.calls)
	}
}

func TestNotReceivedIsIgnored(t *testing.T) {
	f := newFixture(t)
	if err := f.process(t, `{"Type":"SubscriptionConfirmation","Message":"x"}`); err != nil {
		t.Fatal(err)
	}
	if len(f.store.records) != 0 {
		t.Errorf("recorded %v", f.store.records)
	}
}

// A notification naming a bucket other than the receipt rule's is recorded
// MALFORMED and nothing is read from S3; with the right bucket the same
// mail becomes a ticket.
func TestOnlyTheMailBucketIsRead(t *testing.T) {
	for _, tc := range []struct {
		bucket string
		want   marketplace.MailOutcome
	}{
		{"bucket", marketplace.MailTicketed},
		{"another-bucket", marketplace.MailMalformed},
	} {
		t.Run(tc.bucket, func(t *testing.T) {
			f := newFixture(t)
			f.flow = inboundmail.New(f.store, f.objects, domain, inboundmail.WithBucket(tc.bucket))
			body := f.deliver(t, "ses-b", corpusMail(t, "en-us-utf8-qp"), []string{rcptA})
			f.objects.objects[tc.bucket+"/raw/ses-b"] = corpusMail(t, "en-us-utf8-qp") // readable wherever it is named
			if err := f.process(t, body); err != nil {
				t.Fatalf("Process: %v", err)
			}
			var got []marketplace.MailOutcome
			for _, r := range f.store.records {
				got = append(got, r.Outcome)
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("recorded %v, want one %s", got, tc.want)
			}
			if tc.want != marketplace.MailTicketed && len(f.store.messages) != 0 {
				t.Fatalf("a mail from another bucket made %d messages", len(f.store.messages))
			}
		})
	}
}
