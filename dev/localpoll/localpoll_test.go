package localpoll_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// The whole pipeline on one machine: schedule -> pollfanout -> SQS emulator
// -> polltenant (real SQS event batches) -> tickets, against the sandbox.
// make poll-once runs exactly this.
func TestPollOnceEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := sandbox.NewManualClock(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	sbCfg := sandbox.DefaultConfig()
	sbCfg.Clock = clock
	sb, sbURL := sandboxtest.Start(t, sbCfg)

	pool, _ := testenv.Pool(t)
	store := postgres.New(pool, postgres.WithClock(clock.Now))
	secrets := vaultstore.New(testenv.Vault(t), "secret", "keybuzz/test/"+testenv.ID("app"))
	if err := secrets.PutApp(ctx, marketplace.AppCredentials{ClientID: sbCfg.ClientID, ClientSecret: secret.Value(sbCfg.ClientSecret), ApplicationID: sbCfg.ApplicationID, Region: "eu"}); err != nil {
		t.Fatal(err)
	}
	client, queueURL := newQueue(t)

	// Two connected sellers and one whose secret is missing.
	type tenant struct{ id, seller, conn string }
	var tenants []tenant
	for n := 1; n <= 3; n++ {
		tn := tenant{id: testenv.ID("tenant"), seller: sandbox.SellerID(n)}
		var mps []string
		for _, s := range sb.Sellers() {
			if s.ID == tn.seller {
				mps = s.MarketplaceIDs
			}
		}
		if n < 3 {
			rt, err := sb.IssueRefreshToken(tn.seller)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := secrets.PutTenant(ctx, tn.id, marketplace.TenantCredentials{RefreshToken: secret.Value(rt), SellerID: tn.seller, MarketplaceID: strings.Join(mps, ","), Region: "eu"}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { secrets.DeleteTenant(context.Background(), tn.id) })
		}
		if err := pool.QueryRow(ctx, `SELECT keybuzz_dev.connection($1, 'CONNECTED', 'eu', $2, connected_at => $3, next_poll_at => $3)`, tn.id, strings.Join(mps, ","), clock.Now()).Scan(&tn.conn); err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, tn)
	}

	// As functions/polltenant and functions/pollfanout wire them.
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	m := metrics.New(io.Discard)
	sp := spapi.New()
	gw := sellerapi.New(credcache.New(secrets, credcache.WithClock(clock.Now)), lwa.New(sbURL+"/auth/o2/token", lwa.WithHTTPClient(&http.Client{Timeout: 5 * time.Second})), sp, store,
		sellerapi.WithEndpoint(sbURL), sellerapi.WithLogger(log))
	src := poll.NewAmazonSource(gw, sp, poll.WithClock(clock.Now))

	poller := poll.NewPoller(store, src, poll.WithConfig(poll.Config{Interval: time.Minute, Lookback: 7 * 24 * time.Hour}), poll.WithClock(clock.Now), poll.WithLogger(log), poll.WithMetrics(m))
	fanout := poll.NewFanout(store, pollsender.NewSender(client, queueURL), poll.WithClock(clock.Now), poll.WithLogger(log), poll.WithMetrics(m))
	cfg := localpoll.Config{Fanout: fanout.Handle, Tenant: sqsbatch.Handler(poller), SQS: client, QueueURL: queueURL, Interval: time.Minute, Log: log}
	sum, err := localpoll.PollOnce(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Fanout.Claimed != 3 || sum.Fanout.Sent != 3 || sum.Records != 3 || sum.Failed != 0 {
		t.Fatalf("summary %+v", sum)
	}
	for i, tn := range tenants {
		var msgs, tickets int
		var status string
		pool.QueryRow(ctx, `SELECT count(*) FROM "ExternalMessage" WHERE "tenantId" = $1`, tn.id).Scan(&msgs)
		pool.QueryRow(ctx, `SELECT count(*) FROM "Ticket" WHERE "tenantId" = $1`, tn.id).Scan(&tickets)
		pool.QueryRow(ctx, `SELECT CASE WHEN mc."status" = 'ERROR' AND k."reauthReason" IS NOT NULL THEN 'NEEDS_REAUTH' ELSE mc."status"::text END
	FROM public."MarketplaceConnection" mc JOIN keybuzz_amazon."Connection" k ON k."connectionId" = mc."id" WHERE mc."id" = $1`, tn.conn).Scan(&status)
		want := 0
		for _, ev := range sb.BuyerEvents(tn.seller) {
			if !ev.At.Before(clock.Now().Add(-7 * 24 * time.Hour)) {
				want++
			}
		}
		if i < 2 && (msgs != want || want == 0 || tickets == 0 || status != "CONNECTED") {
			t.Errorf("tenant %d: %d messages (want %d), %d tickets, %s", i, msgs, want, tickets, status)
		}
		if i == 2 && (msgs != 0 || status != "ERROR") {
			t.Errorf("tenant without a secret: %d messages, status %s", msgs, status)
		}
	}
	// Nothing is due a second later: the next PollOnce enqueues nothing.
	if sum, err := localpoll.PollOnce(ctx, cfg); err != nil || sum.Fanout.Claimed != 0 || sum.Records != 0 {
		t.Fatalf("second run: %+v %v", sum, err)
	}
	// One interval later both connected tenants are polled again.
	clock.Advance(time.Minute)
	if sum, err := localpoll.PollOnce(ctx, cfg); err != nil || sum.Fanout.Claimed != 2 || sum.Records != 2 || sum.Failed != 0 {
		t.Fatalf("next interval: %+v %v", sum, err)
	}
}

// Run serves the schedule and the consumer until its context ends.
func TestRunStopsWithContext(t *testing.T) {
	t.Parallel()
	client, queueURL := newQueue(t)
	calls := make(chan struct{}, 10)
	cfg := localpoll.Config{
		Fanout: func(ctx context.Context, _ events.EventBridgeEvent) (poll.FanoutResult, error) {
			calls <- struct{}{}
			return poll.FanoutResult{}, nil
		},
		Tenant: func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{}, nil
		},
		SQS:      client,
		QueueURL: queueURL,
		Interval: time.Hour,
		Log:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- localpoll.Run(ctx, cfg) }()
	<-calls // the first fan-out runs at once
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func newQueue(t *testing.T) (*sqs.Client, string) {
	t.Helper()
	client := sqs.New(sqs.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(testenv.Env(t, "AWS_ENDPOINT_URL_SQS")),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(testenv.ID("poll"))})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	url := aws.ToString(out.QueueUrl)
	t.Cleanup(func() { client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}) })
	return client, url
}
