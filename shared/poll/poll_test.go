package poll_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

func spapiClient(hc *http.Client) *spapi.Client { return spapi.New(spapi.WithHTTPClient(hc)) }

// Seed Test 3: the mock source makes 3 ExternalMessage, 3 Ticket and 3
// TicketMessage on the first run and nothing on the second.
func TestMockSourceSeedTest3(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := seller{TenantID: "tenant-mock"}
	s.ConnectionID = e.AddConnection(s.TenantID, "", "A13V1IB3VIYZZH", "")
	p := e.poller(poll.MockSource{Now: e.Clock.Now})
	for run, want := range []int{3, 0} {
		resp, err := sqsbatch.Handler(p)(context.Background(), sqsEvent(message(s).Encode()))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("run %d: %+v %v", run, resp, err)
		}
		st := e.state(s)
		if st.Messages != 3 || st.Tickets != 3 || st.TMsg != 3 {
			t.Fatalf("run %d: ExternalMessage=%d Ticket=%d TicketMessage=%d, want 3 3 3", run, st.Messages, st.Tickets, st.TMsg)
		}
		res, err := p.PollResult(context.Background(), message(s))
		if err != nil || res.MessagesCreated != 0 {
			t.Fatalf("run %d again: %+v %v (want %d then nothing)", run, res, err, want)
		}
	}
}

// Seed Test 4: the real client against the sandbox stores exactly the
// sandbox's buyer events of the look-back window; a redelivered message
// creates nothing; a new cancellation request shows up on the next poll.
func TestSandboxSyncMatchesBuyerEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.connect(1)
	p := e.poller(e.source(nil))
	ctx := context.Background()

	resp, err := sqsbatch.Handler(p)(ctx, sqsEvent(message(s).Encode()))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("poll: %+v %v", resp, err)
	}
	st := e.checkMatches(s, t0.Add(-7*24*time.Hour))
	if st.Cursor == nil || !st.Cursor.Equal(t0.Add(-2*time.Minute)) || st.Token != nil {
		t.Fatalf("cursor %v token %v, want the window's end and no token", st.Cursor, st.Token)
	}
	if st.Status != "CONNECTED" || st.LastError != "" || !st.NextPollAt.Equal(t0.Add(30*time.Second)) || st.Claimed {
		// Due one period after the claim (the message's enqueuedAt, t0),
		// less the schedule's jitter (half the period).
		t.Fatalf("connection after poll: %+v", st)
	}

	// Redelivery of the same SQS message: nothing new.
	res, err := p.PollResult(ctx, message(s))
	if err != nil || res.MessagesCreated != 0 || res.TicketsCreated != 0 {
		t.Fatalf("redelivery: %+v %v", res, err)
	}

	// A buyer asks to cancel a new order: it is there after the next poll.
	e.Clock.Advance(5 * time.Minute)
	order, err := e.SB.AddOrder(s.ID, "", false)
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(time.Minute)
	if _, err := e.SB.AddCancellationRequest(s.ID, order, "Ordered by mistake"); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(3 * time.Minute) // Amazon lists changes older than two minutes
	res, err = p.PollResult(ctx, message(s))
	if err != nil || res.MessagesCreated != 1 || res.TicketsCreated != 1 {
		t.Fatalf("poll after a new request: %+v %v", res, err)
	}
	e.checkMatches(s, t0.Add(-7*24*time.Hour))
	var body string
	e.Pool.QueryRow(ctx, `SELECT tm."body" FROM public."ExternalMessage" e JOIN keybuzz_amazon."Message" m ON m."externalMessageId" = e."id"
	JOIN public."TicketMessage" tm ON tm."id" = m."ticketMessageId" WHERE e."orderId" = $1`, order).Scan(&body)
	if want := "Buyer requested cancellation of order " + order; len(body) < len(want) || body[:len(want)] != want {
		t.Fatalf("body %q", body)
	}
}

// killingSource stops the poll (as a Lambda timeout or crash would) when
// asked for page number killAt.
type killingSource struct {
	poll.Source
	killAt, calls int
	cancel        context.CancelFunc
}

func (k *killingSource) Fetch(ctx context.Context, t marketplace.SellerAccount, r poll.PageRequest) (poll.Page, error) {
	k.calls++
	if k.calls == k.killAt {
		k.cancel()
		return poll.Page{}, context.Canceled
	}
	return k.Source.Fetch(ctx, t, r)
}

