package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// apiPoolSize is the pool cmd/local opens (cmd/local opens 10); the
// bare baseline gets the same.
const apiPoolSize = 10

// benchAPI drives oauthstart and status through the local server's handlers
// (httpapi.API.Routes, built as the API functions' mains build them) with a bounded
// load generator on loopback, and the same requests through a bare
// net/http handler doing the route's work in one database round trip.
func benchAPI(ctx context.Context, e *env) (section, error) {
	sec := section{Title: "3. API (oauthstart, status)"}
	sc := e.sc
	dbURL, err := e.freshDB(ctx, "api")
	if err != nil {
		return sec, err
	}
	cfg, err := config.Load(func(k string) string {
		if k == "DATABASE_URL" {
			return dbURL
		}
		return os.Getenv(k)
	})
	if err != nil {
		return sec, err
	}
	trace := newSQLTrace()
	pool, err := openTracedPool(ctx, dbURL, apiPoolSize, trace) // postgres.Open's settings, traced
	if err != nil {
		return sec, err
	}
	e.cleanup = append(e.cleanup, pool.Close)
	secrets, err := vaultstore.Open(ctx, cfg)
	if err != nil {
		return sec, err
	}
	log := logging.New(io.Discard, cfg.LogLevel)
	store := postgres.New(pool, nil)
	verifier, err := auth.NewVerifier(ctx, cfg)
	if err != nil {
		return sec, err
	}
	// As cmd/local and the API functions' mains wire it.
	flow := connect.New(store, credcache.New(secrets, credcache.DefaultTTL, nil), lwa.New(cfg.LWATokenURL, nil), cfg.SellerCentralURL,
		connect.WithLogger(log), connect.WithParticipations(spapi.New(nil), cfg.SPAPIEndpoint))
	api := &httpapi.API{Connect: flow, Auth: verifier, Log: log, ReturnURL: cfg.FrontendReturnURL}

	// Tenants, half of them connected (status reads a row either way).
	if _, err := pool.Exec(ctx, `
INSERT INTO "MarketplaceConnection" ("tenantId", "type", "status", "displayName", "region", "marketplaceId", "sellingPartnerId", "vaultPath", "connectedAt")
SELECT 'bench-api-' || g, 'AMAZON', (CASE WHEN g % 2 = 0 THEN 'CONNECTED' ELSE 'PENDING' END)::"MarketplaceConnectionStatus", 'Shop ' || g, 'EU', 'A13V1IB3VIYZZH',
       'ASELLER' || g, 'keybuzz/tenants/bench-api-' || g || '/amazon', now()
FROM generate_series(1, $1) g`, sc.APITenants); err != nil {
		return sec, fmt.Errorf("seed tenants: %w", err)
	}
	tenants := make([]string, sc.APITenants)
	tokens := make([]string, sc.APITenants)
	key := secret.Value(os.Getenv("AUTH_JWT_HS256_SECRET"))
	for i := range tenants {
		tenants[i] = fmt.Sprintf("bench-api-%d", i+1)
		tokens[i], err = auth.Issue(key, cfg.JWTIssuer, cfg.JWTAudience, cfg.TenantClaim, tenants[i], 2*time.Hour, time.Now())
		if err != nil {
			return sec, err
		}
	}

	realURL, stopReal, err := serve(api.Routes())
	if err != nil {
		return sec, err
	}
	defer stopReal()
	barePool, err := postgres.Open(ctx, dbURL, apiPoolSize)
	if err != nil {
		return sec, err
	}
	e.cleanup = append(e.cleanup, barePool.Close)
	bareURL, stopBare, err := serve(bareHandler(barePool))
	if err != nil {
		return sec, err
	}
	defer stopBare()

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: sc.APIConcurrency * 2, MaxIdleConnsPerHost: sc.APIConcurrency * 2, IdleConnTimeout: time.Minute,
	}}
	defer client.CloseIdleConnections()

	routes := []struct {
		name, method, realPath, barePath string
	}{
		{"status", http.MethodGet, httpapi.StatusPath, "/bare/status"},
		{"oauthstart", http.MethodPost, httpapi.StartPath, "/bare/start"},
	}
	for _, rt := range routes {
		mk := func(base, path string) func(i int) *http.Request {
			return func(i int) *http.Request {
				t := i % len(tenants)
				var body io.Reader
				if rt.method == http.MethodPost {
					body = http.NoBody
				}
				req, _ := http.NewRequestWithContext(ctx, rt.method, base+path, body)
				req.Header.Set("Authorization", "Bearer "+tokens[t])
				req.Header.Set("X-Bench-Tenant", tenants[t])
				return req
			}
		}
		realReq, bareReq := mk(realURL, rt.realPath), mk(bareURL, rt.barePath)
		bare, real, err := compareLoad(ctx, client, sc, bareReq, realReq)
		if err != nil {
			return sec, fmt.Errorf("%s: %w", rt.name, err)
		}
		e.logf("api %s: real %.0f req/s p50 %.2f ms p99 %.2f ms; bare %.0f req/s p50 %.2f ms p99 %.2f ms",
			rt.name, real.RPS, ms(real.P50), ms(real.P99), bare.RPS, ms(bare.P50), ms(bare.P99))
		r := ratio(real.RPS, bare.RPS)
		sec.Results = append(sec.Results,
			Result{Name: "api_" + rt.name + "_throughput", Value: real.RPS, Unit: "req/s",
				Baselines: map[string]float64{"bare_handler": bare.RPS}, Ratios: map[string]float64{"bare_handler": r},
				Goal: "≥ 0.5 × bare_handler", Met: r >= 0.5},
			Result{Name: "api_" + rt.name + "_p50", Value: ms(real.P50), Unit: "ms",
				Baselines: map[string]float64{"bare_handler": ms(bare.P50)}, Ratios: map[string]float64{"bare_handler": ratio(ms(real.P50), ms(bare.P50))},
				Goal: "report only", Met: true},
			Result{Name: "api_" + rt.name + "_p99", Value: ms(real.P99), Unit: "ms",
				Baselines: map[string]float64{"bare_handler": ms(bare.P99)}, Ratios: map[string]float64{"bare_handler": ratio(ms(real.P99), ms(bare.P99))},
				Goal: "report only", Met: true},
		)
	}

	// Evidence for what a route costs beyond the bare round trip: the Vault
	// read oauthstart makes per request, and one database round trip.
	vaultLat, err := timeEach(ctx, 200, func() error { _, err := secrets.App(ctx); return err })
	if err != nil {
		return sec, fmt.Errorf("vault app read: %w", err)
	}
	dbLat, err := timeEach(ctx, 200, func() error { _, err := pool.Exec(ctx, `SELECT 1`); return err })
	if err != nil {
		return sec, err
	}
	sec.Notes = append(sec.Notes, fmt.Sprintf(`Load: %d requests per round, %d concurrent keep-alive clients on loopback, %d tenants
(half CONNECTED), every request with a valid HS256 Bearer token; two rounds
alternating bare/real after a warm-up, the better round of each side kept. The
real side is httpapi.API.Routes() built exactly as the API functions' mains build it
(JWT verifier, connect.Service, postgres.Store on postgres.Open with %d
connections, Vault client, JSON logger at LOG_LEVEL writing to io.Discard), served
by net/http as cmd/local serves it. The bare side is a net/http handler on
its own pool of the same size that reads the tenant from a header and makes
one database round trip: status = the same SELECT of the tenant's
connection; oauthstart = one statement that upserts the connection and
inserts the hashed state (what the real route does in a transaction).

What the real routes do per request (read from the code):
- status: JWT verification, one SELECT (ConnectionByTenant). Same round trips as the bare handler.
- oauthstart: JWT verification, **one Vault KV read of the app credentials**
  (connect.Service.Start -> vaultstore.Store.App, not cached), then a
  transaction of BEGIN, the connection upsert, the state INSERT, the DELETE
  of expired states and COMMIT: **5 database round trips** where the bare
  handler makes 1.

Measured in the same run: a Vault app-credentials read takes p50 %.2f ms
(p99 %.2f ms); a database round trip (SELECT 1 on the same pool) p50 %.2f ms.
The routes read the app credentials through credcache.Cache, as the
functions do, so a warm route makes no Vault read.

Statements the real routes sent over the whole benchmark (pgx tracer on
their pool; warm-ups, both rounds, status and oauthstart;
BEGIN/COMMIT of BeginConnect's transaction are not traced by pgx's query
tracer):

%s`,
		sc.APIRequests, sc.APIConcurrency, sc.APITenants, apiPoolSize,
		ms(vaultLat.P50), ms(vaultLat.P99), ms(dbLat.P50), trace.table()))
	for _, r := range sec.Results {
		if !r.Met {
			sec.Notes = append(sec.Notes, fmt.Sprintf(`**%s is below its goal (%.2f of bare).** What bounds it: the route's
extra round trips above, on a 2-core machine where client, server,
PostgreSQL and Vault share the CPUs.`, r.Name, r.Ratios["bare_handler"]))
		}
	}
	return sec, nil
}

