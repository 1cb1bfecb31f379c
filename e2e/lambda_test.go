// Package e2e runs the real bootstraps the way Lambda runs them: each is
// built for Linux, started under aws-lambda-rie and invoked with its event
// from events/, against the services `make test` starts: Connect (with the
// ORDER_CHANGE subscription and the inbound addresses), polling, a pushed
// notification, a relay mail through the SMTP receiver, and disconnect.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/dev/rie"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// oauthlogin serves the same adapter as oauthstart (tested in shared/httpapi).
var functions = []string{"oauthstart", "oauthcallback", "status", "pollfanout", "polltenant", "ordernotify", "inboundmail", "disconnect"}

func TestBootstrapsUnderLambdaEmulator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// An Amazon sandbox of this test's own (the stack's app credentials in
	// Vault are the sandbox defaults), a fresh database and a fresh queue.
	// It delivers ORDER_CHANGE notifications to a notifications queue of
	// this test's own on the SQS emulator; a mail queue of its own is
	// subscribed to the stack's mail topic (the SMTP receiver publishes
	// there, as SES's receipt rule does).
	sbCfg := sandbox.DefaultConfig()
	sbCfg.Deliver = sandbox.SQSDelivery(testenv.Env(t, "AWS_ENDPOINT_URL_SQS"))
	sb, sbURL := sandboxtest.Start(t, sbCfg)
	dbURL := testenv.DatabaseURL(t)
	queueURL, _ := createQueue(ctx, t, "e2e")
	notifyURL, notifyARN := createQueue(ctx, t, "e2e-notify")
	mailURL := mailQueue(ctx, t)
	env := []string{
		"DATABASE_URL=" + dbURL, "POLL_QUEUE_URL=" + queueURL, "FRONTEND_RETURN_URL=",
		"AMAZON_LWA_TOKEN_URL=" + sbURL + "/auth/o2/token", "AMAZON_SPAPI_ENDPOINT=" + sbURL,
		"AMAZON_SELLER_CENTRAL_URL=" + sbURL, "AMAZON_USE_MOCK=false", "NOTIFICATIONS_QUEUE_ARN=" + notifyARN,
	}

	dir := t.TempDir()
	inst := map[string]*rie.Instance{}
	for _, fn := range functions {
		bin := filepath.Join(dir, fn, "bootstrap")
		if err := rie.Build(ctx, "../functions/"+fn, bin); err != nil {
			t.Fatalf("build %s: %v", fn, err)
		}
		in, err := rie.Start(ctx, bin, env)
		if err != nil {
			t.Fatalf("start %s under aws-lambda-rie: %v", fn, err)
		}
		t.Cleanup(func() {
			in.Close()
			if t.Failed() {
				t.Logf("%s logs:\n%s", fn, in.Logs())
			}
		})
		inst[fn] = in
	}

	tenant, failing := testenv.ID("tenant"), testenv.ID("tenant")

	// oauthstart with the authorizer's claims for our tenant.
	startEvt := apiEvent(t, "oauthstart.json", tenant, "")
	res := invokeHTTP(ctx, t, inst["oauthstart"], startEvt)
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Headers["Content-Type"], "application/json") {
		t.Fatalf("oauthstart: %d %v %s", res.StatusCode, res.Headers, res.Body)
	}
	var started struct{ AuthURL string }
	mustJSON(t, res.Body, &started)
	binding := bindingCookie(t, res)

	// The seller approves on the sandbox's consent page; the callback Lambda
	// gets Amazon's redirect.
	connect := func(tenantID string, seller int, authURL, binding string) {
		q := sandboxtest.Approve(t, authURL, sandbox.SellerID(seller))
		evt := apiEvent(t, "oauthcallback.json", "", q.Encode(), binding)
		res := invokeHTTP(ctx, t, inst["oauthcallback"], evt)
		if res.StatusCode != http.StatusOK || !strings.Contains(res.Body, `"success":true`) {
			t.Fatalf("oauthcallback %s: %d %s", tenantID, res.StatusCode, res.Body)
		}
		if res.Headers["Referrer-Policy"] != "no-referrer" {
			t.Errorf("callback headers %v", res.Headers)
		}
	}
	connect(tenant, 2, started.AuthURL, binding)
	res = invokeHTTP(ctx, t, inst["oauthstart"], apiEvent(t, "oauthstart.json", failing, ""))
	mustJSON(t, res.Body, &started)
	connect(failing, 3, started.AuthURL, bindingCookie(t, res))

	res = invokeHTTP(ctx, t, inst["status"], apiEvent(t, "status.json", tenant, ""))
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Body, `"connected":true`) || !strings.Contains(res.Body, `"status":"CONNECTED"`) {
		t.Fatalf("status: %d %s", res.StatusCode, res.Body)
	}
	// The callback subscribed the connection to ORDER_CHANGE and gave the
	// tenant its inbound addresses.
	var status struct {
		Push         bool    `json:"push"`
		InboundEmail *string `json:"inboundEmail"`
	}
	mustJSON(t, res.Body, &status)
	if !status.Push || status.InboundEmail == nil || *status.InboundEmail == "" {
		t.Fatalf("status after connect: push %v, inboundEmail %v: %s", status.Push, status.InboundEmail, res.Body)
	}

	// pollfanout enqueues both connections.
	out, err := inst["pollfanout"].Invoke(ctx, readEvent(t, "pollfanout.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fan poll.FanoutResult
	mustJSON(t, string(out), &fan)
	if fan.Claimed != 2 || fan.Sent != 2 || fan.Failed != 0 {
		t.Fatalf("pollfanout: %s", out)
	}
	msgs := receive(ctx, t, queueURL, 2)

	// polltenant gets both records; the second seller's SP-API fails (503),
	// so only its record is reported as a batch item failure.
	sb.InjectFault(sandbox.SellerID(3), sandbox.Fault{Kind: "503", Count: 50})
	var batch events.SQSEvent
	mustJSON(t, string(readEvent(t, "polltenant.json")), &batch)
	batch.Records = batch.Records[:2]
	var failingID string
	for i, m := range msgs {
		var body pollqueue.Message
		mustJSON(t, aws.ToString(m.Body), &body)
		batch.Records[i].Body = aws.ToString(m.Body)
		batch.Records[i].MessageId = aws.ToString(m.MessageId)
		if body.TenantID == failing {
			failingID = batch.Records[i].MessageId
		}
	}
	raw, _ := json.Marshal(batch)
	out, err = inst["polltenant"].Invoke(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.SQSEventResponse
	mustJSON(t, string(out), &resp)
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != failingID {
		t.Fatalf("polltenant batch item failures %s, want only %s", out, failingID)
	}

	// Tickets for the first tenant: one per order with a buyer cancellation
	// request in the look-back window, each with its message.
	var tickets, messages, external int
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	db.QueryRow(ctx, `SELECT (SELECT count(*) FROM "Ticket" WHERE "tenantId" = $1),
		(SELECT count(*) FROM "TicketMessage" WHERE "tenantId" = $1),
		(SELECT count(*) FROM "ExternalMessage" WHERE "tenantId" = $1)`, tenant).Scan(&tickets, &messages, &external)
	want := eventsSince(sb, sandbox.SellerID(2), time.Now().Add(-7*24*time.Hour))
	if external != want || messages != want || tickets == 0 || tickets > want {
		t.Fatalf("tenant stored %d external messages, %d ticket messages, %d tickets; sandbox has %d buyer events", external, messages, tickets, want)
	}
	db.QueryRow(ctx, `SELECT count(*) FROM "ExternalMessage" WHERE "tenantId" = $1`, failing).Scan(&external)
	if external != 0 {
		t.Errorf("failing tenant stored %d messages", external)
	}

	// Push: a buyer asks to cancel a new order; the sandbox delivers the
	// ORDER_CHANGE notification to the queue and ordernotify stores it.
	orderID, err := sb.AddOrder(sandbox.SellerID(2), "", true)
	if err != nil {
		t.Fatal(err)
	}
	out, err = inst["ordernotify"].Invoke(ctx, sqsEvent(t, "ordernotify.json", receive(ctx, t, notifyURL, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, string(out), &resp); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("ordernotify: %s", out)
	}
	var pushed, pushedTickets int
	db.QueryRow(ctx, `SELECT (SELECT count(*) FROM "ExternalMessage" WHERE "tenantId" = $1 AND "orderId" = $2),
		(SELECT count(*) FROM "Ticket" WHERE "tenantId" = $1 AND "externalId" = $2)`, tenant, orderID).Scan(&pushed, &pushedTickets)
	if pushed != 1 || pushedTickets != 1 {
		t.Fatalf("pushed cancellation request of %s: %d messages, %d tickets, want 1 and 1", orderID, pushed, pushedTickets)
	}

	// Mail: a buyer's relay mail to the tenant's address, received over
	// SMTP, stored in S3 and announced by SNS, becomes a ticket message
	// with the buyer's words only.
	raw, err = os.ReadFile(filepath.Join("..", "testdata", "mail", "fr-fr-iso88591-qp.eml"))
	if err != nil {
		t.Fatal(err)
	}
	raw = []byte(strings.Replace(string(raw), "To: amazon.tenant-a.fr.k@inbound.example", "To: "+*status.InboundEmail, 1))
	if err := smtpses.Send(testenv.Env(t, "INBOUND_SMTP_ADDR"), "bounce@amazonses.com", []string{*status.InboundEmail}, raw); err != nil {
		t.Fatalf("SMTP: %v", err)
	}
	out, err = inst["inboundmail"].Invoke(ctx, sqsEvent(t, "inboundmail.json", receiveFor(ctx, t, mailURL, *status.InboundEmail)))
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, string(out), &resp); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("inboundmail: %s", out)
	}
	var words, buyer string
	if err := db.QueryRow(ctx, `SELECT tm."body", tk."customerName" FROM "TicketMessage" tm JOIN "Ticket" tk ON tk."id" = tm."ticketId"
		WHERE tm."tenantId" = $1 AND tm."senderType" = 'CUSTOMER' AND tk."externalId" = '402-3456789-1234567'`, tenant).Scan(&words, &buyer); err != nil {
		t.Fatalf("the relay mail's ticket message: %v", err)
	}
	if !strings.Contains(words, "je n'ai toujours pas reçu ma commande") || strings.Contains(words, "Amazon") || buyer != "Amélie Poulain" {
		t.Fatalf("relay mail stored as %q from %q, want the buyer's words only, from Amélie Poulain", words, buyer)
	}

	// Disconnect: DISABLED, the subscription gone, the tickets kept.
	res = invokeHTTP(ctx, t, inst["disconnect"], apiEvent(t, "disconnect.json", tenant, ""))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("disconnect: %d %s", res.StatusCode, res.Body)
	}
	var state string
	db.QueryRow(ctx, `SELECT "status"::text FROM "MarketplaceConnection" WHERE "tenantId" = $1`, tenant).Scan(&state)
	db.QueryRow(ctx, `SELECT count(*) FROM "Ticket" WHERE "tenantId" = $1`, tenant).Scan(&tickets)
	if state != "DISABLED" || tickets == 0 {
		t.Fatalf("after disconnect: status %q, %d tickets", state, tickets)
	}
	if subs := sb.Subscriptions(sandbox.SellerID(2)); len(subs) != 0 {
		t.Fatalf("after disconnect the seller still has subscriptions %v", subs)
	}
}

