// Package pushbench measures push against polling on the local stack's real
// services (PostgreSQL, Vault, the SQS emulator, the Amazon sandbox):
//
//	make stack && .local/bin/stack run --profile test -- \
//	    go test -run '^$' -bench . -benchtime 1x ./bench/push/
//
// BenchmarkFreshness: a buyer's cancellation request -> its ticket, p50 and
// p99, by push (wall clock: the sandbox delivers to SQS, a consumer hands
// batches to the real intake, which calls getOrder and stores) and by
// polling (simulated time on a manual clock: the real poller on its
// schedule, with searchOrders' window ending two minutes before now and
// its rate budget).
//
// BenchmarkTenantHour: one simulated hour of tenants with buyer
// cancellation requests, without push (polled every
// MARKETPLACE_POLL_INTERVAL_SECONDS) and with push (polled every
// POLL_FALLBACK_INTERVAL_SECONDS): Lambda invocations (polltenant records,
// ordernotify records) and SP-API calls (counted by the sandbox) per
// tenant-hour.
//
// Results go to the benchmark's log and to bench/push/results.md.
package pushbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
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
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

const (
	pollInterval     = 60 * time.Second
	fallbackInterval = 900 * time.Second
)

var (
	resultsMu sync.Mutex
	results   = map[string]string{}
)

func record(b *testing.B, name, line string) {
	b.Log(line)
	resultsMu.Lock()
	results[name] = line
	var keys []string
	for k := range results {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString("# Push vs poll (bench/push)\n\nWritten by `go test -run '^$' -bench . -benchtime 1x ./bench/push/` under `stack run --profile test`; only what the last run measured.\n\n")
	for _, k := range keys {
		sb.WriteString("- " + results[k] + "\n")
	}
	resultsMu.Unlock()
	_ = os.WriteFile("results.md", []byte(sb.String()), 0o644)
}

type world struct {
	b        *testing.B
	clock    sandbox.Clock
	manual   *sandbox.ManualClock
	now      func() time.Time
	sb       *sandbox.Server
	sbURL    string
	pool     *pgxpool.Pool
	store    *postgres.Store
	secrets  *credcache.Cache
	lwa      *lwa.Client
	api      *spapi.Client
	sqs      *sqs.Client
	queueURL string
	queueARN string
	amazon   *poll.AmazonSource
	sub      *push.Subscriber
	intake   *push.Intake
}

func quiet() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

func newWorld(b *testing.B, manual bool) *world {
	w := &world{b: b}
	if manual {
		w.manual = sandbox.NewManualClock(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
		w.clock, w.now = w.manual, w.manual.Now
	} else {
		w.now = time.Now
	}
	endpoint := testenv.Env(b, "AWS_ENDPOINT_URL_SQS")
	w.sqs = sqs.New(sqs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(endpoint), Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	ctx := context.Background()
	q, err := w.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(testenv.ID("push-bench")), Attributes: map[string]string{"VisibilityTimeout": "2"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.sqs.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) })
	w.queueURL = aws.ToString(q.QueueUrl)
	a, err := w.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []types.QueueAttributeName{"QueueArn"}})
	if err != nil {
		b.Fatal(err)
	}
	w.queueARN = a.Attributes["QueueArn"]

	cfg := sandbox.DefaultConfig()
	cfg.Clock = w.clock
	cfg.Sellers = 8
	cfg.Deliver = sandbox.SQSDelivery(endpoint)
	w.sb, w.sbURL = sandboxtest.Start(b, cfg)
	w.pool, _ = testenv.Pool(b)
	w.store = postgres.New(w.pool, w.now)
	vault := vaultstore.New(testenv.Vault(b), "secret", "keybuzz/test/"+testenv.ID("app"))
	if err := vault.PutApp(ctx, marketplace.AppCredentials{ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret),
		ApplicationID: cfg.ApplicationID, Region: "eu", Draft: true}); err != nil {
		b.Fatal(err)
	}
	w.secrets = credcache.New(vault, time.Minute, w.now)
	w.lwa = lwa.New(w.sbURL+"/auth/o2/token", nil)
	w.api = spapi.New(nil)
	w.amazon = poll.NewAmazonSource(w.secrets, w.lwa, w.api, w.store, poll.AmazonConfig{Endpoint: w.sbURL}, w.now, quiet())
	dest := push.NewDestinations(w.store, w.secrets, w.api, w.lwa, w.queueARN, w.sbURL)
	w.sub = push.NewSubscriber(w.store, dest, w.amazon, w.secrets, w.api, w.sbURL, 0, quiet())
	w.intake = push.NewIntake(w.store, w.amazon, w.now, quiet(), nil)
	return w
}

type tenant struct {
	n                              int
	seller, tenantID, connectionID string
}

