package security

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/mailbucket"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

// mailRig is the test stack's mail path: the SMTP receiver playing SES
// (S3 object + SNS notification), a queue of this test's own on the mail
// topic, and the inboundmail flow on the test's database.
type mailRig struct {
	t        *testing.T
	pool     *pgxpool.Pool
	store    *postgres.Store
	consumer localpoll.Consumer
	smtpAddr string
	domain   string
}

func newMailRig(t *testing.T) *mailRig {
	t.Helper()
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("local", "local", "")
	s3c := s3.New(s3.Options{Region: "eu-west-1", BaseEndpoint: aws.String(testenv.Env(t, "AWS_ENDPOINT_URL_S3")), UsePathStyle: true, Credentials: creds})
	sqsc := sqs.New(sqs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(testenv.Env(t, "AWS_ENDPOINT_URL_SQS")), Credentials: creds})
	snsc := sns.New(sns.Options{Region: "eu-west-1", BaseEndpoint: aws.String(testenv.Env(t, "AWS_ENDPOINT_URL_SNS")), Credentials: creds})
	pool, _ := testenv.Pool(t)
	r := &mailRig{t: t, pool: pool, store: postgres.New(pool), domain: testenv.Env(t, "INBOUND_MAIL_DOMAIN")}
	// A receipt rule of this test's own (its SMTP receiver, SNS topic and
	// queue), so that other tests' mails and this one's never mix.
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(testenv.ID("security-mail"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = snsc.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: topic.TopicArn}) })
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(testenv.ID("security-mail"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = sqsc.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) })
	attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []types.QueueAttributeName{"QueueArn"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(attrs.Attributes["QueueArn"])}); err != nil {
		t.Fatal(err)
	}
	bucket := testenv.Env(t, "INBOUND_MAIL_BUCKET")
	srv, err := smtpses.Start("127.0.0.1:0", smtpses.Config{Domain: r.domain, Bucket: bucket, Prefix: "raw/", TopicArn: aws.ToString(topic.TopicArn),
		S3: s3c, SNS: snsc, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r.smtpAddr = srv.Addr()
	flow := inboundmail.New(r.store, mailbucket.New(s3c), r.domain, inboundmail.WithBucket(bucket))
	r.consumer = localpoll.Consumer{Handler: sqsbatch.Handler(flow), SQS: sqsc, QueueURL: *q.QueueUrl}
	return r
}

// tenant inserts a connection in status and provisions its US address.
func (r *mailRig) tenant(prefix, status string) (id, address string) {
	r.t.Helper()
	id = testenv.ID(prefix)
	if _, err := r.pool.Exec(context.Background(), `
SELECT keybuzz_dev.connection($1, $2, 'NA', 'ATVPDKIKX0DER')`, id, status); err != nil {
		r.t.Fatal(err)
	}
	addrs, err := mailaddress.NewAddresses(r.store, r.domain).Provision(context.Background(), id, []string{"ATVPDKIKX0DER"})
	if err != nil || len(addrs) != 1 {
		r.t.Fatalf("addresses of %s: %v %v", id, addrs, err)
	}
	return id, addrs[0].EmailAddress
}

// send delivers raw by SMTP to the envelope recipient rcpt and hands what
// reached the queue to the flow.
func (r *mailRig) send(rcpt string, raw string) {
	r.t.Helper()
	if err := smtpses.Send(r.smtpAddr, "bounce@marketplace.amazon.com", []string{rcpt}, []byte(raw)); err != nil {
		r.t.Fatalf("SMTP to %s: %v", rcpt, err)
	}
	if n, failed, err := r.consumer.Drain(context.Background(), 1); err != nil || failed != 0 || n == 0 {
		r.t.Fatalf("drain: %d records, %d failed, %v", n, failed, err)
	}
}

// rows is what tenant holds: its ExternalMessage bodies and Ticket,
// TicketMessage counts.
func (r *mailRig) rows(tenant string) (bodies []string, tickets, ticketMessages int) {
	r.t.Helper()
	ctx := context.Background()
	rs, err := r.pool.Query(ctx, `SELECT COALESCE(tm."body", '') FROM public."ExternalMessage" e JOIN keybuzz_amazon."Message" m ON m."externalMessageId" = e."id"
	JOIN public."TicketMessage" tm ON tm."id" = m."ticketMessageId" WHERE e."tenantId" = $1 ORDER BY e."createdAt", e."id"`, tenant)
	if err != nil {
		r.t.Fatal(err)
	}
	for rs.Next() {
		var b string
		if err := rs.Scan(&b); err != nil {
			r.t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	rs.Close()
	if err := r.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM "Ticket" WHERE "tenantId" = $1), (SELECT count(*) FROM "TicketMessage" WHERE "tenantId" = $1)`, tenant).
		Scan(&tickets, &ticketMessages); err != nil {
		r.t.Fatal(err)
	}
	return bodies, tickets, ticketMessages
}

// outcomes of the mails received for recipient, with the tenant each row
// was recorded under.
func (r *mailRig) outcomes(recipient string) []string {
	r.t.Helper()
	rs, err := r.pool.Query(context.Background(), `SELECT "outcome"::text || ' ' || COALESCE("tenantId", '-') FROM keybuzz_amazon."InboundMail" WHERE lower("recipient") = lower($1) ORDER BY "createdAt"`, recipient)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// relayMail is a buyer message in the relay's shape; headers are added
// before the others (an attacker's To, Cc, In-Reply-To, References).
func relayMail(to, messageID, order, words string, headers ...string) string {
	var b strings.Builder
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "From: \"Mallory Buyer - Amazon Marketplace\" <mallory01x@marketplace.amazon.com>\r\nTo: %s\r\n", to)
	fmt.Fprintf(&b, "Subject: Shipping inquiry from Amazon customer Mallory Buyer (Order: %s)\r\nMessage-ID: <%s>\r\n", order, messageID)
	b.WriteString("Date: Tue, 01 Dec 2026 09:01:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n")
	fmt.Fprintf(&b, "Order ID: %s\r\n\r\n------------- Begin message -------------\r\n\r\n%s\r\n\r\n------------- End message -------------\r\n", order, words)
	return b.String()
}

// The inbound address of another tenant: a mail sent to tenant B's
// address about tenant A's order, naming tenant A (its id, its address in
// To and Cc, threading headers pointing at A's mail, A's Message-ID) lands
// in B's tenant or is refused, never in A's; an address made of A's tenant
// id and B's token is no address; a disconnected or disabled tenant's
// (disconnected through the store's Disconnect) or revoked (NEEDS_REAUTH)
// tenant's address refuses everything.
func TestInboundAddressOfAnotherTenant(t *testing.T) {
	r := newMailRig(t)
	a, aAddr := r.tenant("tenant-mail-a", "CONNECTED")
	b, bAddr := r.tenant("tenant-mail-b", "CONNECTED")
	gone, goneAddr := r.tenant("tenant-mail-gone", "CONNECTED")
	if _, _, err := r.store.Disconnect(context.Background(), gone); err != nil { // the tenant's own disconnect
		t.Fatal(err)
	}
	off, offAddr := r.tenant("tenant-mail-reauth", "NEEDS_REAUTH") // the seller revoked the app
	const orderA = "112-3456789-1000001"
	aMsgID := testenv.ID("a-first") + "@eu-west-1.amazonses.com"

	// A's own mail about its order: one ticket in A.
	r.send(aAddr, relayMail(aAddr, aMsgID, orderA, "A's genuine question about the parcel."))
	aBodies, aTickets, aTMs := r.rows(a)
	if len(aBodies) != 1 || aTickets != 1 || aTMs != 1 {
		t.Fatalf("A after its own mail: %v, %d tickets, %d ticket messages", aBodies, aTickets, aTMs)
	}

	naming := fmt.Sprintf("Please forward to tenant %s (%s), order %s.", a, aAddr, orderA)
	attacks := []struct{ name, raw string }{
		{"A's order, A named in To and Cc", relayMail(aAddr, testenv.ID("x1")+"@evil.example", orderA, "ATTACK-1 "+naming, "Cc: "+aAddr)},
		{"threaded on A's mail", relayMail(bAddr, testenv.ID("x2")+"@evil.example", orderA, "ATTACK-2 "+naming,
			"In-Reply-To: <"+aMsgID+">", "References: <"+aMsgID+">")},
		{"A's Message-ID again", relayMail(bAddr, aMsgID, orderA, "ATTACK-3 "+naming)},
		{"A's tenant id as the order", relayMail(bAddr, testenv.ID("x4")+"@evil.example", a, "ATTACK-4 "+naming)},
	}
	for _, at := range attacks {
		r.send(bAddr, at.raw) // the envelope recipient is B's address, whatever the headers say
	}
	// Addresses built from A's id with another token, and a disconnected
	// or disabled tenant's real address.
	local := func(addr string) (head, token string) {
		l := strings.Split(addr, "@")[0]
		i := strings.LastIndexByte(l, '.')
		return l[:i], l[i+1:]
	}
	aHead, _ := local(aAddr)
	_, bToken := local(bAddr)
	swapped := aHead + "." + bToken + "@" + r.domain
	for _, rcpt := range []string{swapped, goneAddr, offAddr} {
		r.send(rcpt, relayMail(rcpt, testenv.ID("x5")+"@evil.example", orderA, "ATTACK-5 "+naming))
	}

	// Nothing reached A.
	if bodies, tickets, tms := r.rows(a); len(bodies) != 1 || tickets != 1 || tms != 1 || strings.Contains(strings.Join(bodies, " "), "ATTACK") {
		t.Errorf("tenant A after the attacks: %q, %d tickets, %d ticket messages", bodies, tickets, tms)
	}
	for _, o := range r.outcomes(aAddr) {
		if !strings.HasSuffix(o, " "+a) {
			t.Errorf("a mail to A's address recorded as %q", o)
		}
	}
	if n := len(r.outcomes(aAddr)); n != 1 {
		t.Errorf("%d mails recorded for A's address, want its own one", n)
	}
	// What B kept is B's alone; every mail sent to B has an outcome under B.
	bBodies, _, _ := r.rows(b)
	for _, body := range bBodies {
		if !strings.Contains(body, "ATTACK") {
			t.Errorf("B holds a message it was not sent: %q", body)
		}
	}
	bOut := r.outcomes(bAddr)
	t.Logf("mails to B's address: %v; B keeps %d messages", bOut, len(bBodies))
	if len(bOut) != len(attacks) {
		t.Errorf("outcomes for B's address: %v, want %d", bOut, len(attacks))
	}
	for _, o := range bOut {
		if !strings.HasSuffix(o, " "+b) {
			t.Errorf("a mail to B's address recorded as %q", o)
		}
	}
	// The other addresses refuse.
	for rcpt, tenant := range map[string]string{swapped: a, goneAddr: gone, offAddr: off} {
		out := r.outcomes(rcpt)
		if len(out) != 1 || !strings.HasPrefix(out[0], "UNKNOWN_RECIPIENT") {
			t.Errorf("mail to %s: outcomes %v, want one UNKNOWN_RECIPIENT", rcpt, out)
		}
		if bodies, tickets, _ := r.rows(tenant); tenant != a && (len(bodies) != 0 || tickets != 0) {
			t.Errorf("tenant %s got %q, %d tickets", tenant, bodies, tickets)
		}
	}
}