// sqsEvent is the named SQS event with its records replaced by msgs, as
// Lambda's event source mapping hands them over.
func sqsEvent(t *testing.T, name string, msgs []types.Message) []byte {
	t.Helper()
	var batch events.SQSEvent
	mustJSON(t, string(readEvent(t, name)), &batch)
	tmpl := batch.Records[0]
	batch.Records = nil
	for _, m := range msgs {
		r := tmpl
		r.Body, r.MessageId = aws.ToString(m.Body), aws.ToString(m.MessageId)
		batch.Records = append(batch.Records, r)
	}
	raw, _ := json.Marshal(batch)
	return raw
}

func eventsSince(sb *sandbox.Server, seller string, since time.Time) int {
	n := 0
	for _, e := range sb.BuyerEvents(seller) {
		if !e.At.Before(since) {
			n++
		}
	}
	return n
}

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// apiEvent loads an API Gateway v2 event and points it at tenant (the
// authorizer's claims and a matching Bearer token) or sets its query.
// bindingCookie is the browser binding an oauthstart answer sets, as the
// "name=value" a browser sends back (API Gateway: over https, __Host-).
func bindingCookie(t *testing.T, res events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	all := append([]string{}, res.Cookies...)
	all = append(all, res.MultiValueHeaders["Set-Cookie"]...)
	if h := res.Headers["Set-Cookie"]; h != "" {
		all = append(all, h)
	}
	for _, c := range all {
		if strings.HasPrefix(c, "__Host-kb_amazon_binding=") && strings.Contains(c, "Secure") {
			return strings.SplitN(c, ";", 2)[0]
		}
	}
	t.Fatalf("oauthstart set no __Host- binding cookie: %v %v", res.Cookies, res.Headers)
	return ""
}

