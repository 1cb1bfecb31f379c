package poll_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// t0 is the sandbox's and the store's clock at the start of every test.
var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// env is one test's world: a fresh database, the real Vault (a per-test app
// path and tenant ids), an in-process sandbox, all on one manual clock.
type env struct {
	t        *testing.T
	clock    *sandbox.ManualClock
	sb       *sandbox.Server
	sbURL    string
	pool     *pgxpool.Pool
	store    *postgres.Store
	secrets  *vaultstore.Store
	lwa      *lwa.Client
	lwaCalls atomic.Int64 // token endpoint calls
	apiCalls atomic.Int64 // SP-API calls
	// beforeAPI runs before each SP-API call (fault injection between pages).
	beforeAPI atomic.Pointer[func(n int64)]
	cfg       poll.Config
	// cachedPoller is the poller of a test's first poll (a warm container).
	cachedPoller *poll.Poller
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: sandbox.NewManualClock(t0)}
	cfg := sandbox.DefaultConfig()
	cfg.Clock = e.clock
	e.sb, e.sbURL = sandboxtest.Start(t, cfg)
	e.pool, _ = testenv.Pool(t)
	e.store = postgres.New(e.pool, postgres.WithClock(e.clock.Now))
	e.secrets = vaultstore.New(testenv.Vault(t), "secret", "keybuzz/test/"+testenv.ID("app"))
	if err := e.secrets.PutApp(context.Background(), marketplace.AppCredentials{
		ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret), ApplicationID: cfg.ApplicationID, Region: "eu", Draft: true,
	}); err != nil {
		t.Fatalf("put app credentials: %v", err)
	}
	e.lwa = lwa.New(e.sbURL+"/auth/o2/token", lwa.WithHTTPClient(&http.Client{Transport: counting{&e.lwaCalls, nil}, Timeout: 5 * time.Second}))
	e.cfg = poll.Config{Interval: time.Minute, Lookback: 7 * 24 * time.Hour}
	return e
}

type counting struct {
	n      *atomic.Int64
	before *atomic.Pointer[func(int64)]
}

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.n.Add(1)
	if c.before != nil {
		if f := c.before.Load(); f != nil {
			(*f)(n)
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// closedVault is a Vault client for an address nothing listens on.
func closedVault(t *testing.T) *api.Client {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := api.DefaultConfig()
	cfg.Address = "http://" + addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("unused")
	return c
}

func quiet() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// source is the real Amazon source against the sandbox.
func (e *env) source(secrets credcache.Store) *poll.AmazonSource {
	if secrets == nil {
		secrets = e.secrets
	}
	cached := credcache.New(secrets, credcache.WithClock(e.clock.Now)) // as the functions wire it
	hc := &http.Client{Transport: counting{&e.apiCalls, &e.beforeAPI}, Timeout: 5 * time.Second}
	sp := spapiClient(hc)
	return poll.NewAmazonSource(e.gateway(cached, sp), sp, poll.WithClock(e.clock.Now))
}

// gateway is the seller gateway on cached credentials, against the sandbox.
func (e *env) gateway(cached *credcache.Cache, sp *spapi.Client) *sellerapi.Gateway {
	return sellerapi.New(cached, e.lwa, sp, e.store, sellerapi.WithEndpoint(e.sbURL), sellerapi.WithLogger(quiet()))
}

func (e *env) poller(src poll.Source) *poll.Poller {
	return poll.NewPoller(e.store, src, poll.WithConfig(e.cfg), poll.WithClock(e.clock.Now), poll.WithLogger(quiet()))
}

// seller is a sandbox seller connected as a tenant.
type seller struct {
	n            int
	id           string
	tenantID     string
	connectionID string
	marketplaces []string
}

// connect authorizes sandbox seller n the way a seller does (auto-approved
// consent, then LWA's authorization_code grant), writes the tenant's Vault
// secret with the refresh token and a CONNECTED row connected now.
func (e *env) connect(n int) seller {
	e.t.Helper()
	ctx := context.Background()
	s := seller{n: n, id: sandbox.SellerID(n), tenantID: testenv.ID("tenant")}
	for _, sl := range e.sb.Sellers() {
		if sl.ID == s.id {
			s.marketplaces = sl.MarketplaceIDs
		}
	}
	code := e.consent(s.id)
	cfg := sandbox.DefaultConfig()
	tok, err := e.lwa.Exchange(ctx, lwa.App{ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret)}, code)
	if err != nil {
		e.t.Fatalf("exchange code: %v", err)
	}
	path, err := e.secrets.PutTenant(ctx, s.tenantID, marketplace.TenantCredentials{
		RefreshToken: tok.RefreshToken, SellerID: s.id, MarketplaceID: strings.Join(s.marketplaces, ","), Region: "eu",
	})
	if err != nil {
		e.t.Fatalf("put tenant: %v", err)
	}
	e.t.Cleanup(func() { _ = e.secrets.DeleteTenant(context.Background(), s.tenantID) })
	s.connectionID = e.addConnection(s.tenantID, s.id, strings.Join(s.marketplaces, ","), path)
	return s
}

func (e *env) addConnection(tenantID, sellerID, marketplaces, vaultPath string) string {
	e.t.Helper()
	var id string
	err := e.pool.QueryRow(context.Background(), `
SELECT keybuzz_dev.connection($1, 'CONNECTED', 'eu', $2, $3, $4, connected_at => $5, next_poll_at => $5)`,
		tenantID, marketplaces, sellerID, vaultPath, e.clock.Now()).Scan(&id)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// consent is sandboxtest.Consent on the env's sandbox.
func (e *env) consent(sellerID string) secret.Value {
	e.t.Helper()
	return sandboxtest.Consent(e.t, e.sbURL, sellerID)
}

func (s seller) message() pollqueue.Message {
	return pollqueue.Message{TenantID: s.tenantID, ConnectionID: s.connectionID, EnqueuedAt: t0}
}

func sqsEvent(bodies ...string) events.SQSEvent {
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: "msg-" + string(rune('a'+i)), Body: b, EventSource: "aws:sqs"})
	}
	return ev
}

