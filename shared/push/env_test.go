package push_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sellertest"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsvisibility"
)

// t0 is the sandbox's and the store's clock at the start of every test.
var t0 = sellertest.T0

// env is one test's world (sellertest.World: a fresh database, the real
// Vault, an in-process sandbox, on one manual clock), the SQS emulator with
// a queue of the test's own that the sandbox delivers to, and the push flow
// and the poller wired as the functions wire them.
type env struct {
	*sellertest.World
	secrets  *credcache.Cache
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
	e := &env{}
	endpoint := testenv.Env(t, "AWS_ENDPOINT_URL_SQS")
	e.sqs = sqs.New(sqs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	e.queueURL, e.queueARN = testenv.Queue(t, e.sqs, testenv.ID("push-test"), map[string]string{"VisibilityTimeout": "2"})

	cfg := sandbox.DefaultConfig()
	cfg.Deliver = sandbox.SQSDelivery(endpoint)
	e.World = sellertest.Start(t, cfg, &http.Client{Timeout: 5 * time.Second})
	e.secrets = credcache.New(e.Vault, credcache.WithTTL(time.Minute), credcache.WithClock(e.Clock.Now))
	e.api = spapi.New(spapi.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	e.wire(e.queueARN)
	return e
}

// wire builds the push flow and the poller for queueARN, as the functions'
// mains do.
func (e *env) wire(queueARN string) {
	gw := e.gateway()
	source := poll.NewAmazonSource(gw, e.api, poll.WithClock(e.Clock.Now))
	e.dest = push.NewDestinations(e.Store, e.secrets, e.api, gw, queueARN)
	e.subscriber = push.NewSubscriber(e.Store, e.dest, gw, push.WithRetryAfter(10*time.Minute), push.WithLogger(quiet()))
	e.intake = push.NewIntake(e.Store, gw, push.WithClock(e.Clock.Now), push.WithLogger(quiet()), push.WithUnsubscriber(e.subscriber))
	e.poller = poll.NewPoller(e.Store, source,
		poll.WithConfig(poll.Config{Interval: time.Minute, FallbackInterval: 15 * time.Minute, Lookback: 2 * 24 * time.Hour}), poll.WithClock(e.Clock.Now), poll.WithLogger(quiet()),
		poll.WithSubscriber(e.subscriber))
}

// gateway is a seller gateway of its own (a container's token cache)
// against the sandbox.
func (e *env) gateway() *sellerapi.Gateway {
	return sellerapi.New(e.secrets, e.LWA, e.api, e.Store, sellerapi.WithEndpoint(e.SBURL), sellerapi.WithLogger(quiet()))
}

// drain hands what the queue holds to the intake, as Lambda's event source
// mapping does, until a receive waiting wait seconds comes back empty.
func (e *env) drain(wait int32) (records, failed int) {
	e.T.Helper()
	c := localpoll.Consumer{SQS: e.sqs, QueueURL: e.queueURL, Handler: sqsbatch.Handler(e.intake, sqsbatch.WithDelayer(sqsvisibility.New(e.sqs))), Log: quiet(), Name: "ordernotify"}
	records, failed, err := c.Drain(context.Background(), wait)
	if err != nil {
		e.T.Fatalf("drain: %v", err)
	}
	return records, failed
}

// waitDelivered waits (real time, bounded) until the sandbox has sent n
// notifications in all, so that a drain sees them.
func (e *env) waitDelivered(n int) {
	e.T.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.SB.NotificationStats()
		if st.Sent+st.Failed >= n {
			if st.Failed > 0 {
				e.T.Fatalf("sandbox failed %d deliveries: %+v", st.Failed, st)
			}
			return
		}
		if time.Now().After(deadline) {
			e.T.Fatalf("sandbox delivered %+v, want %d sent", st, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// seller is a sandbox seller connected as a tenant.
type seller = sellertest.Seller

// connect connects sandbox seller n (sellertest.World.Connect) with its
// secret written through the credential cache.
func (e *env) connect(n int) seller { return e.Connect(n, e.secrets) }

// pushing is sandbox seller n connected, subscribed as the callback does
// and polled once (the poll that starts its sync): push now serves it.
func (e *env) pushing(n int) seller {
	e.T.Helper()
	s := e.connect(n)
	e.onConnected(s)
	e.poll(s)
	return s
}

func (e *env) onConnected(s seller) {
	e.subscriber.OnConnected(context.Background(), marketplace.Connection{ID: s.ConnectionID, TenantID: s.TenantID})
}

func (e *env) poll(s seller) poll.Result {
	e.T.Helper()
	res, err := e.poller.PollResult(context.Background(), pollqueue.Message{TenantID: s.TenantID, ConnectionID: s.ConnectionID, EnqueuedAt: e.Clock.Now()})
	if err != nil {
		e.T.Fatalf("poll: %v", err)
	}
	return res
}

// stored is what the database holds for a connection: externalId -> body
// (sellertest.World.Bodies), their count and the tenant's tickets.
type stored struct {
	bodies            map[string]string
	messages, tickets int
}

func (e *env) stored(s seller) stored {
	e.T.Helper()
	bodies := e.Bodies(s)
	tickets, _ := e.Tickets(s)
	return stored{bodies: bodies, messages: len(bodies), tickets: tickets}
}

func (e *env) outcomes() map[string]int {
	e.T.Helper()
	out := map[string]int{}
	rows, err := e.Pool.Query(context.Background(), `SELECT "outcome", count(*) FROM keybuzz_amazon."Notification" GROUP BY 1`)
	if err != nil {
		e.T.Fatal(err)
	}
	for rows.Next() {
		var o string
		var n int
		rows.Scan(&o, &n)
		out[o] = n
	}
	return out
}