// compareLoad warms both sides, then alternates bare/real twice and keeps
// each side's better round: a neighbour's build hitting one round should
// not decide the ratio.
func compareLoad(ctx context.Context, client *http.Client, sc scale, bareReq, realReq func(int) *http.Request) (bare, real loadStats, err error) {
	for _, f := range []func(int) *http.Request{bareReq, realReq} {
		if _, err := load(ctx, client, min(100, sc.APIRequests), sc.APIConcurrency, f); err != nil {
			return bare, real, fmt.Errorf("warm-up: %w", err)
		}
	}
	var best [2]loadStats
	for round := 0; round < 2; round++ {
		for side, f := range []func(int) *http.Request{bareReq, realReq} {
			st, err := load(ctx, client, sc.APIRequests, sc.APIConcurrency, f)
			if err != nil {
				return bare, real, err
			}
			if st.RPS > best[side].RPS {
				best[side] = st
			}
		}
	}
	return best[0], best[1], nil
}

// bareHandler is the baseline: net/http, one database round trip, JSON out.
func bareHandler(pool *pgxpool.Pool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bare/status", func(w http.ResponseWriter, r *http.Request) {
		var (
			status, name, region string
			lastSync             *time.Time
			lastError            string
		)
		err := pool.QueryRow(r.Context(), `SELECT "status"::text, COALESCE("displayName", ''), COALESCE("region", ''), "lastSyncAt", COALESCE("lastError", '')
FROM "MarketplaceConnection" WHERE "tenantId" = $1 AND "type" = 'AMAZON'`, r.Header.Get("X-Bench-Tenant")).Scan(&status, &name, &region, &lastSync, &lastError)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"connected": status == "CONNECTED", "status": status,
			"displayName": name, "region": region, "lastSyncAt": lastSync, "lastError": lastError})
	})
	mux.HandleFunc("POST /bare/start", func(w http.ResponseWriter, r *http.Request) {
		state := devrand.Hex(32)
		var expires time.Time
		err := pool.QueryRow(r.Context(), `
WITH c AS (
    INSERT INTO "MarketplaceConnection" ("tenantId", "type", "status") VALUES ($1, 'AMAZON', 'PENDING')
    ON CONFLICT ("tenantId", "type") DO UPDATE SET
        "status" = CASE WHEN "MarketplaceConnection"."status" = 'CONNECTED' THEN 'CONNECTED' ELSE 'PENDING' END::"MarketplaceConnectionStatus",
        "updatedAt" = now() AT TIME ZONE 'UTC'
    RETURNING "id"
)
INSERT INTO "MarketplaceOAuthState" ("stateHash", "tenantId", "connectionId", "expiresAt")
SELECT $2, $1, c."id", now() + interval '15 minutes' FROM c
RETURNING "expiresAt"`, r.Header.Get("X-Bench-Tenant"), state).Scan(&expires)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"authUrl": "http://127.0.0.1/apps/authorize/consent?state=" + state,
			"expiresAt": expires, "message": httpapi.StartMessage})
	})
	return mux
}