// apiEvent is the named event with the tenant's Bearer token and
// authorizer claims, a query, and the cookies a browser would send.
func apiEvent(t *testing.T, name, tenant, rawQuery string, cookies ...string) []byte {
	t.Helper()
	var e events.APIGatewayV2HTTPRequest
	mustJSON(t, string(readEvent(t, name)), &e)
	if len(cookies) > 0 {
		e.Cookies = cookies
	}
	if tenant != "" {
		tok, err := auth.Issue(secret.Value(testenv.Env(t, "AUTH_JWT_HS256_SECRET")), testenv.Env(t, "AUTH_JWT_ISSUER"),
			testenv.Env(t, "AUTH_JWT_AUDIENCE"), "tenantId", tenant, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.Headers["authorization"] = "Bearer " + tok
		if e.RequestContext.Authorizer == nil || e.RequestContext.Authorizer.JWT == nil {
			t.Fatalf("%s has no authorizer claims", name)
		}
		claims := e.RequestContext.Authorizer.JWT.Claims
		claims["tenantId"] = tenant
		claims["iss"] = testenv.Env(t, "AUTH_JWT_ISSUER")
		claims["aud"] = testenv.Env(t, "AUTH_JWT_AUDIENCE")
		claims["exp"] = fmt.Sprint(time.Now().Add(time.Hour).Unix())
	}
	if rawQuery != "" {
		q, _ := url.ParseQuery(rawQuery)
		e.RawQueryString = rawQuery
		e.QueryStringParameters = map[string]string{}
		for k := range q {
			e.QueryStringParameters[k] = q.Get(k)
		}
	}
	b, _ := json.Marshal(e)
	return b
}

func invokeHTTP(ctx context.Context, t *testing.T, in *rie.Instance, event []byte) events.APIGatewayV2HTTPResponse {
	t.Helper()
	out, err := in.Invoke(ctx, event)
	if err != nil {
		t.Fatal(err)
	}
	var res events.APIGatewayV2HTTPResponse
	mustJSON(t, string(out), &res)
	return res
}

// createQueue makes a queue of this test's own and returns its URL and ARN.
func createQueue(ctx context.Context, t *testing.T, prefix string) (string, string) {
	t.Helper()
	testenv.Env(t, "AWS_ENDPOINT_URL_SQS")
	client, err := pollsender.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(testenv.ID(prefix))})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	t.Cleanup(func() { _, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("queue arn: %v", err)
	}
	return aws.ToString(out.QueueUrl), attrs.Attributes[string(types.QueueAttributeNameQueueArn)]
}

