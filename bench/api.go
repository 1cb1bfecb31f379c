package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
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
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// apiPoolSize is the pool cmd/local opens (cmd/local opens 10); the
// bare baseline gets the same.
const apiPoolSize = 10

// benchAPI drives oauthstart and status through the local server's handlers
// (httpapi.Mux of the five routes, built as the API functions' mains build them) with a bounded
// load generator on loopback, and the same requests through a bare
// net/http handler doing the route's work in one database round trip.
func benchAPI(ctx context.Context, e *env) (section, error) {
	sec := section{Title: "API (oauthstart, status)"}
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
	store := postgres.New(pool)
	verifier, err := auth.NewVerifier(ctx, cfg)
	if err != nil {
		return sec, err
	}
	// As cmd/local and the API functions' mains wire it, with Vault reads
	// counted under the cache.
	vault := &countingVault{Store: secrets}
	cached, lwaClient := credcache.New(vault), lwa.New(cfg.LWATokenURL)
	gw := sellerapi.New(cached, lwaClient, spapi.New(), store, sellerapi.WithEndpoint(cfg.SPAPIEndpoint), sellerapi.WithLogger(log))
	api := httpapi.Mux(
		httpapi.StartRoute(connect.NewStart(store, cached, connect.StartConfig{SellerCentralURL: cfg.SellerCentralURL}), verifier, log),
		httpapi.CallbackRoute(connect.NewCallback(store, cached, lwaClient, connect.CallbackConfig{Participations: gw, Log: log}), log, cfg.FrontendReturnURL),
		httpapi.LoginRoute(connect.NewLogin(store, cached, connect.LoginConfig{SellerCentralURL: cfg.SellerCentralURL}), log, ""),
		httpapi.StatusRoute(connect.NewStatus(store, connect.StatusConfig{Log: log}), verifier, log),
		httpapi.DisconnectRoute(connect.NewDisconnect(store, cached, connect.DisconnectConfig{Log: log}), verifier, log))

	// Tenants, half of them connected (status reads a row either way).
	if _, err := pool.Exec(ctx, `
SELECT keybuzz_dev.connection('bench-api-' || g, CASE WHEN g % 2 = 0 THEN 'CONNECTED' ELSE 'PENDING' END, 'EU', 'A13V1IB3VIYZZH',
       'ASELLER' || g, 'keybuzz/tenants/bench-api-' || g || '/amazon', connected_at => now(), display_name => 'Shop ' || g)
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

	realURL, stopReal, err := serve(api)
	if err != nil {
		return sec, err
	}
	defer stopReal()
	bareTrace := newSQLTrace()
	barePool, err := openTracedPool(ctx, dbURL, apiPoolSize, bareTrace) // the same settings, traced as well
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
	var perReq, loadTables, orders []string
	trace.reset()
	bareTrace.reset()
	for _, rt := range routes {
		trace.reset()
		bareTrace.reset()
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
		bare, real, order, err := compareLoad(ctx, e, client, sc, bareReq, realReq)
		orders = append(orders, rt.name+": "+order)
		if err != nil {
			return sec, fmt.Errorf("%s: %w", rt.name, err)
		}
		e.logf("api %s: real %.0f req/s p50 %.2f ms p99 %.2f ms; bare %.0f req/s p50 %.2f ms p99 %.2f ms",
			rt.name, real.RPS, ms(real.P50), ms(real.P99), bare.RPS, ms(bare.P50), ms(bare.P99))
		loadTables = append(loadTables, rt.name+", real route:\n\n"+trace.table(), rt.name+", bare handler:\n\n"+bareTrace.table())
		loadMean := [2]float64{trace.meanMS(), bareTrace.meanMS()}
		// One more request of each side, alone, counted: database
		// statements (pgx tracer) and Vault reads under the cache.
		trace.reset()
		bareTrace.reset()
		vaultBefore := vault.reads()
		if _, err := load(ctx, client, 1, 1, realReq); err != nil {
			return sec, err
		}
		if _, err := load(ctx, client, 1, 1, bareReq); err != nil {
			return sec, err
		}
		perReq = append(perReq, fmt.Sprintf("- %s: the real route sent %d statement(s) (%s) and read Vault %d time(s) (warm cache); the bare handler sent %d (%s).",
			rt.name, trace.calls(), trace.list(), vault.reads()-vaultBefore, bareTrace.calls(), bareTrace.list()))
		r := ratio(real.RPS, bare.RPS)
		realStmts, bareStmts := trace.calls(), bareTrace.calls()
		realMean, bareMean := loadMean[0], loadMean[1]
		sec.Results = append(sec.Results,
			Result{Name: "api_" + rt.name + "_throughput", Value: real.RPS, Unit: "req/s",
				Baselines: map[string]float64{"bare_handler": bare.RPS}, Ratios: map[string]float64{"bare_handler": r},
				Goal: "≥ 0.5 × bare_handler", checks: []check{atLeast("ratio:bare_handler", 0.5)},
				miss: "the route's own work (JWT, connect flow, store) costs more than its one database round trip",
				explain: func(m Result) string {
					return fmt.Sprintf(`It reaches %.2f of the bare handler (median). Per request the real route
sent %d database statement(s) where the bare handler sent %d (counted by the
pgx tracer on one request each, listed below); during the load a statement
of the real route took %.3f ms on average and one of the bare handler %.3f ms
(client time, round trip included), on a %d-core machine where client,
server, PostgreSQL and Vault share the CPUs.`, m.Ratios["bare_handler"], realStmts, bareStmts, realMean, bareMean, runtime.NumCPU())
				}},
			Result{Name: "api_" + rt.name + "_p50", Value: ms(real.P50), Unit: "ms",
				Baselines: map[string]float64{"bare_handler": ms(bare.P50)}, Ratios: map[string]float64{"bare_handler": ratio(ms(real.P50), ms(bare.P50))},
				Goal: "report only"},
			Result{Name: "api_" + rt.name + "_p99", Value: ms(real.P99), Unit: "ms",
				Baselines: map[string]float64{"bare_handler": ms(bare.P99)}, Ratios: map[string]float64{"bare_handler": ratio(ms(real.P99), ms(bare.P99))},
				Goal: "report only"},
		)
	}

	loadStmts := strings.Join(loadTables, "\n")
	// Evidence for what a route costs beyond the bare round trip: a Vault
	// read (what a cold cache pays) and one database round trip.
	vaultLat, err := timeEach(ctx, 200, func() error { _, err := secrets.App(ctx); return err })
	if err != nil {
		return sec, fmt.Errorf("vault app read: %w", err)
	}
	dbLat, err := timeEach(ctx, 200, func() error { _, err := pool.Exec(ctx, `SELECT 1`); return err })
	if err != nil {
		return sec, err
	}
	sec.Notes = append(sec.Notes, fmt.Sprintf(`Load: %d requests per side, %d concurrent keep-alive clients on loopback, %d tenants
(half CONNECTED), every request with a valid HS256 Bearer token; after a
warm-up of each side, one round of each; odd runs measure the bare handler
first, even runs the real routes first (this run: %s). The real side is httpapi.Mux of the routes
built as the API functions' mains build it (JWT verifier, the connect flows with
credcache.New(vaultstore, credcache.DefaultTTL = %s), postgres.Store on a pool
of %d connections configured as postgres.Open), served by net/http as
cmd/local serves it. The bare side is a net/http handler on its own pool of
the same size that reads the tenant from a header: status = the same SELECT
of the tenant's connection; oauthstart = one statement that upserts the
connection and inserts the hashed state.

What one request costs, counted after the load (pgx tracer on each side's
pool, Vault reads counted under the cache):

%s

Over the whole run the API's Vault app-credentials reads numbered %d (the
cache's misses). Measured in the same run: a Vault app-credentials read
takes p50 %.2f ms (p99 %.2f ms); a database round trip (SELECT 1 on the real
side's pool) p50 %.2f ms.

Statements sent during the load (warm-ups and rounds; pgx tracer on each
side's pool, client time with the round trip):

%s`,
		sc.APIRequests, sc.APIConcurrency, sc.APITenants, strings.Join(orders, "; "), credcache.DefaultTTL, apiPoolSize,
		strings.Join(perReq, "\n"), vault.appReads.Load(), ms(vaultLat.P50), ms(vaultLat.P99), ms(dbLat.P50), loadStmts))
	return sec, nil
}

// countingVault counts the credential reads that reach the store under
// the cache.
type countingVault struct {
	credcache.Store
	appReads, tenantReads atomic.Int64
}

func (v *countingVault) App(ctx context.Context) (marketplace.AppCredentials, error) {
	v.appReads.Add(1)
	return v.Store.App(ctx)
}

func (v *countingVault) Tenant(ctx context.Context, id string) (marketplace.TenantCredentials, error) {
	v.tenantReads.Add(1)
	return v.Store.Tenant(ctx, id)
}

func (v *countingVault) reads() int64 { return v.appReads.Load() + v.tenantReads.Load() }

// compareLoad warms both sides, then runs one round of each, in the
// current run's order (env.inOrder: the baseline first in odd runs, the
// real routes first in even runs), and says which went first.
func compareLoad(ctx context.Context, e *env, client *http.Client, sc scale, bareReq, realReq func(int) *http.Request) (bare, real loadStats, order string, err error) {
	warm := func(f func(int) *http.Request) func() error {
		return func() error {
			if _, err := load(ctx, client, min(100, sc.APIRequests), sc.APIConcurrency, f); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
			return nil
		}
	}
	if _, err := e.inOrder(warm(bareReq), warm(realReq)); err != nil {
		return bare, real, "", err
	}
	order, err = e.inOrder(func() (err error) {
		bare, err = load(ctx, client, sc.APIRequests, sc.APIConcurrency, bareReq)
		return err
	}, func() (err error) {
		real, err = load(ctx, client, sc.APIRequests, sc.APIConcurrency, realReq)
		return err
	})
	return bare, real, order, err
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
WITH k AS (
    INSERT INTO keybuzz_amazon."Connection" ("connectionId", "tenantId") VALUES (keybuzz_amazon.cuid(), $1)
    ON CONFLICT ("tenantId", "type") DO UPDATE SET "updatedAt" = now()
    RETURNING "connectionId"
), c AS (
    INSERT INTO public."MarketplaceConnection" ("id", "tenantId", "type", "status", "createdAt", "updatedAt")
    SELECT k."connectionId", $1, 'AMAZON', 'PENDING', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC' FROM k
    ON CONFLICT ("id") DO UPDATE SET "updatedAt" = EXCLUDED."updatedAt"
    RETURNING "id"
)
INSERT INTO keybuzz_amazon."ConnectState" ("stateHash", "tenantId", "connectionId", "bindingHash", "appSource", "expiresAt")
SELECT $2, $1, c."id", '', 'external_test', now() + interval '15 minutes' FROM c
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
