package replies_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/jackc/pgx/v5/pgxpool"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sesout"
	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/mailbucket"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/replies"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/replyqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/replysender"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sessender"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

const frMarketplace = "A13V1IB3VIYZZH"

// rig is the whole reply path on the test stack: the sandbox (Amazon's
// relay both ways), the SMTP receiver playing SES's receipt rule and the
// mail intake, the API routes, the outbound queue and the sender, the
// SESv2 stand-in, SNS and the SES-events queue and consumer; queues and
// topics of this test's own on the stack's emulator.
type rig struct {
	t       *testing.T
	store   *postgres.Store
	pool    *pgxpool.Pool
	sb      *sandbox.Server
	api     *httptest.Server
	token   string
	tenant  string
	from    string
	seller  string
	orderID string
	ticket  string
	buyerID string // the buyer mail's Message-ID
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logs := &testenv.Buffer{}
	quiet := slog.New(slog.NewTextHandler(logs, nil))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	creds := credentials.NewStaticCredentialsProvider("local", "local", "")
	endpoint := testenv.Env(t, "AWS_ENDPOINT_URL_SQS")
	s3c := s3.New(s3.Options{Region: "eu-west-1", BaseEndpoint: aws.String(testenv.Env(t, "AWS_ENDPOINT_URL_S3")), UsePathStyle: true, Credentials: creds})
	sqsc := sqs.New(sqs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(endpoint), Credentials: creds})
	snsc := sns.New(sns.Options{Region: "eu-west-1", BaseEndpoint: aws.String(testenv.Env(t, "AWS_ENDPOINT_URL_SNS")), Credentials: creds})
	queue := func(name string, visibility string) (url, arn string) {
		return testenv.Queue(t, sqsc, testenv.ID(name), map[string]string{"VisibilityTimeout": visibility})
	}
	topic := func(name, queueArn string) string {
		tp, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(testenv.ID(name))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = snsc.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: tp.TopicArn}) })
		if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: tp.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(queueArn)}); err != nil {
			t.Fatal(err)
		}
		return *tp.TopicArn
	}
	pool, _ := testenv.Pool(t)
	r := &rig{t: t, store: postgres.New(pool), pool: pool}
	domain, bucket := testenv.Env(t, "INBOUND_MAIL_DOMAIN"), testenv.Env(t, "INBOUND_MAIL_BUCKET")

	// The mail intake: SMTP receiver -> S3 + SNS -> mail queue -> inboundmail.
	mailURL, mailArn := queue("replies-mail", "30")
	receiver, err := smtpses.Start("127.0.0.1:0", smtpses.Config{Domain: domain, Bucket: bucket, Prefix: "raw/",
		TopicArn: topic("replies-mail", mailArn), S3: s3c, SNS: snsc, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { receiver.Close() })

	// Amazon's side.
	r.sb = sandbox.New(sandbox.Config{ClientID: "c", ClientSecret: "s", ApplicationID: "a", Sellers: 1, RelaySMTP: receiver.Addr()})
	relay, err := r.sb.StartReplyRelay("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })

	// SES's sending side and its events.
	eventsURL, eventsArn := queue("replies-ses-events", "30")
	ses, err := sesout.Start("127.0.0.1:0", sesout.Config{VerifiedDomains: []string{domain}, ConfigurationSets: []string{"replies"},
		RelaySMTP: relay.Addr(), TopicArn: topic("replies-ses-events", eventsArn), SNS: snsc, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ses.Close() })
	t.Setenv("AWS_ENDPOINT_URL_SESV2", ses.URL())
	sesClient, err := sessender.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The connector.
	jobsURL, _ := queue("replies-jobs", "2")
	events := replies.NewEvents(r.store, quiet)
	q := replies.NewQueue(r.store, replyqueue.NewJobs(sqsc, jobsURL), reply.DefaultRules(), quiet)
	sender := replysender.NewSender(r.store, sessender.New(sesClient, "replies"), replysender.SenderConfig{Rate: 50, Burst: 50, Log: quiet})
	mail := inboundmail.New(r.store, mailbucket.New(s3c), domain, inboundmail.WithBucket(bucket), inboundmail.WithLogger(quiet),
		inboundmail.WithRefusedReplies(events))
	for name, c := range map[string]struct {
		url string
		h   sqsbatch.Consumer
	}{"inboundmail": {mailURL, mail}, "replysender": {jobsURL, sender}, "sesevents": {eventsURL, events}} {
		go localpoll.Consumer{Handler: sqsbatch.Handler(c.h, sqsbatch.WithParallel(10)), SQS: sqsc, QueueURL: c.url, Log: quiet, Name: name}.Run(ctx)
	}
	secretKey := secret.Value(strings.Repeat("k", 32))
	verifier, err := auth.NewVerifier(ctx, config.Config{JWTHS256Secret: secretKey, JWTIssuer: "i", JWTAudience: "a", TenantClaim: "tenantId"})
	if err != nil {
		t.Fatal(err)
	}
	mux := httpapi.Mux(httpapi.SendReplyRoute(q, verifier, quiet), httpapi.OutboundRoute(q, verifier, quiet))
	r.api = httptest.NewServer(mux)
	t.Cleanup(r.api.Close)

	// A connected tenant with its FR address, set as the seller's
	// forwarding address and approved under Messaging Permissions.
	r.tenant = testenv.ID("reply")
	if _, err := pool.Exec(ctx, `SELECT keybuzz_dev.connection($1, 'CONNECTED', 'eu', $2)`,
		r.tenant, frMarketplace); err != nil {
		t.Fatal(err)
	}
	addrs, err := mailaddress.NewAddresses(r.store, domain).Provision(ctx, r.tenant, []string{frMarketplace})
	if err != nil || len(addrs) != 1 {
		t.Fatalf("addresses: %v %v", addrs, err)
	}
	r.from = addrs[0].EmailAddress
	if r.token, err = auth.Issue(secretKey, "i", "a", "tenantId", r.tenant, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	r.seller = r.sb.Sellers()[0].ID
	if r.orderID, err = r.sb.AddOrder(r.seller, frMarketplace, false); err != nil {
		t.Fatal(err)
	}
	r.sb.SetForwarding(r.seller, r.from)
	r.sb.SetApprovedSenders(r.seller, frMarketplace, []string{r.from})

	// The buyer writes; the mail becomes a ticket.
	msg, err := r.sb.SendBuyerMessage(r.seller, sandbox.BuyerMessage{OrderID: r.orderID, Text: "Bonjour, où est mon colis ?"})
	if err != nil {
		t.Fatal(err)
	}
	r.buyerID = "<" + msg.MessageID + ">"
	r.eventually(10*time.Second, "the buyer's mail becomes a ticket", func() bool {
		return pool.QueryRow(ctx, `SELECT "ticketId" FROM "ExternalMessage" WHERE "tenantId" = $1 AND "orderId" = $2 LIMIT 1`, r.tenant, r.orderID).Scan(&r.ticket) == nil
	})
	return r
}

func (r *rig) eventually(d time.Duration, what string, ok func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			r.t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rig) post(text, key string) (int, map[string]any) {
	r.t.Helper()
	body, _ := json.Marshal(map[string]string{"message": text})
	req, _ := http.NewRequest("POST", r.api.URL+"/api/v1/marketplaces/amazon/tickets/"+r.ticket+"/send-reply", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+r.token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (r *rig) outbound() []reply.Outbound {
	r.t.Helper()
	req, _ := http.NewRequest("GET", r.api.URL+"/api/v1/marketplaces/amazon/tickets/"+r.ticket+"/outbound", nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Messages []reply.Outbound `json:"messages"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
		r.t.Fatalf("outbound: %d", resp.StatusCode)
	}
	return out.Messages
}

func (r *rig) status(id string) reply.Outbound {
	for _, o := range r.outbound() {
		if o.ID == id {
			return o
		}
	}
	r.t.Fatalf("reply %s not listed", id)
	return reply.Outbound{}
}

// TestRoundTrip: buyer writes -> ticket -> the agent replies -> the buyer's
// inbox shows it from the tenant's FR address, threaded to the buyer's
// mail; outbound says SENT with SES's id. Then, with the address no
// longer approved, Amazon's notice fails the next reply with its reason,
// an internal note, and the address flagged for approval.
func TestRoundTrip(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	start := time.Now()
	st, m := r.post("Bonjour Camille,\nvotre colis part demain.\nCordialement", "")
	if st != 202 || m["status"] != "PENDING" || m["message"] != "Reply queued for sending" {
		t.Fatalf("send-reply: %d %v", st, m)
	}
	id := m["jobId"].(string)
	var inbox []sandbox.BuyerMail
	r.eventually(10*time.Second, "the reply in the buyer's inbox", func() bool {
		inbox = r.sb.BuyerInbox(r.seller)
		return len(inbox) == 1
	})
	got := inbox[0]
	t.Logf("API accepted -> buyer inbox: %s", time.Since(start))
	if got.From != r.from || got.InReplyTo != r.buyerID || got.OrderID != r.orderID || !strings.HasPrefix(got.Subject, "Re: ") ||
		got.Text != "Bonjour Camille,\nvotre colis part demain.\nCordialement" {
		t.Fatalf("buyer inbox %+v (want from %s, in reply to %s)", got, r.from, r.buyerID)
	}
	r.eventually(10*time.Second, "SENT with SES's id, delivered", func() bool {
		o := r.status(id)
		var state string
		_ = r.pool.QueryRow(ctx, `SELECT "state" FROM keybuzz_amazon."Reply" WHERE "id" = $1`, id).Scan(&state)
		return o.Status == "SENT" && o.ProviderMessageID != nil && strings.HasPrefix(*o.ProviderMessageID, "0102") && state == reply.StateDelivered
	})

	// Not approved any more: Amazon refuses and says so by mail.
	r.sb.SetApprovedSenders(r.seller, frMarketplace, nil)
	st, m = r.post("Une autre réponse", "")
	if st != 202 {
		t.Fatalf("send-reply: %d %v", st, m)
	}
	id2 := m["jobId"].(string)
	// The notice travels sandbox -> SMTP -> S3 + SNS -> SQS -> the mail
	// intake; a long poll of the emulator that misses its wake-up returns
	// after its 20 s wait, so the bound is above it.
	r.eventually(45*time.Second, "the reply FAILED with Amazon's reason", func() bool {
		o := r.status(id2)
		return o.Status == "FAILED" && o.Error != nil && strings.Contains(*o.Error, "Messaging Permissions")
	})
	if len(r.sb.BuyerInbox(r.seller)) != 1 {
		t.Fatal("the refused reply reached the buyer")
	}
	var notes int
	_ = r.pool.QueryRow(ctx, `SELECT count(*) FROM "TicketMessage" WHERE "ticketId" = $1 AND "senderType" = 'SYSTEM' AND "isInternal"
		AND "body" LIKE '%Messaging Permissions%'`, r.ticket).Scan(&notes)
	if notes != 1 {
		t.Fatalf("%d internal notes", notes)
	}
	// The status route's flow tells, per inbound address, what to approve.
	status, err := connect.NewStatus(r.store, connect.StatusConfig{SenderApprovals: r.store}).Run(ctx, r.tenant)
	if err != nil || !strings.Contains(status.ReplyApprovalNeeded[strings.ToLower(r.from)], "Messaging Permissions") {
		t.Fatalf("status: approval needed %v, %v", status.ReplyApprovalNeeded, err)
	}
}

// TestReplyLatency measures API accepted -> SES accepted -> buyer inbox
// over REPLY_LATENCY_N replies (default 20) sent one after another.
func TestReplyLatency(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	n := 20
	if v := os.Getenv("REPLY_LATENCY_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	var toSES, toInbox []time.Duration
	for i := 0; i < n; i++ {
		st, m := r.post(fmt.Sprintf("Réponse numéro %d", i), "")
		if st != 202 {
			t.Fatalf("send-reply: %d %v", st, m)
		}
		accepted := time.Now()
		id := m["jobId"].(string)
		r.eventually(10*time.Second, "in the buyer's inbox", func() bool { return len(r.sb.BuyerInbox(r.seller)) == i+1 })
		inbox := r.sb.BuyerInbox(r.seller)[i]
		// SES relays as it answers: the sender may record SES's answer
		// just after the buyer has the mail.
		var sesAt *time.Time
		r.eventually(5*time.Second, "SES's answer recorded", func() bool {
			return r.pool.QueryRow(ctx, `SELECT "acceptedAt" FROM keybuzz_amazon."Reply" WHERE "id" = $1`, id).Scan(&sesAt) == nil && sesAt != nil
		})
		toSES = append(toSES, sesAt.Sub(accepted))
		toInbox = append(toInbox, inbox.ReceivedAt.Sub(accepted))
	}
	p := func(l []time.Duration, q float64) time.Duration {
		s := append([]time.Duration(nil), l...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[min(len(s)-1, int(float64(len(s))*q))]
	}
	t.Logf("replies=%d  API accepted -> SES accepted p50=%s p99=%s  API accepted -> buyer inbox p50=%s p99=%s",
		n, p(toSES, .5), p(toSES, .99), p(toInbox, .5), p(toInbox, .99))
}
