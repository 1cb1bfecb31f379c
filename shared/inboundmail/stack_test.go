package inboundmail_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	smtp "github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/mailbucket"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

// stackMail is the test stack's mail intake: the SMTP receiver playing SES
// (INBOUND_SMTP_ADDR), the emulator's S3 and SNS, the mail queue, and a
// consumer handing its batches to a Flow on this test's database.
type stackMail struct {
	t        *testing.T
	pool     *pgxpool.Pool
	store    *postgres.Store
	flow     *inboundmail.Flow
	consumer localpoll.Consumer
	sqs      *sqs.Client
	smtpAddr string
	domain   string
}

func newStackMail(t *testing.T) *stackMail {
	t.Helper()
	ctx := context.Background()
	endpoint := testenv.Env(t, "AWS_ENDPOINT_URL_SQS")
	creds := credentials.NewStaticCredentialsProvider("local", "local", "")
	s3c := s3.New(s3.Options{Region: "eu-west-1", BaseEndpoint: aws.String(testenv.Env(t, "AWS_ENDPOINT_URL_S3")), UsePathStyle: true, Credentials: creds})
	sqsc := sqs.New(sqs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(endpoint), Credentials: creds})
	pool, _ := testenv.Pool(t)
	store := postgres.New(pool)
	m := &stackMail{t: t, pool: pool, store: store, sqs: sqsc,
		smtpAddr: testenv.Env(t, "INBOUND_SMTP_ADDR"), domain: testenv.Env(t, "INBOUND_MAIL_DOMAIN")}
	m.flow = inboundmail.New(store, mailbucket.New(s3c), m.domain)
	// A queue of this test's own on the stack's mail topic, as the mail
	// queue is subscribed: other tests may run a local server whose
	// consumer drains the stack's mail queue.
	queueURL, queueARN := testenv.Queue(t, sqsc, testenv.ID("mail-test"), nil)
	snsc := sns.New(sns.Options{Region: "eu-west-1", BaseEndpoint: aws.String(testenv.Env(t, "AWS_ENDPOINT_URL_SNS")), Credentials: creds})
	sub, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(testenv.Env(t, "MAIL_TOPIC_ARN")), Protocol: aws.String("sqs"),
		Endpoint: aws.String(queueARN)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = snsc.Unsubscribe(context.Background(), &sns.UnsubscribeInput{SubscriptionArn: sub.SubscriptionArn})
	})
	m.consumer = localpoll.Consumer{Handler: sqsbatch.Handler(m.flow), SQS: sqsc, QueueURL: queueURL}
	return m
}

// tenant inserts a connection with status and provisions its addresses.
func (m *stackMail) tenant(status string, marketplaces ...string) (tenantID, connID string, addrs []marketplace.InboundAddress) {
	m.t.Helper()
	ctx := context.Background()
	tenantID = testenv.ID("tenant")
	if err := m.pool.QueryRow(ctx, `
SELECT keybuzz_dev.connection($1, $2, 'EU', $3)`, tenantID, status, marketplaces[0]).Scan(&connID); err != nil {
		m.t.Fatal(err)
	}
	addrs, err := mailaddress.NewAddresses(m.store, m.domain).Provision(ctx, tenantID, marketplaces)
	if err != nil {
		m.t.Fatal(err)
	}
	return tenantID, connID, addrs
}

// send delivers raw by SMTP to rcpt and hands what reached the mail queue
// to the handler.
func (m *stackMail) send(rcpt string, raw []byte) {
	m.t.Helper()
	if err := smtpses.Send(m.smtpAddr, "bounce@amazonses.com", []string{rcpt}, raw); err != nil {
		m.t.Fatalf("SMTP to %s: %v", rcpt, err)
	}
	m.drain()
}

func (m *stackMail) drain() {
	m.t.Helper()
	n, failed, err := m.consumer.Drain(context.Background(), 1)
	if err != nil || failed != 0 || n == 0 {
		m.t.Fatalf("drain: %d records, %d failed, %v", n, failed, err)
	}
}

type ticketRow struct {
	ID, ExternalID, CustomerName, CustomerEmail string
	Bodies                                      []string
}