// A multi-page sync stopped between pages resumes at the stored pagination
// token without loss or duplicates.
func TestMultiPageSyncResumes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		stop func(e *env, s seller, p *poll.Poller) error
	}{
		{"killed between pages", func(e *env, s seller, _ *poll.Poller) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			k := &killingSource{Source: e.source(nil), killAt: 2, cancel: cancel}
			return e.poller(k).Poll(ctx, message(s))
		}},
		{"Amazon fails page 2", func(e *env, s seller, p *poll.Poller) error {
			f := func(n int64) {
				if n == 2 {
					e.SB.InjectFault(s.ID, sandbox.Fault{Kind: "500", Count: 1})
				}
			}
			e.beforeAPI.Store(&f)
			defer e.beforeAPI.Store(nil)
			return p.Poll(context.Background(), message(s))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.cfg.Lookback = 30 * 24 * time.Hour // about 300 orders: 4 pages of 100
			s := e.connect(2)
			claim(t, e, s)
			p := e.poller(e.source(nil))
			if err := c.stop(e, s, p); err == nil {
				t.Fatal("the stopped poll reported success")
			}
			mid := e.state(s)
			if mid.Token == nil || mid.Cursor != nil || mid.Messages == 0 {
				t.Fatalf("after page 1: token=%v cursor=%v messages=%d; want a token, no cursor, page 1 stored", mid.Token, mid.Cursor, mid.Messages)
			}
			if mid.LastError == "" || !mid.Claimed {
				t.Fatalf("a failed poll must record lastError and keep the claim for SQS's retry: %+v", mid)
			}
			if err := p.Poll(context.Background(), message(s)); err != nil {
				t.Fatalf("resume: %v", err)
			}
			st := e.checkMatches(s, t0.Add(-30*24*time.Hour))
			if st.LastError != "" || st.Token != nil || st.Cursor == nil {
				t.Fatalf("after resume: %+v", st)
			}
		})
	}
}