// mailQueue is a queue of this test's own subscribed to the stack's mail
// topic, as the mail queue is.
func mailQueue(ctx context.Context, t *testing.T) string {
	t.Helper()
	url, arn := createQueue(ctx, t, "e2e-mail")
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	client := sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = aws.String(testenv.Env(t, "AWS_ENDPOINT_URL_SNS")) })
	sub, err := client.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(testenv.Env(t, "MAIL_TOPIC_ARN")),
		Protocol: aws.String("sqs"), Endpoint: aws.String(arn)})
	if err != nil {
		t.Fatalf("subscribe the mail queue: %v", err)
	}
	t.Cleanup(func() {
		_, _ = client.Unsubscribe(context.Background(), &sns.UnsubscribeInput{SubscriptionArn: sub.SubscriptionArn})
	})
	return url
}

func receive(ctx context.Context, t *testing.T, queueURL string, n int) []types.Message {
	t.Helper()
	client, err := pollsender.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// What the sandbox and the SMTP receiver deliver arrives asynchronously:
	// wait for it, within a bound.
	var got []types.Message
	for deadline := time.Now().Add(30 * time.Second); len(got) < n; {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(out.Messages) == 0 && time.Now().After(deadline) {
			t.Fatalf("queue has %d of %d messages after 30 s", len(got), n)
		}
		got = append(got, out.Messages...)
	}
	if len(got) != n {
		t.Fatalf("queue has %d messages, want %d", len(got), n)
	}
	return got
}

// receiveFor waits for the message on queueURL that names rcpt: the mail
// topic also carries the mails other packages' tests send meanwhile.
func receiveFor(ctx context.Context, t *testing.T, queueURL, rcpt string) []types.Message {
	t.Helper()
	client, err := pollsender.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		for _, m := range out.Messages {
			if strings.Contains(aws.ToString(m.Body), rcpt) {
				return []types.Message{m}
			}
		}
	}
	t.Fatalf("no message for %s on the mail queue after 30 s", rcpt)
	return nil
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %T from %.300s: %v", v, s, err)
	}
}
