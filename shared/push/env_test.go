package push_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsvisibility"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// t0 is the sandbox's and the store's clock at the start of every test.
var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// env is one test's world: a fresh database, the real Vault, the SQS
// emulator with a queue of the test's own, an in-process sandbox delivering
// to it, all on one manual clock; the push flow and the poller wired as the
// functions wire them.
type env struct {
	t        *testing.T
	clock    *sandbox.ManualClock
	sb       *sandbox.Server
	sbURL    string
	pool     *pgxpool.Pool
	store    *postgres.Store
	vault    *vaultstore.Store
	secrets  *credcache.Cache
	lwa      *lwa.Client
	api      *spapi.Client
	queueURL string
	queueARN string
	sqs      *sqs.Client

	dest       *push.Destinations
	subscriber *push.Subscriber
	intake     *push.Intake
	poller     *poll.Poller
}

func quiet() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: sandbox.NewManualClock(t0)}
	endpoint := testenv.Env(t, "AWS_ENDPOINT_URL_SQS")
	e.sqs = sqs.New(sqs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	e.queueURL, e.queueARN = e.createQueue(testenv.ID("push-test"))

	cfg := sandbox.DefaultConfig()
	cfg.Clock = e.clock
	cfg.Deliver = sandbox.SQSDelivery(endpoint)
	e.sb, e.sbURL = sandboxtest.Start(t, cfg)
	e.pool, _ = testenv.Pool(t)
	e.store = postgres.New(e.pool, postgres.WithClock(e.clock.Now))
	e.vault = vaultstore.New(testenv.Vault(t), "secret", "keybuzz/test/"+testenv.ID("app"))
	e.secrets = credcache.New(e.vault, credcache.WithTTL(time.Minute), credcache.WithClock(e.clock.Now))
	if err := e.vault.PutApp(context.Background(), marketplace.AppCredentials{
		ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret), ApplicationID: cfg.ApplicationID, Region: "eu", Draft: true,
	}); err != nil {
		t.Fatalf("put app credentials: %v", err)
	}
	e.lwa = lwa.New(e.sbURL+"/auth/o2/token", lwa.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	e.api = spapi.New(spapi.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	e.wire(e.queueARN)
	return e
}

// wire builds the push flow and the poller for queueARN, as the functions'
// mains do.
func (e *env) wire(queueARN string) {
	gw := e.gateway()
	source := poll.NewAmazonSource(gw, e.api, poll.WithClock(e.clock.Now))
	e.dest = push.NewDestinations(e.store, e.secrets, e.api, gw, queueARN)
	e.subscriber = push.NewSubscriber(e.store, e.dest, gw, push.WithRetryAfter(10*time.Minute), push.WithLogger(quiet()))
	e.intake = push.NewIntake(e.store, gw, push.WithClock(e.clock.Now), push.WithLogger(quiet()), push.WithUnsubscriber(e.subscriber))
	e.poller = poll.NewPoller(e.store, source,
		poll.WithConfig(poll.Config{Interval: time.Minute, FallbackInterval: 15 * time.Minute, Lookback: 2 * 24 * time.Hour}), poll.WithClock(e.clock.Now), poll.WithLogger(quiet()),
		poll.WithSubscriber(e.subscriber))
}

// gateway is a seller gateway of its own (a container's token cache)
// against the sandbox.
func (e *env) gateway() *sellerapi.Gateway {
	return sellerapi.New(e.secrets, e.lwa, e.api, e.store, sellerapi.WithEndpoint(e.sbURL), sellerapi.WithLogger(quiet()))
}

func (e *env) createQueue(name string) (string, string) {
	e.t.Helper()
	ctx := context.Background()
	q, err := e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{"VisibilityTimeout": "2"}})
	if err != nil {
		e.t.Fatalf("create queue: %v", err)
	}
	e.t.Cleanup(func() { _, _ = e.sqs.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) })
	a, err := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []types.QueueAttributeName{"QueueArn"}})
	if err != nil {
		e.t.Fatalf("queue arn: %v", err)
	}
	return aws.ToString(q.QueueUrl), a.Attributes["QueueArn"]
}

// drain hands what the queue holds to the intake, as Lambda's event source
// mapping does, until a receive waiting wait seconds comes back empty.
func (e *env) drain(wait int32) (records, failed int) {
	e.t.Helper()
	c := localpoll.Consumer{SQS: e.sqs, QueueURL: e.queueURL, Handler: sqsbatch.Handler(e.intake, sqsbatch.WithDelayer(sqsvisibility.New(e.sqs))), Log: quiet(), Name: "ordernotify"}
	records, failed, err := c.Drain(context.Background(), wait)
	if err != nil {
		e.t.Fatalf("drain: %v", err)
	}
	return records, failed
}