// connect authorizes sandbox seller n and stores a CONNECTED connection.
func (w *world) connect(n int) tenant {
	ctx := context.Background()
	t := tenant{n: n, seller: sandbox.SellerID(n), tenantID: testenv.ID("tenant")}
	cfg := sandbox.DefaultConfig()
	q := url.Values{"application_id": {cfg.ApplicationID}, "state": {"s"}, "version": {"beta"}, "sandbox_seller": {t.seller}, "sandbox_auto_approve": {"true"}}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(w.sbURL + "/apps/authorize/consent?" + q.Encode())
	if err != nil {
		w.b.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	tok, err := w.lwa.Exchange(ctx, lwa.App{ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret)}, secret.Value(loc.Query().Get("spapi_oauth_code")))
	if err != nil {
		w.b.Fatal(err)
	}
	var mps []string
	for _, s := range w.sb.Sellers() {
		if s.ID == t.seller {
			mps = s.MarketplaceIDs
		}
	}
	path, err := w.secrets.PutTenant(ctx, t.tenantID, marketplace.TenantCredentials{RefreshToken: tok.RefreshToken, SellerID: t.seller, MarketplaceID: strings.Join(mps, ","), Region: "eu"})
	if err != nil {
		w.b.Fatal(err)
	}
	if err := w.pool.QueryRow(ctx, `
INSERT INTO "MarketplaceConnection" ("tenantId", "status", "region", "marketplaceId", "sellingPartnerId", "vaultPath", "connectedAt", "nextPollAt")
VALUES ($1, 'CONNECTED', 'eu', $2, $3, $4, $5, $5) RETURNING "id"`, t.tenantID, strings.Join(mps, ","), t.seller, path, w.now()).Scan(&t.connectionID); err != nil {
		w.b.Fatal(err)
	}
	return t
}

func (w *world) poller(withPush bool) *poll.Poller {
	p := poll.NewPoller(w.store, w.amazon, poll.Config{Interval: pollInterval, FallbackInterval: fallbackInterval, Lookback: 24 * time.Hour}, w.now, quiet(), nil)
	if withPush {
		p.WithSubscriber(w.sub)
	}
	return p
}

// consumer feeds the intake from the queue, counting the records handed
// to it (an upper bound of ordernotify's invocations: Lambda batches up to
// 10 records per invocation).
func (w *world) consumer(records *atomic.Int64) localpoll.Consumer {
	h := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		records.Add(int64(len(ev.Records)))
		return w.intake.HandleSQS(ctx, ev)
	}
	return localpoll.Consumer{SQS: w.sqs, QueueURL: w.queueURL, Log: quiet(), Name: "ordernotify", Handler: h}
}

// storedAt is when each of the tenant's events was stored (store time).
func (w *world) storedAt(t tenant) map[string]time.Time {
	rows, err := w.pool.Query(context.Background(), `SELECT "externalId", "createdAt" FROM "ExternalMessage" WHERE "connectionId" = $1`, t.connectionID)
	if err != nil {
		w.b.Fatal(err)
	}
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at time.Time
		rows.Scan(&id, &at)
		out[id] = at
	}
	return out
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// BenchmarkFreshness measures action -> ticket by push (wall clock) and by
// polling (simulated clock).
func BenchmarkFreshness(b *testing.B) {
	const samples = 40
	ctx := context.Background()
	b.Run("push", func(b *testing.B) {
		w := newWorld(b, false)
		t := w.connect(1)
		w.sub.OnConnected(ctx, marketplace.Connection{ID: t.connectionID, TenantID: t.tenantID})
		if _, err := w.poller(true).PollResult(ctx, pollqueue.Message{TenantID: t.tenantID, ConnectionID: t.connectionID}); err != nil {
			b.Fatal(err)
		}
		var records atomic.Int64
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go w.consumer(&records).Run(cctx)
		var lat []time.Duration
		for i := 0; i < samples; i++ {
			start := time.Now()
			orderID, err := w.sb.AddOrder(t.seller, "", true)
			if err != nil {
				b.Fatal(err)
			}
			for {
				var n int
				w.pool.QueryRow(ctx, `SELECT count(*) FROM "ExternalMessage" WHERE "connectionId" = $1 AND "orderId" = $2`, t.connectionID, orderID).Scan(&n)
				if n > 0 {
					break
				}
				if time.Since(start) > 30*time.Second {
					b.Fatalf("order %s: no ticket after 30 s", orderID)
				}
				time.Sleep(2 * time.Millisecond)
			}
			lat = append(lat, time.Since(start))
			time.Sleep(100 * time.Millisecond) // within getOrder's budget (0.5/s after a burst of 30)
		}
		record(b, "1-freshness-push", fmt.Sprintf("freshness by push (wall clock, %d requests, SQS emulator + real intake + getOrder): p50 %v, p99 %v",
			samples, percentile(lat, 0.5).Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond)))
	})
	b.Run("poll", func(b *testing.B) {
		w := newWorld(b, true)
		t := w.connect(1)
		p := w.poller(false)
		if _, err := p.PollResult(ctx, pollqueue.Message{TenantID: t.tenantID, ConnectionID: t.connectionID}); err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		actions := map[string]time.Time{}
		next := w.now().Add(pollInterval)
		step := 5 * time.Second
		end := w.now().Add(time.Duration(samples) * 97 * time.Second)
		due := w.now().Add(time.Duration(rng.IntN(97)) * time.Second)
		for w.now().Before(end.Add(10 * time.Minute)) {
			if w.now().After(due) && w.now().Before(end) {
				orderID, _ := w.sb.AddOrder(t.seller, "", true)
				actions[orderID] = w.now()
				due = w.now().Add(time.Duration(30+rng.IntN(134)) * time.Second)
			}
			if !w.now().Before(next) {
				res, err := p.PollResult(ctx, pollqueue.Message{TenantID: t.tenantID, ConnectionID: t.connectionID})
				if err != nil {
					b.Fatal(err)
				}
				next = res.NextPollAt
			}
			w.manual.Advance(step)
		}
		stored := w.storedAt(t)
		var lat []time.Duration
		for orderID, at := range actions {
			for ext, st := range stored {
				if strings.HasPrefix(ext, orderID+":") {
					lat = append(lat, st.Sub(at))
				}
			}
		}
		if len(lat) != len(actions) {
			b.Fatalf("%d of %d requests stored by polling", len(lat), len(actions))
		}
		record(b, "2-freshness-poll", fmt.Sprintf("freshness by polling (simulated clock, %d requests, MARKETPLACE_POLL_INTERVAL_SECONDS=60, searchOrders window ends 2 min before now, budget 0.0056/s burst 20): p50 %v, p99 %v",
			len(lat), percentile(lat, 0.5).Round(time.Second), percentile(lat, 0.99).Round(time.Second)))
	})
}