// state is what the database holds for a connection.
type state struct {
	Status, LastError       string
	Cursor                  *time.Time
	Token                   *string
	ExternalIDs             map[string]bool
	Messages, Tickets, TMsg int
	NextPollAt              time.Time
	Claimed                 bool
}

func (e *env) state(s seller) state {
	e.t.Helper()
	ctx := context.Background()
	st := state{ExternalIDs: map[string]bool{}}
	var lastErr *string
	var claimed *time.Time
	if err := e.pool.QueryRow(ctx, `SELECT CASE WHEN mc."status" = 'ERROR' AND k."reauthReason" IS NOT NULL THEN 'NEEDS_REAUTH' ELSE mc."status"::text END,
	mc."lastError", k."nextPollAt", k."pollClaimedUntil"
FROM public."MarketplaceConnection" mc JOIN keybuzz_amazon."Connection" k ON k."connectionId" = mc."id" WHERE mc."id" = $1`, s.connectionID).
		Scan(&st.Status, &lastErr, &st.NextPollAt, &claimed); err != nil {
		e.t.Fatal(err)
	}
	if lastErr != nil {
		st.LastError = *lastErr
	}
	st.Claimed = claimed != nil
	_ = e.pool.QueryRow(ctx, `SELECT "cursorAt", "paginationToken" FROM keybuzz_amazon."SyncState" WHERE "connectionId" = $1`, s.connectionID).Scan(&st.Cursor, &st.Token)
	rows, err := e.pool.Query(ctx, `SELECT "externalId" FROM "ExternalMessage" WHERE "connectionId" = $1`, s.connectionID)
	if err != nil {
		e.t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		st.ExternalIDs[id] = true
		st.Messages++
	}
	e.pool.QueryRow(ctx, `SELECT count(*) FROM "Ticket" WHERE "tenantId" = $1`, s.tenantID).Scan(&st.Tickets)
	e.pool.QueryRow(ctx, `SELECT count(*) FROM "TicketMessage" WHERE "tenantId" = $1`, s.tenantID).Scan(&st.TMsg)
	return st
}

// want is the sandbox's ground truth for a seller: the external ids of the
// buyer events from since on, and the number of distinct orders.
func (e *env) want(s seller, since time.Time) (map[string]bool, int) {
	ids := map[string]bool{}
	orders := map[string]bool{}
	for _, ev := range e.sb.BuyerEvents(s.id) {
		if ev.At.Before(since) {
			continue
		}
		ids[ev.OrderID+":"+ev.OrderItemID+":cancellation"] = true
		orders[ev.OrderID] = true
	}
	return ids, len(orders)
}

func (e *env) checkMatches(s seller, since time.Time) state {
	e.t.Helper()
	st := e.state(s)
	want, orders := e.want(s, since)
	if len(want) == 0 {
		e.t.Fatal("the sandbox has no buyer events in the window: the test proves nothing")
	}
	for id := range want {
		if !st.ExternalIDs[id] {
			e.t.Errorf("missing event %s", id)
		}
	}
	for id := range st.ExternalIDs {
		if !want[id] {
			e.t.Errorf("unexpected event %s", id)
		}
	}
	if st.Messages != len(want) || st.TMsg != len(want) || st.Tickets != orders {
		e.t.Errorf("ExternalMessage=%d TicketMessage=%d Ticket=%d, want %d %d %d", st.Messages, st.TMsg, st.Tickets, len(want), len(want), orders)
	}
	return st
}