// waitDelivered waits (real time, bounded) until the sandbox has sent n
// notifications in all, so that a drain sees them.
func (e *env) waitDelivered(n int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.sb.NotificationStats()
		if st.Sent+st.Failed >= n {
			if st.Failed > 0 {
				e.t.Fatalf("sandbox failed %d deliveries: %+v", st.Failed, st)
			}
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("sandbox delivered %+v, want %d sent", st, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// seller is a sandbox seller connected as a tenant.
type seller struct {
	n            int
	id           string
	tenantID     string
	connectionID string
}

// connect authorizes sandbox seller n (auto-approved consent, LWA code
// exchange), writes the tenant's Vault secret and a CONNECTED row, then
// runs the Connect hook the callback runs.
func (e *env) connect(n int) seller {
	e.t.Helper()
	ctx := context.Background()
	s := seller{n: n, id: sandbox.SellerID(n), tenantID: testenv.ID("tenant")}
	var mps []string
	for _, sl := range e.sb.Sellers() {
		if sl.ID == s.id {
			mps = sl.MarketplaceIDs
		}
	}
	cfg := sandbox.DefaultConfig()
	tok, err := e.lwa.Exchange(ctx, lwa.App{ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret)}, e.consent(s.id))
	if err != nil {
		e.t.Fatalf("exchange code: %v", err)
	}
	path, err := e.secrets.PutTenant(ctx, s.tenantID, marketplace.TenantCredentials{
		RefreshToken: tok.RefreshToken, SellerID: s.id, MarketplaceID: strings.Join(mps, ","), Region: "eu",
	})
	if err != nil {
		e.t.Fatalf("put tenant: %v", err)
	}
	e.t.Cleanup(func() { _ = e.secrets.DeleteTenant(context.Background(), s.tenantID) })
	err = e.pool.QueryRow(ctx, `
SELECT keybuzz_dev.connection($1, 'CONNECTED', 'eu', $2, $3, $4, connected_at => $5, next_poll_at => $5)`, s.tenantID, strings.Join(mps, ","), s.id, path, e.clock.Now()).Scan(&s.connectionID)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// consent is sandboxtest.Consent on the env's sandbox.
func (e *env) consent(sellerID string) secret.Value {
	e.t.Helper()
	return sandboxtest.Consent(e.t, e.sbURL, sellerID)
}

func (e *env) onConnected(s seller) {
	e.subscriber.OnConnected(context.Background(), marketplace.Connection{ID: s.connectionID, TenantID: s.tenantID})
}

func (e *env) poll(s seller) poll.Result {
	e.t.Helper()
	res, err := e.poller.PollResult(context.Background(), pollqueue.Message{TenantID: s.tenantID, ConnectionID: s.connectionID, EnqueuedAt: e.clock.Now()})
	if err != nil {
		e.t.Fatalf("poll: %v", err)
	}
	return res
}

// stored is what the database holds for a connection: externalId -> body,
// and the counts of its rows.
type stored struct {
	bodies                  map[string]string
	messages, tickets, tmsg int
}

func (e *env) stored(s seller) stored {
	e.t.Helper()
	ctx := context.Background()
	st := stored{bodies: map[string]string{}}
	rows, err := e.pool.Query(ctx, `SELECT e."externalId", tm."body" FROM public."ExternalMessage" e JOIN keybuzz_amazon."Message" m ON m."externalMessageId" = e."id"
	JOIN public."TicketMessage" tm ON tm."id" = m."ticketMessageId" WHERE e."connectionId" = $1`, s.connectionID)
	if err != nil {
		e.t.Fatal(err)
	}
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			e.t.Fatal(err)
		}
		st.bodies[id] = body
		st.messages++
	}
	e.pool.QueryRow(ctx, `SELECT count(*) FROM "Ticket" WHERE "tenantId" = $1`, s.tenantID).Scan(&st.tickets)
	e.pool.QueryRow(ctx, `SELECT count(*) FROM "TicketMessage" WHERE "tenantId" = $1`, s.tenantID).Scan(&st.tmsg)
	return st
}

// truth is the sandbox's ground truth: the external ids of the seller's
// buyer events at or after since, and their distinct orders.
func (e *env) truth(s seller, since time.Time) (map[string]sandbox.Event, int) {
	ids := map[string]sandbox.Event{}
	orders := map[string]bool{}
	for _, ev := range e.sb.BuyerEvents(s.id) {
		if ev.At.Before(since) {
			continue
		}
		ids[ev.OrderID+":"+ev.OrderItemID+":cancellation"] = ev
		orders[ev.OrderID] = true
	}
	return ids, len(orders)
}

// checkExactlyOnce fails unless the connection holds exactly the truth's
// events, each once, one ticket per order.
func (e *env) checkExactlyOnce(s seller, since time.Time) {
	e.t.Helper()
	st := e.stored(s)
	want, orders := e.truth(s, since)
	for id := range want {
		if _, ok := st.bodies[id]; !ok {
			e.t.Errorf("missing event %s", id)
		}
	}
	for id := range st.bodies {
		if _, ok := want[id]; !ok {
			e.t.Errorf("unexpected event %s", id)
		}
	}
	if st.messages != len(want) || st.tmsg != len(want) || st.tickets != orders {
		e.t.Errorf("ExternalMessage=%d TicketMessage=%d Ticket=%d, want %d %d %d", st.messages, st.tmsg, st.tickets, len(want), len(want), orders)
	}
}

func (e *env) outcomes() map[string]int {
	e.t.Helper()
	out := map[string]int{}
	rows, err := e.pool.Query(context.Background(), `SELECT "outcome", count(*) FROM keybuzz_amazon."Notification" GROUP BY 1`)
	if err != nil {
		e.t.Fatal(err)
	}
	for rows.Next() {
		var o string
		var n int
		rows.Scan(&o, &n)
		out[o] = n
	}
	return out
}