// serve runs h on a loopback port with cmd/local's server settings.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 16 << 10}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

type loadStats struct {
	N        int
	Elapsed  time.Duration
	RPS      float64
	P50, P99 time.Duration
}

// load sends n requests from c workers and measures throughput and
// latency. Any answer other than 200 is an error: a benchmark of failures
// would measure nothing.
func load(ctx context.Context, client *http.Client, n, c int, mk func(i int) *http.Request) (loadStats, error) {
	lat := make([]time.Duration, n)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				resp, err := client.Do(mk(i))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s %s: status %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode)
					}
				}
				lat[i] = time.Since(t0)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return loadStats{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return loadStats{}, err
	}
	return summarize(lat, elapsed), nil
}

func summarize(lat []time.Duration, elapsed time.Duration) loadStats {
	s := slices.Clone(lat)
	slices.Sort(s)
	return loadStats{N: len(s), Elapsed: elapsed, RPS: rate(len(s), elapsed), P50: pct(s, 0.50), P99: pct(s, 0.99)}
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

// timeEach runs f n times in a row and summarizes its latencies.
func timeEach(ctx context.Context, n int, f func() error) (loadStats, error) {
	lat := make([]time.Duration, n)
	start := time.Now()
	for i := range lat {
		if ctx.Err() != nil {
			return loadStats{}, ctx.Err()
		}
		t0 := time.Now()
		if err := f(); err != nil {
			return loadStats{}, err
		}
		lat[i] = time.Since(t0)
	}
	return summarize(lat, time.Since(start)), nil
}