// Ten polltenant runs on one tenant at once give exactly one set of tickets.
func TestConcurrentPollsOneSetOfTickets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.connect(3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	busy := 0
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.poller(e.source(nil)).PollResult(context.Background(), message(s))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			if res.Skipped == "busy" {
				busy++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	e.checkMatches(s, t0.Add(-7*24*time.Hour))
	t.Logf("%d of 10 runs found the connection busy", busy)
}

// Failures end in the right state.
func TestFailures(t *testing.T) {
	t.Parallel()
	type check func(t *testing.T, e *env, s seller, st state, err error)
	cases := []struct {
		name    string
		setup   func(e *env, s seller) credcache.Store
		wantErr bool
		check   check
	}{
		{"429 storm", func(e *env, s seller) credcache.Store {
			e.SB.InjectFault(s.ID, sandbox.Fault{Kind: "429", Count: 3})
			return nil
		}, true, func(t *testing.T, e *env, s seller, st state, err error) {
			var count429 int
			var until time.Time
			var tokens float64
			e.Pool.QueryRow(context.Background(), `SELECT "count429", "throttledUntil", "tokens" FROM keybuzz_amazon."RateBudget" WHERE "connectionId" = $1`, s.ConnectionID).Scan(&count429, &until, &tokens)
			if count429 != 1 || tokens != 0 || !until.After(t0) || st.Messages != 0 || st.LastError == "" || !st.Claimed {
				t.Fatalf("after a 429: count429=%d until=%v tokens=%v state=%+v", count429, until, tokens, st)
			}
			// SQS's retry during the back-off makes no call and is acknowledged.
			calls := e.apiCalls.Load()
			p := e.poller(e.source(nil))
			res, err := p.PollResult(context.Background(), message(s))
			if err != nil || e.apiCalls.Load() != calls || res.NextPollAt.Before(until) || res.NextPollAt.After(until.Add(time.Second)) {
				t.Fatalf("retry during back-off: %+v %v (calls %d -> %d)", res, err, calls, e.apiCalls.Load())
			}
			// After the storm the sync completes.
			for i := 0; i < 6; i++ {
				e.Clock.Advance(30 * time.Minute)
				p.Poll(context.Background(), message(s))
			}
			e.checkMatches(s, t0.Add(-7*24*time.Hour))
		}},
		{"expired access token", func(e *env, s seller) credcache.Store { return nil }, false,
			func(t *testing.T, e *env, s seller, st state, err error) {
				// The first poll cached the token; Amazon now says it expired.
				e.SB.ExpireAccessTokens(s.ID)
				e.Clock.Advance(5 * time.Minute)
				lwaBefore := e.lwaCalls.Load()
				if err := e.cachedPoller.Poll(context.Background(), message(s)); err != nil {
					t.Fatalf("poll with an expired token: %v", err)
				}
				if n := e.lwaCalls.Load() - lwaBefore; n != 1 {
					t.Fatalf("%d token refreshes, want exactly 1", n)
				}
				if st := e.state(s); st.LastError != "" {
					t.Fatalf("lastError %q", st.LastError)
				}
			}},
		{"revoked refresh token", func(e *env, s seller) credcache.Store {
			e.SB.RevokeSeller(s.ID)
			return nil
		}, false, func(t *testing.T, e *env, s seller, st state, err error) {
			if st.Status != string(marketplace.StatusNeedsReauth) || st.LastError == "" || st.Messages != 0 || st.Claimed {
				t.Fatalf("after invalid_grant: %+v", st)
			}
		}},
		{"no credentials in Vault", func(e *env, s seller) credcache.Store {
			if err := e.Vault.DeleteTenant(context.Background(), s.TenantID); err != nil {
				t.Fatal(err)
			}
			return nil
		}, false, func(t *testing.T, e *env, s seller, st state, err error) {
			if st.Status != string(marketplace.StatusError) || st.LastError != "No credentials found" {
				t.Fatalf("after a missing secret: %+v", st)
			}
		}},
		{"Vault down", func(e *env, s seller) credcache.Store {
			return vaultstore.New(closedVault(t), "secret", "keybuzz/ai/amazon_spapi_app_temp")
		}, true, func(t *testing.T, e *env, s seller, st state, err error) {
			if !errors.Is(err, marketplace.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if st.Status != "CONNECTED" || st.LastError == "" || st.Messages != 0 || st.Cursor != nil || st.Token != nil || !st.Claimed {
				t.Fatalf("after Vault down: %+v", st)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.connect(1)
			claim(t, e, s)
			secrets := c.setup(e, s)
			p := e.poller(e.source(secrets))
			e.cachedPoller = p
			err := p.Poll(context.Background(), message(s))
			if (err != nil) != c.wantErr {
				t.Fatalf("Poll error = %v, want error: %v", err, c.wantErr)
			}
			c.check(t, e, s, e.state(s), err)
		})
	}
}

// claim marks the connection claimed, as the fan-out does before enqueueing.
func claim(t *testing.T, e *env, s seller) {
	if _, err := e.Pool.Exec(context.Background(), `UPDATE keybuzz_amazon."Connection" SET "pollClaimedUntil" = $2 WHERE "connectionId" = $1`, s.ConnectionID, t0.Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
}

// A batch where one record fails transiently reports that record only; a
// malformed body is acknowledged.
func TestBatchReportsOnlyTheFailingRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b, c := e.connect(1), e.connect(2), e.connect(3)
	e.SB.InjectFault(b.ID, sandbox.Fault{Kind: "503", Count: 5})
	p := e.poller(e.source(nil))
	resp, err := sqsbatch.Handler(p)(context.Background(), sqsEvent(message(a).Encode(), message(b).Encode(), "{not json", message(c).Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "msg-b" {
		t.Fatalf("failures %+v, want only msg-b", resp.BatchItemFailures)
	}
	e.checkMatches(a, t0.Add(-7*24*time.Hour))
	e.checkMatches(c, t0.Add(-7*24*time.Hour))
	if st := e.state(b); st.Messages != 0 || st.LastError == "" {
		t.Fatalf("failing tenant: %+v", st)
	}
}

// Steady state: polling every minute for two hours of sandbox time under
// the default plan (0.0056/s, burst 20) never gets a 429 and uses the budget.
func TestSteadyStateMakesNo429(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.connect(1)
	p := e.poller(e.source(nil))
	polls := 0
	for i := 0; i < 120; i++ {
		st := e.state(s)
		if !st.NextPollAt.After(e.Clock.Now()) {
			polls++
			if err := p.Poll(context.Background(), message(s)); err != nil {
				t.Fatalf("poll %d: %v", i, err)
			}
		}
		e.Clock.Advance(time.Minute)
	}
	stats := e.SB.Stats(s.ID)
	if stats.Throttled != 0 {
		t.Fatalf("%d 429s in steady state", stats.Throttled)
	}
	max := 20 + 40 // burst + floor(0.0056 * 7200)
	if calls := stats.Calls[sandbox.OpSearchOrders]; calls < max-2 || calls > max {
		t.Fatalf("%d searchOrders calls in 2 h, want close to the plan's %d", calls, max)
	}
}

// A refresh token Amazon rotates is written back to Vault (check-and-set),
// so a cold container starts from the new one.
func TestRotatedRefreshTokenSavedToVault(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.connect(1)
	ctx := context.Background()
	before, err := e.Vault.Tenant(ctx, s.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	e.SB.RotateRefreshTokens(s.ID, true)
	if err := e.poller(e.source(nil)).Poll(ctx, message(s)); err != nil {
		t.Fatal(err)
	}
	after, err := e.Vault.Tenant(ctx, s.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	if after.RefreshToken == before.RefreshToken || after.Version != before.Version+1 || after.SellerID != s.ID {
		t.Fatalf("Vault not updated: version %d -> %d, token changed: %v", before.Version, after.Version, after.RefreshToken != before.RefreshToken)
	}
	// A cold container polls with the token Vault now holds.
	e.SB.RotateRefreshTokens(s.ID, false)
	e.Clock.Advance(10 * time.Minute)
	if err := e.poller(e.source(nil)).Poll(ctx, message(s)); err != nil {
		t.Fatalf("cold poll with the rotated token: %v", err)
	}
	if st := e.state(s); st.Status != "CONNECTED" || st.LastError != "" {
		t.Fatalf("state %+v", st)
	}
}

// With the database down every record of the batch is reported for retry.
func TestDatabaseDownFailsEveryRecord(t *testing.T) {
	t.Parallel()
	pool, err := postgres.Open(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	p := poll.NewPoller(postgres.New(pool), poll.MockSource{}, poll.WithLogger(quiet()))
	a := pollqueue.Message{TenantID: "t-a", ConnectionID: "c-a"}
	b := pollqueue.Message{TenantID: "t-b", ConnectionID: "c-b"}
	resp, err := sqsbatch.Handler(p)(context.Background(), sqsEvent(a.Encode(), b.Encode()))
	if err != nil || len(resp.BatchItemFailures) != 2 {
		t.Fatalf("%+v %v, want both records failed", resp, err)
	}
	if err := p.Poll(context.Background(), a); !errors.Is(err, marketplace.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// An empty rate budget stops a multi-page sync between pages; later polls
// resume at the stored page, with no 429 and nothing lost or duplicated.
func TestEmptyBudgetResumesAtTheStoredPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.Lookback = 30 * 24 * time.Hour // 4 pages
	s := e.connect(2)
	e.SB.SetRatePlan(s.ID, sandbox.OpSearchOrders, 0.0056, 2)
	hc := &http.Client{Timeout: 5 * time.Second}
	sp := spapi.New(spapi.WithHTTPClient(hc))
	src := poll.NewAmazonSource(e.gateway(credcache.New(e.Vault, credcache.WithClock(e.Clock.Now)), sp), sp,
		poll.WithAmazonConfig(poll.AmazonConfig{Plan: marketplace.RatePlan{Rate: 0.0056, Burst: 2}}), poll.WithClock(e.Clock.Now))

	p := e.poller(src)
	res, err := p.PollResult(context.Background(), message(s))
	if err != nil || res.Pages != 2 || res.Cursor != nil {
		t.Fatalf("first poll: %+v %v, want 2 pages and no cursor yet", res, err)
	}
	if st := e.state(s); st.Token == nil || !st.NextPollAt.After(e.Clock.Now()) || st.Claimed {
		t.Fatalf("after an empty budget: %+v", st)
	}
	for i := 0; i < 10 && e.state(s).Cursor == nil; i++ {
		e.Clock.Set(e.state(s).NextPollAt)
		if err := p.Poll(context.Background(), message(s)); err != nil {
			t.Fatal(err)
		}
	}
	e.checkMatches(s, t0.Add(-30*24*time.Hour))
	if n := e.SB.Stats(s.ID).Throttled; n != 0 {
		t.Fatalf("%d 429s", n)
	}
}

// A seller who revoked and reconnected within the credential cache's TTL is
// not mistaken for a revoked one: Vault is read again on invalid_grant.
func TestReconnectWithinCacheTTLIsNotReauth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.connect(1)
	p := e.poller(e.source(nil)) // one warm container throughout
	ctx := context.Background()
	if err := p.Poll(ctx, message(s)); err != nil {
		t.Fatal(err)
	}
	e.SB.RevokeSeller(s.ID)
	e.SB.ExpireAccessTokens(s.ID)
	rt, err := e.SB.IssueRefreshToken(s.ID) // the seller connects again
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := e.Vault.Tenant(ctx, s.TenantID)
	tc.RefreshToken = secret.Value(rt)
	if _, err := e.Vault.PutTenant(ctx, s.TenantID, tc); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(time.Minute)
	if err := p.Poll(ctx, message(s)); err != nil {
		t.Fatal(err)
	}
	if st := e.state(s); st.Status != "CONNECTED" || st.LastError != "" {
		t.Fatalf("after a reconnect: %+v", st)
	}
}

// The gateway's GetOrder reads one order with the connection's
// credentials, within its own getOrder budget (not searchOrders'); a 429
// empties that budget, and polling through the same gateway keeps its own.
func TestGetOrderHasItsOwnBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.connect(1)
	id, err := e.SB.AddOrder(s.ID, "", true)
	if err != nil {
		t.Fatal(err)
	}
	sp := spapiClient(&http.Client{Timeout: 5 * time.Second})
	gw := e.gateway(credcache.New(e.Vault, credcache.WithClock(e.Clock.Now)), sp)
	src := poll.NewAmazonSource(gw, sp, poll.WithClock(e.Clock.Now))
	target := marketplace.SellerAccount{TenantID: s.TenantID, ConnectionID: s.ConnectionID, Region: "eu", SellingPartnerID: s.ID}
	ctx := context.Background()

	o, err := gw.GetOrder(ctx, target, id)
	// buyerEmail only for a seller-fulfilled order (the Orders model).
	if err != nil || o.OrderID != id || o.Buyer == nil || (o.Buyer.BuyerEmail != "") != e.SB.SellerFulfilled(s.ID, id) || len(spapi.BuyerEvents([]spapi.Order{o})) != 1 {
		t.Fatalf("order %+v, %v", o, err)
	}
	if _, err := gw.GetOrder(ctx, target, "402-0000000-0000000"); !errors.Is(err, spapi.ErrNotFound) {
		t.Fatalf("unknown order: %v", err)
	}
	e.SB.InjectFault(s.ID, sandbox.Fault{Kind: "429", Count: 1})
	var throttled *sellerapi.ThrottledError
	if _, err := gw.GetOrder(ctx, target, id); !errors.As(err, &throttled) {
		t.Fatalf("429: %v", err)
	}
	var nb *sellerapi.NoBudgetError
	if _, err := gw.GetOrder(ctx, target, id); !errors.As(err, &nb) || !nb.RetryAt.After(e.Clock.Now()) {
		t.Fatalf("after a 429 the getOrder budget waits: %v", err)
	}
	type budget struct {
		calls, throttled int
		rate             float64
		burst            int
	}
	got := map[string]budget{}
	rows, err := e.Pool.Query(ctx, `SELECT "operation", "callCount", "count429", "rate", "burst" FROM keybuzz_amazon."RateBudget" WHERE "connectionId" = $1`, s.ConnectionID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var op string
		var b budget
		if err := rows.Scan(&op, &b.calls, &b.throttled, &b.rate, &b.burst); err != nil {
			t.Fatal(err)
		}
		got[op] = b
	}
	if want := (budget{calls: 3, throttled: 1, rate: spapi.GetOrderRate, burst: spapi.GetOrderBurst}); len(got) != 1 || got[spapi.OpGetOrder] != want {
		t.Fatalf("budgets %+v, want only getOrder's %+v", got, want)
	}
	// Polling still has its whole searchOrders budget.
	if res, err := e.poller(src).PollResult(ctx, message(s)); err != nil || res.Cursor == nil {
		t.Fatalf("poll after getOrder's 429: %+v, %v", res, err)
	}
}
