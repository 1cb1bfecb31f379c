package poll_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/hashicorp/vault/api"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sellertest"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// t0 is the sandbox's and the store's clock at the start of every test.
var t0 = sellertest.T0

// env is one test's world (sellertest.World: a fresh database, the real
// Vault with a per-test app path and tenant ids, an in-process sandbox, all
// on one manual clock) and the poller's wiring.
type env struct {
	*sellertest.World
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
	e := &env{}
	e.World = sellertest.Start(t, sandbox.DefaultConfig(), &http.Client{Transport: counting{&e.lwaCalls, nil}, Timeout: 5 * time.Second})
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
		secrets = e.Vault
	}
	cached := credcache.New(secrets, credcache.WithClock(e.Clock.Now)) // as the functions wire it
	hc := &http.Client{Transport: counting{&e.apiCalls, &e.beforeAPI}, Timeout: 5 * time.Second}
	sp := spapiClient(hc)
	return poll.NewAmazonSource(e.gateway(cached, sp), sp, poll.WithClock(e.Clock.Now))
}

// gateway is the seller gateway on cached credentials, against the sandbox.
func (e *env) gateway(cached *credcache.Cache, sp *spapi.Client) *sellerapi.Gateway {
	return sellerapi.New(cached, e.LWA, sp, e.Store, sellerapi.WithEndpoint(e.SBURL), sellerapi.WithLogger(quiet()))
}

func (e *env) poller(src poll.Source) *poll.Poller {
	return poll.NewPoller(e.Store, src, poll.WithConfig(e.cfg), poll.WithClock(e.Clock.Now), poll.WithLogger(quiet()))
}

// seller is a sandbox seller connected as a tenant.
type seller = sellertest.Seller

// connect connects sandbox seller n (sellertest.World.Connect) with its
// secret in Vault.
func (e *env) connect(n int) seller { return e.Connect(n, e.Vault) }

func message(s seller) pollqueue.Message {
	return pollqueue.Message{TenantID: s.TenantID, ConnectionID: s.ConnectionID, EnqueuedAt: t0}
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
	Messages, Tickets, TMsg int
	NextPollAt              time.Time
	Claimed                 bool
}

func (e *env) state(s seller) state {
	e.T.Helper()
	ctx := context.Background()
	var st state
	var lastErr *string
	var claimed *time.Time
	if err := e.Pool.QueryRow(ctx, `SELECT CASE WHEN mc."status" = 'ERROR' AND k."reauthReason" IS NOT NULL THEN 'NEEDS_REAUTH' ELSE mc."status"::text END,
	mc."lastError", k."nextPollAt", k."pollClaimedUntil", (SELECT count(*) FROM "ExternalMessage" WHERE "connectionId" = mc."id")
FROM public."MarketplaceConnection" mc JOIN keybuzz_amazon."Connection" k ON k."connectionId" = mc."id" WHERE mc."id" = $1`, s.ConnectionID).
		Scan(&st.Status, &lastErr, &st.NextPollAt, &claimed, &st.Messages); err != nil {
		e.T.Fatal(err)
	}
	if lastErr != nil {
		st.LastError = *lastErr
	}
	st.Claimed = claimed != nil
	_ = e.Pool.QueryRow(ctx, `SELECT "cursorAt", "paginationToken" FROM keybuzz_amazon."SyncState" WHERE "connectionId" = $1`, s.ConnectionID).Scan(&st.Cursor, &st.Token)
	st.Tickets, st.TMsg = e.Tickets(s)
	return st
}

// checkMatches fails unless the connection holds exactly the sandbox's
// events since since (sellertest.World.CheckExactlyOnce), and returns its
// state.
func (e *env) checkMatches(s seller, since time.Time) state {
	e.T.Helper()
	e.CheckExactlyOnce(s, since)
	return e.state(s)
}
