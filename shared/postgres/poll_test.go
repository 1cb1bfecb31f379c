package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func newStore(t *testing.T) (*postgres.Store, *pgxpool.Pool, *sandbox.ManualClock) {
	t.Helper()
	pool, _ := testenv.Pool(t)
	clock := sandbox.NewManualClock(t0)
	return postgres.New(pool, postgres.WithClock(clock.Now)), pool, clock
}

// addConnections inserts n CONNECTED connections due at t0 and returns their ids.
func addConnections(t *testing.T, pool *pgxpool.Pool, n int) []string {
	t.Helper()
	var ids []string
	rows, err := pool.Query(context.Background(), `
SELECT keybuzz_dev.connection('tenant-' || g || '-' || md5(random()::text), 'CONNECTED', 'eu', 'A13V1IB3VIYZZH',
    connected_at => $1, next_poll_at => $1)
FROM generate_series(1, $2) g`, t0, n)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return ids
}

// oneConnection is newStore with one CONNECTED connection due at t0: its
// id and its tenant.
func oneConnection(t *testing.T) (*postgres.Store, *pgxpool.Pool, *sandbox.ManualClock, string, string) {
	t.Helper()
	store, pool, clock := newStore(t)
	id := addConnections(t, pool, 1)[0]
	return store, pool, clock, id, tenantOf(t, pool, id)
}

func tenantOf(t *testing.T, pool *pgxpool.Pool, id string) string {
	t.Helper()
	var tenant string
	if err := pool.QueryRow(context.Background(), `SELECT "tenantId" FROM public."MarketplaceConnection" WHERE "id" = $1`, id).Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	return tenant
}