// BenchmarkTenantHour simulates one hour of tenants without and with push.
func BenchmarkTenantHour(b *testing.B) {
	const tenants, perHour = 6, 6 // cancellation requests per tenant-hour
	for _, withPush := range []bool{false, true} {
		name := map[bool]string{false: "poll-only", true: "push"}[withPush]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			w := newWorld(b, true)
			var ts []tenant
			for n := 1; n <= tenants; n++ {
				t := w.connect(n)
				if withPush {
					w.sub.OnConnected(ctx, marketplace.Connection{ID: t.connectionID, TenantID: t.tenantID})
				}
				ts = append(ts, t)
			}
			p := w.poller(withPush)
			// A first sync of every tenant (the look-back) is not counted.
			next := map[string]time.Time{}
			for _, t := range ts {
				res, err := p.PollResult(ctx, pollqueue.Message{TenantID: t.tenantID, ConnectionID: t.connectionID})
				if err != nil {
					b.Fatal(err)
				}
				next[t.connectionID] = res.NextPollAt
			}
			callsBefore := map[string]int{}
			for _, t := range ts {
				for _, c := range w.sb.Stats(t.seller).Calls {
					callsBefore[t.seller] += c
				}
			}
			start := w.now()
			rng := rand.New(rand.NewPCG(3, 4))
			plan := map[string][]time.Time{}
			for _, t := range ts {
				for i := 0; i < perHour; i++ {
					plan[t.seller] = append(plan[t.seller], start.Add(time.Duration(rng.IntN(3600))*time.Second))
				}
			}
			polls := 0
			var records atomic.Int64
			cons := w.consumer(&records)
			for w.now().Before(start.Add(time.Hour)) {
				for _, t := range ts {
					for _, at := range plan[t.seller] {
						if !at.After(w.now()) && at.After(w.now().Add(-10*time.Second)) {
							w.sb.AddOrder(t.seller, "", true)
						}
					}
					if !w.now().Before(next[t.connectionID]) {
						res, err := p.PollResult(ctx, pollqueue.Message{TenantID: t.tenantID, ConnectionID: t.connectionID})
						if err != nil {
							b.Fatal(err)
						}
						polls++
						next[t.connectionID] = res.NextPollAt
					}
				}
				if withPush {
					time.Sleep(5 * time.Millisecond)
					if _, _, err := cons.Drain(ctx, 0); err != nil {
						b.Fatal(err)
					}
				}
				w.manual.Advance(10 * time.Second)
			}
			calls := 0
			for _, t := range ts {
				for _, c := range w.sb.Stats(t.seller).Calls {
					calls += c
				}
				calls -= callsBefore[t.seller]
			}
			perTenant := func(n int) float64 { return float64(n) / tenants }
			record(b, "3-hour-"+name, fmt.Sprintf("%s, per tenant-hour (%d tenants, %d cancellation requests each, simulated hour): %.1f polltenant records, %.1f ordernotify records, %.1f SP-API calls",
				name, tenants, perHour, perTenant(polls), perTenant(int(records.Load())), perTenant(calls)))
		})
	}
}
