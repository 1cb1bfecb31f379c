package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// sandboxRig is an in-process Amazon sandbox on loopback and the stack's
// Vault, for the benchmarks that run the real poller against it.
type sandboxRig struct {
	sb      *sandbox.Server
	url     string
	cfg     config.Config
	secrets *vaultstore.Store
	// searches records the searchOrders calls the sandbox answered.
	searches *searchLog
}

// newSandboxRig serves a sandbox with sellers sellers on clock (nil: the
// real clock) and checks that the stack's app credentials are the
// sandbox's default app. close stops it.
//
// With deliver, the sandbox delivers notifications to the stack's SQS
// emulator; opts change its configuration further (the relay's SMTP
// address).
func (e *env) newSandboxRig(ctx context.Context, sellers int, clock sandbox.Clock, deliver bool, opts ...func(*sandbox.Config)) (*sandboxRig, error) {
	sbCfg := sandbox.DefaultConfig()
	if deliver {
		sbCfg.Deliver = sandbox.SQSDelivery(os.Getenv("AWS_ENDPOINT_URL_SQS"))
	}
	if clock != nil {
		sbCfg.Clock = clock
	}
	if sellers > sbCfg.Sellers {
		sbCfg.Sellers = sellers
	}
	for _, o := range opts {
		o(&sbCfg)
	}
	sb := sandbox.New(sbCfg)
	now := time.Now
	if clock != nil {
		now = clock.Now
	}
	searches := &searchLog{now: now}
	u, stop, err := serve(searches.wrap(sb))
	if err != nil {
		return nil, err
	}
	e.cleanup = append(e.cleanup, stop)
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	secrets, err := vaultstore.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	app, err := secrets.App(ctx)
	if err != nil {
		return nil, fmt.Errorf("app credentials (seeded by the stack): %w", err)
	}
	if app.ClientID != sbCfg.ClientID {
		return nil, fmt.Errorf("the stack's app credentials (%s) are not the sandbox's default app (%s)", app.ClientID, sbCfg.ClientID)
	}
	return &sandboxRig{sb: sb, url: u, cfg: cfg, secrets: secrets, searches: searches}, nil
}

// connect makes seller i a CONNECTED tenant: its refresh token in Vault
// (deleted at close) and its connection row, due at start.
func (r *sandboxRig) connect(ctx context.Context, e *env, store *postgres.Store, i int, label string, start time.Time) (tenant, connID string, seller sandbox.Seller, err error) {
	sellers := r.sb.Sellers()
	if i >= len(sellers) {
		return "", "", seller, fmt.Errorf("seller %d of %d", i, len(sellers))
	}
	seller = sellers[i]
	refresh, err := r.sb.IssueRefreshToken(seller.ID)
	if err != nil {
		return "", "", seller, err
	}
	tenant = "bench-" + label + "-" + devrand.Hex(4)
	if _, err := r.secrets.PutTenant(ctx, tenant, marketplace.TenantCredentials{
		RefreshToken: secret.Value(refresh), SellerID: seller.ID, MarketplaceID: seller.MarketplaceIDs[0], Region: seller.Region, CreatedAt: start,
	}); err != nil {
		return "", "", seller, err
	}
	e.cleanup = append(e.cleanup, func() { _ = r.secrets.DeleteTenant(context.Background(), tenant) })
	if err := poolOf(store).QueryRow(ctx, `
SELECT keybuzz_dev.connection($1, 'CONNECTED', $2, $3, $4, $5, connected_at => $6, next_poll_at => $6)`,
		tenant, seller.Region, seller.MarketplaceIDs[0], seller.ID, "keybuzz/tenants/"+tenant+"/amazon", start).Scan(&connID); err != nil {
		return "", "", seller, fmt.Errorf("seed connection: %w", err)
	}
	return tenant, connID, seller, nil
}

// searchCall is one searchOrders call the sandbox answered, as the caller
// saw it on the wire.
type searchCall struct {
	At        time.Time // when it was answered, on the rig's clock
	Status    int
	Before    time.Time // the answer's lastUpdatedBefore (zero when it has none: a 429, an error)
	RateLimit float64   // the answer's x-amzn-RateLimit-Limit (0: none)
}

// searchLog records searchOrders calls (GET /orders/2026-01-01/orders) by
// wrapping the sandbox's handler: the poll's window ends and rate, as
// measured rather than as the code is believed to set them.
type searchLog struct {
	now   func() time.Time
	mu    sync.Mutex
	calls []searchCall
}

func (l *searchLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/orders/2026-01-01/orders" {
			h.ServeHTTP(w, r)
			return
		}
		rec := &recordingWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		c := searchCall{At: l.now(), Status: rec.status}
		c.RateLimit, _ = strconv.ParseFloat(rec.Header().Get("x-amzn-RateLimit-Limit"), 64)
		var body struct {
			LastUpdatedBefore time.Time `json:"lastUpdatedBefore"`
		}
		if rec.status == http.StatusOK && json.Unmarshal(rec.body.Bytes(), &body) == nil {
			c.Before = body.LastUpdatedBefore
		}
		l.mu.Lock()
		l.calls = append(l.calls, c)
		l.mu.Unlock()
	})
}

// list is the calls so far, in order.
func (l *searchLog) list() []searchCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// recordingWriter keeps a copy of the status and body it passes on.
type recordingWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *recordingWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}