// A due connection that a mail or a notification is being stored for at
// the moment (the ingestion's foreign-key check holds FOR KEY SHARE on it
// until its transaction ends) is claimed all the same.
func TestClaimDueTakesAConnectionBeingIngestedInto(t *testing.T) {
	t.Parallel()
	store, pool, _ := newStore(t)
	ctx := context.Background()
	ids := addConnections(t, pool, 2)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM public."MarketplaceConnection" WHERE "id" = $1 FOR KEY SHARE`, ids[0]); err != nil {
		t.Fatal(err)
	}
	jobs, _, err := store.ClaimDue(ctx, 10, time.Minute, marketplace.ClaimCursor{})
	if err != nil {
		t.Fatal(err)
	}
	claimed := map[string]bool{}
	for _, j := range jobs {
		claimed[j.ConnectionID] = true
	}
	if !claimed[ids[0]] || !claimed[ids[1]] {
		t.Fatalf("claimed %v; want both %v (one of them key-share locked by an ingestion)", claimed, ids)
	}
}

func TestClaimDueNeverClaimsTwice(t *testing.T) {
	t.Parallel()
	store, pool, clock := newStore(t)
	ctx := context.Background()
	addConnections(t, pool, 500)
	// Not due, and not connected: never claimed.
	if _, err := pool.Exec(ctx, `SELECT keybuzz_dev.connection('later', 'CONNECTED', next_poll_at => $1), keybuzz_dev.connection('gone', 'NEEDS_REAUTH', next_poll_at => $2)`,
		t0.Add(time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cur marketplace.ClaimCursor
			for {
				jobs, next, err := store.ClaimDue(ctx, 37, 10*time.Minute, cur)
				cur = next
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, j := range jobs {
					seen[j.ConnectionID]++
				}
				mu.Unlock()
				if len(jobs) < 37 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != 500 {
		t.Fatalf("claimed %d distinct connections, want 500", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("connection %s claimed %d times", id, n)
		}
	}
	// Claimed rows stay claimed until the claim expires; released ones come back.
	if jobs, _, _ := store.ClaimDue(ctx, 1000, time.Minute, marketplace.ClaimCursor{}); len(jobs) != 0 {
		t.Fatalf("claimed %d again before expiry", len(jobs))
	}
	var some []string
	for id := range seen {
		if len(some) < 3 {
			some = append(some, id)
		}
	}
	if err := store.ReleaseClaims(ctx, some); err != nil {
		t.Fatal(err)
	}
	if jobs, _, _ := store.ClaimDue(ctx, 1000, time.Minute, marketplace.ClaimCursor{}); len(jobs) != 3 {
		t.Fatalf("after release claimed %d, want 3", len(jobs))
	}
	clock.Advance(11 * time.Minute)
	if jobs, _, _ := store.ClaimDue(ctx, 1000, time.Minute, marketplace.ClaimCursor{}); len(jobs) != 500 {
		t.Fatalf("after expiry claimed %d, want 500", len(jobs))
	}
}

func TestAcquirePollOneWinner(t *testing.T) {
	t.Parallel()
	store, _, clock, id, tenant := oneConnection(t)
	ctx := context.Background()

	var wins, busy int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := store.AcquirePoll(ctx, tenant, id, fmt.Sprintf("owner-%d", i), time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			if st.Leased {
				wins++
			} else {
				busy++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if wins != 1 || busy != 9 {
		t.Fatalf("wins=%d busy=%d, want 1 and 9", wins, busy)
	}
	// Wrong tenant: not found. Expired lease: taken over.
	if _, err := store.AcquirePoll(ctx, "other-tenant", id, "x", time.Minute); err == nil {
		t.Fatal("other tenant acquired the lease")
	}
	clock.Advance(2 * time.Minute)
	st, err := store.AcquirePoll(ctx, tenant, id, "late", time.Minute)
	if err != nil || !st.Leased {
		t.Fatalf("expired lease not taken over: %+v %v", st, err)
	}
	// The previous owners are fenced out.
	if _, err := store.IngestPage(ctx, marketplace.InboundPage{ConnectionID: id, TenantID: tenant, LeaseOwner: "owner-0"}); err == nil {
		// owner-0 may have been the winner; any non-"late" owner must be refused
		t.Fatal("a stale owner stored a page")
	}
	if err := store.FinishPoll(ctx, marketplace.PollOutcome{ConnectionID: id, LeaseOwner: "late", NextPollAt: clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	st, _ = store.AcquirePoll(ctx, tenant, id, "next", time.Minute)
	if !st.Leased {
		t.Fatal("lease not released by FinishPoll")
	}
}

func TestRateBudgetTokenBucket(t *testing.T) {
	t.Parallel()
	store, pool, clock := newStore(t)
	ctx := context.Background()
	id := addConnections(t, pool, 1)[0]
	plan := marketplace.RatePlan{Rate: 0.5, Burst: 3}

	for i := 0; i < 3; i++ {
		g, err := store.TakeToken(ctx, id, "searchOrders", plan)
		if err != nil || !g.OK {
			t.Fatalf("take %d: %+v %v", i, g, err)
		}
	}
	g, _ := store.TakeToken(ctx, id, "searchOrders", plan)
	if g.OK || !g.RetryAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("empty bucket: %+v, want retry at +2s", g)
	}
	clock.Advance(2 * time.Second)
	if g, _ := store.TakeToken(ctx, id, "searchOrders", plan); !g.OK {
		t.Fatal("no token after refill")
	}
	// Amazon's header changes the rate; real rates are fractional.
	if err := store.RecordSuccess(ctx, id, "searchOrders", 0.0056); err != nil {
		t.Fatalf("fractional rate: %v", err)
	}
	if g, _ := store.TakeToken(ctx, id, "searchOrders", plan); g.Plan.Rate != 0.0056 {
		t.Fatalf("rate after header 0.0056: %+v", g.Plan)
	}
	if err := store.RecordSuccess(ctx, id, "searchOrders", 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if g, _ := store.TakeToken(ctx, id, "searchOrders", plan); !g.OK || g.Plan.Rate != 1 {
		t.Fatalf("after rate update: %+v", g)
	}
	// A 429 empties the bucket and backs off; a second in a row doubles it.
	until, err := store.RecordThrottle(ctx, id, "searchOrders")
	if err != nil || !until.Equal(clock.Now().Add(time.Second)) {
		t.Fatalf("throttle until %v (%v), want +1s", until, err)
	}
	clock.Advance(500 * time.Millisecond)
	if g, _ := store.TakeToken(ctx, id, "searchOrders", plan); g.OK || !g.RetryAt.Equal(until) || !g.Throttled {
		t.Fatalf("during back-off: %+v", g)
	}
	clock.Advance(time.Second)
	until2, _ := store.RecordThrottle(ctx, id, "searchOrders")
	if !until2.Equal(clock.Now().Add(2 * time.Second)) {
		t.Fatalf("second 429: until %v, want +2s", until2.Sub(clock.Now()))
	}
	var count429 int
	pool.QueryRow(ctx, `SELECT "count429" FROM keybuzz_amazon."RateBudget" WHERE "connectionId" = $1`, id).Scan(&count429)
	if count429 != 2 {
		t.Fatalf("count429 = %d", count429)
	}
}

func TestIngestPageIsIdempotent(t *testing.T) {
	t.Parallel()
	store, pool, clock, id, tenant := oneConnection(t)
	ctx := context.Background()
	if st, err := store.AcquirePoll(ctx, tenant, id, "me", time.Minute); err != nil || !st.Leased {
		t.Fatal(err)
	}
	msg := func(order, item string) marketplace.InboundMessage {
		return marketplace.InboundMessage{ExternalID: order + ":" + item + ":cancellation", ThreadKey: order, OrderID: order,
			BuyerName: "Buyer", BuyerEmail: "b@marketplace.amazon.fr", Language: "fr", Subject: "s", Body: "b", ReceivedAt: clock.Now(), Raw: []byte(`{"orderId":"` + order + `"}`)}
	}
	page1 := []marketplace.InboundMessage{msg("o1", "a"), msg("o1", "b"), msg("o2", "a"), msg("o2", "a")} // a repeat inside the page
	cases := []struct {
		name                  string
		msgs                  []marketplace.InboundMessage
		token                 string
		wantMsgs, wantTickets int
	}{
		{"first page", page1, "tok-2", 3, 2},
		{"same page again", page1, "tok-2", 0, 0},
		{"new item on a known thread and a new thread", []marketplace.InboundMessage{msg("o1", "c"), msg("o3", "a"), msg("o1", "a")}, "", 2, 1},
	}
	for _, c := range cases {
		var cursor *time.Time
		if c.token == "" {
			end := clock.Now()
			cursor = &end
		}
		in := marketplace.InboundPage{ConnectionID: id, TenantID: tenant, LeaseOwner: "me", Messages: c.msgs, NextToken: c.token, Cursor: cursor}
		if c.token != "" {
			in.WindowStart, in.MarketplaceIDs = t0, []string{"A13V1IB3VIYZZH"}
		}
		res, err := store.IngestPage(ctx, in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.MessagesCreated != c.wantMsgs || res.TicketsCreated != c.wantTickets {
			t.Fatalf("%s: %+v, want %d messages %d tickets", c.name, res, c.wantMsgs, c.wantTickets)
		}
	}
	var ext, linked, tickets, tms int
	pool.QueryRow(ctx, `SELECT count(*), count("ticketId") FROM public."ExternalMessage"`).Scan(&ext, &linked)
	pool.QueryRow(ctx, `SELECT count(*) FROM public."Ticket" WHERE "tenantId" = $1`, tenant).Scan(&tickets)
	pool.QueryRow(ctx, `SELECT count(*) FROM public."TicketMessage" tm JOIN keybuzz_amazon."Message" m ON tm."id" = m."ticketMessageId" AND m."ticketId" = tm."ticketId"`).Scan(&tms)
	if ext != 5 || linked != 5 || tickets != 3 || tms != 5 {
		t.Fatalf("ExternalMessage=%d linked=%d Ticket=%d TicketMessage=%d, want 5 5 3 5", ext, linked, tickets, tms)
	}
	var token, seedCursor *string
	var cursor *time.Time
	pool.QueryRow(ctx, `SELECT k."paginationToken", k."cursorAt", ss."cursor" FROM keybuzz_amazon."SyncState" k
JOIN public."MarketplaceSyncState" ss ON ss."id" = k."syncStateId" WHERE k."connectionId" = $1`, id).Scan(&token, &cursor, &seedCursor)
	if token != nil || cursor == nil || !cursor.Equal(clock.Now()) {
		t.Fatalf("sync state token=%v cursor=%v", token, cursor)
	}
	if want := clock.Now().UTC().Format("2006-01-02T15:04:05.000Z"); seedCursor == nil || *seedCursor != want {
		t.Fatalf("seed cursor = %v, want %s", seedCursor, want)
	}
}

func TestSyncStatus(t *testing.T) {
	t.Parallel()
	store, _, clock, id, tenant := oneConnection(t)
	ctx := context.Background()
	if st, err := store.SyncStatus(ctx, id); err != nil || st.PollCount != 0 || st.Cursor != nil {
		t.Fatalf("before any poll: %+v %v", st, err)
	}
	if _, err := store.SyncStatus(ctx, "nope"); !errors.Is(err, marketplace.ErrNotFound) {
		t.Fatalf("unknown connection: %v", err)
	}
	store.AcquirePoll(ctx, tenant, id, "me", time.Minute)
	store.TakeToken(ctx, id, "searchOrders", marketplace.RatePlan{Rate: 1, Burst: 5})
	end := clock.Now()
	msgs := []marketplace.InboundMessage{
		{ExternalID: "o1:a:cancellation", ThreadKey: "o1", OrderID: "o1", Subject: "first", Body: "b1", ReceivedAt: clock.Now()},
		{ExternalID: "o2:a:cancellation", ThreadKey: "o2", OrderID: "o2", Subject: "second", Body: "b2", ReceivedAt: clock.Now().Add(time.Minute)},
	}
	if _, err := store.IngestPage(ctx, marketplace.InboundPage{ConnectionID: id, TenantID: tenant, LeaseOwner: "me", Messages: msgs, Cursor: &end}); err != nil {
		t.Fatal(err)
	}
	store.FinishPoll(ctx, marketplace.PollOutcome{ConnectionID: id, LeaseOwner: "me", NextPollAt: end.Add(time.Minute)})
	st, err := store.SyncStatus(ctx, id)
	if err != nil || st.PollCount != 1 || st.Cursor == nil || st.Tokens == nil || *st.Tokens != 4 || !st.NextPollAt.Equal(end.Add(time.Minute)) {
		t.Fatalf("after a poll: %+v %v", st, err)
	}
}
