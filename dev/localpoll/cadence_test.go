package localpoll_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// The cadence on the real clock: the schedule, the fan-out, the SQS
// emulator and the poller run for 5 periods as `make dev` runs them, and
// each connection gets one searchOrders window per period (± 1), whatever
// each poll lasts. A poller that made a connection due one interval after
// its poll finished got one window every second period.
func TestRealClockOneWindowPerPeriod(t *testing.T) {
	t.Parallel()
	const (
		period  = 3 * time.Second
		periods = 5
	)
	ctx := context.Background()
	sbCfg := sandbox.DefaultConfig() // real clock
	sb, sbURL := sandboxtest.Start(t, sbCfg)
	pool, _ := testenv.Pool(t)
	store := postgres.New(pool)
	secrets := vaultstore.New(testenv.Vault(t), "secret", "keybuzz/test/"+testenv.ID("app"))
	if err := secrets.PutApp(ctx, marketplace.AppCredentials{ClientID: sbCfg.ClientID, ClientSecret: secret.Value(sbCfg.ClientSecret), ApplicationID: sbCfg.ApplicationID, Region: "eu"}); err != nil {
		t.Fatal(err)
	}
	client, queueURL := newQueue(t)

	sellers := []string{sandbox.SellerID(1), sandbox.SellerID(2), sandbox.SellerID(3)}
	for _, id := range sellers {
		var mps []string
		for _, s := range sb.Sellers() {
			if s.ID == id {
				mps = s.MarketplaceIDs
			}
		}
		rt, err := sb.IssueRefreshToken(id)
		if err != nil {
			t.Fatal(err)
		}
		tenant := testenv.ID("tenant")
		if _, err := secrets.PutTenant(ctx, tenant, marketplace.TenantCredentials{RefreshToken: secret.Value(rt), SellerID: id, MarketplaceID: strings.Join(mps, ","), Region: "eu"}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { secrets.DeleteTenant(context.Background(), tenant) })
		if _, err := pool.Exec(ctx, `SELECT keybuzz_dev.connection($1, 'CONNECTED', 'eu', $2, $3, connected_at => now(), next_poll_at => now())`, tenant, strings.Join(mps, ","), id); err != nil {
			t.Fatal(err)
		}
	}

	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	sp := spapi.New()
	src := poll.NewAmazonSource(sellerapi.New(credcache.New(secrets), lwa.New(sbURL+"/auth/o2/token", lwa.WithHTTPClient(&http.Client{Timeout: 5 * time.Second})), sp, store,
		sellerapi.WithEndpoint(sbURL), sellerapi.WithLogger(log)), sp)
	// A one-hour look-back: every window is one page, so calls = windows.
	poller := poll.NewPoller(store, src, poll.WithConfig(poll.Config{Interval: period, Lookback: time.Hour}), poll.WithLogger(log))
	fanout := poll.NewFanout(store, pollsender.NewSender(client, queueURL), poll.WithLogger(log))
	var ticks atomic.Int64
	cfg := localpoll.Config{
		Fanout: func(ctx context.Context, ev events.EventBridgeEvent) (poll.FanoutResult, error) {
			ticks.Add(1)
			return fanout.Handle(ctx, ev)
		},
		Tenant: sqsbatch.Handler(poller), SQS: client, QueueURL: queueURL, Interval: period, Log: log,
	}
	// Cancelled rather than given a deadline: the poller yields when an
	// invocation's deadline is near, and the local schedule has none.
	runCtx, cancel := context.WithCancel(ctx)
	time.AfterFunc(periods*period-period/2, cancel) // ticks at 0, P, …, 4P
	if err := localpoll.Run(runCtx, cfg); err != nil {
		t.Fatal(err)
	}
	cancel()
	if n := ticks.Load(); n != periods {
		t.Fatalf("%d schedule ticks, want %d", n, periods)
	}
	for _, id := range sellers {
		st := sb.Stats(id)
		calls := st.Calls[sandbox.OpSearchOrders]
		t.Logf("seller %s: %d searchOrders windows in %d periods of %s", id, calls, periods, period)
		if calls < periods-1 || calls > periods+1 {
			t.Errorf("seller %s: %d searchOrders windows in %d periods, want %d ± 1", id, calls, periods, periods)
		}
	}
}