func (m *stackMail) tickets(tenantID string) []ticketRow {
	m.t.Helper()
	rows, err := m.pool.Query(context.Background(), `
SELECT t."id", COALESCE(t."externalId", ''), t."customerName", COALESCE(t."customerEmail", ''),
       array_agg(tm."body" ORDER BY tm."sentAt", tm."body")
FROM "Ticket" t JOIN "TicketMessage" tm ON tm."ticketId" = t."id"
WHERE t."tenantId" = $1 GROUP BY t."id" ORDER BY t."externalId"`, tenantID)
	if err != nil {
		m.t.Fatal(err)
	}
	defer rows.Close()
	var out []ticketRow
	for rows.Next() {
		var r ticketRow
		if err := rows.Scan(&r.ID, &r.ExternalID, &r.CustomerName, &r.CustomerEmail, &r.Bodies); err != nil {
			m.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func (m *stackMail) outcomes(tenantOrRcpt string) map[string]int {
	m.t.Helper()
	rows, err := m.pool.Query(context.Background(), `
SELECT "outcome", count(*) FROM keybuzz_amazon."InboundMail" WHERE "tenantId" = $1 OR "recipient" = $1 GROUP BY "outcome"`, tenantOrRcpt)
	if err != nil {
		m.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var o string
		var n int
		if err := rows.Scan(&o, &n); err != nil {
			m.t.Fatal(err)
		}
		out[o] = n
	}
	return out
}

// TestMailThroughTheStack: SMTP -> S3 + SNS -> SQS -> handler -> ticket,
// on the test stack's real receiver, emulator and database.
func TestMailThroughTheStack(t *testing.T) {
	m := newStackMail(t)
	ctx := context.Background()
	tenant, _, addrs := m.tenant("CONNECTED", "ATVPDKIKX0DER", "A1PA6795UKMFR9")
	other, _, otherAddrs := m.tenant("CONNECTED", "ATVPDKIKX0DER")
	gone, _, goneAddrs := m.tenant("DISABLED", "ATVPDKIKX0DER")
	us, de := addrs[1].EmailAddress, addrs[0].EmailAddress
	if addrs[1].Country != "US" || addrs[0].Country != "DE" {
		t.Fatalf("addresses %+v", addrs)
	}

	// A relay mail: a ticket for the order, the buyer's name, only the buyer's words.
	first := corpusMail(t, "en-us-utf8-qp")
	m.send(us, first)
	got := m.tickets(tenant)
	if len(got) != 1 || got[0].ExternalID != "111-2223334-5556667" || got[0].CustomerName != "Jane Doe" ||
		got[0].CustomerEmail != "abc123def456ghi@marketplace.amazon.com" || len(got[0].Bodies) != 1 ||
		got[0].Bodies[0] != "Hi, my package says delivered but I can't find it.\nCould you check with the carrier?\n\nThanks, Jane" {
		t.Fatalf("after the first mail: %+v", got)
	}
	// A second mail about the same order: the same ticket, without the quote.
	m.send(strings.ToUpper(us), corpusMail(t, "en-us-reply-quoting"))
	got = m.tickets(tenant)
	if len(got) != 1 || len(got[0].Bodies) != 2 || got[0].Bodies[1] != "Thanks, that works for me." {
		t.Fatalf("after the reply: %+v", got)
	}
	// The first mail again (SES receives it twice): nothing new.
	m.send(us, first)
	if got = m.tickets(tenant); len(got) != 1 || len(got[0].Bodies) != 2 {
		t.Fatalf("after the same mail again: %+v", got)
	}
	// Out of order: a reply before the mail it answers; both on one ticket.
	m.send(de, corpusMail(t, "de-de-reply-quoting-de"))
	m.send(de, corpusMail(t, "de-de-windows1252-qp"))
	got = m.tickets(tenant)
	if len(got) != 2 || got[0].ExternalID != "111-2223334-5556667" || got[1].ExternalID != "303-9876543-2109876" ||
		len(got[1].Bodies) != 2 || got[1].CustomerName != "Jürgen Müller" {
		t.Fatalf("after out-of-order mails: %+v", got)
	}
	// An SNS duplicate: the same notification delivered to the queue twice.
	if err := smtpses.Send(m.smtpAddr, "b@amazonses.com", []string{us}, corpusMail(t, "fr-fr-no-marker")); err != nil {
		t.Fatal(err)
	}
	recv, err := m.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(m.consumer.QueueURL), WaitTimeSeconds: 2, VisibilityTimeout: 1})
	if err != nil || len(recv.Messages) != 1 {
		t.Fatalf("receive: %v %d", err, len(recv.Messages))
	}
	if _, err := m.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(m.consumer.QueueURL), MessageBody: recv.Messages[0].Body}); err != nil {
		t.Fatal(err)
	}
	m.drain()
	if got = m.tickets(tenant); len(got) != 3 {
		t.Fatalf("after an SNS duplicate: %d tickets, want 3", len(got))
	}

	// Hostile and misaddressed mail: no ticket, an outcome each.
	m.send(us, corpusMail(t, "hostile-not-amazon"))
	spoofed := append([]byte(smtpses.VerdictHeader+": spf=FAIL, dkim=FAIL, dmarc=FAIL\r\n"), corpusMail(t, "en-us-newer-marker")...)
	m.send(us, spoofed)
	quarantined := append([]byte(smtpses.VerdictHeader+": virus=FAIL\r\n"), corpusMail(t, "en-us-attachment-photo")...)
	m.send(us, quarantined)
	m.send(goneAddrs[0].EmailAddress, corpusMail(t, "en-us-newer-marker"))
	unknown := "amazon." + tenant + ".us.guessedtoken1234@" + m.domain
	m.send(unknown, corpusMail(t, "en-us-newer-marker"))
	if err := smtpses.Send(m.smtpAddr, "b@amazonses.com", []string{"x@elsewhere.example"}, first); err == nil {
		t.Error("the receiver accepted a recipient outside the inbound domain")
	} else {
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 550 {
			t.Errorf("outside recipient: %v, want 550", err)
		}
	}
	if got = m.tickets(tenant); len(got) != 3 {
		t.Fatalf("hostile mail made tickets: %+v", got)
	}
	want := map[string]int{"TICKETED": 5, "DUPLICATE": 1, "REJECTED_SENDER": 1, "SPOOFED": 1, "QUARANTINED": 1}
	if o := m.outcomes(tenant); !equalCounts(o, want) {
		t.Errorf("outcomes of %s = %v, want %v", tenant, o, want)
	}
	if o := m.outcomes(gone); o["UNKNOWN_RECIPIENT"] != 1 {
		t.Errorf("disconnected tenant's outcomes = %v", o)
	}
	if o := m.outcomes(strings.ToLower(unknown)); o["UNKNOWN_RECIPIENT"] != 1 {
		t.Errorf("unknown address's outcomes = %v", o)
	}
	// No buyer data in another tenant; the used address is validated.
	if got := m.tickets(other); len(got) != 0 {
		t.Errorf("tenant %s got %+v", other, got)
	}
	_ = otherAddrs
	list, err := m.store.InboundAddresses(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if a.PipelineStatus != marketplace.InboundValidated || a.LastInboundAt == nil {
			t.Errorf("address %s: pipeline %s, lastInboundAt %v", a.EmailAddress, a.PipelineStatus, a.LastInboundAt)
		}
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
