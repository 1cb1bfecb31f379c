// Package sellertest is the world of the flows' integration tests: the
// Amazon sandbox in-process on a manual clock, a freshly migrated database,
// the real Vault with the sandbox's application at a path of the test's
// own, and sandbox sellers connected as KeyBuzz tenants the way a seller
// connects (consent, LWA's code exchange, the tenant's secret, a CONNECTED
// row).
package sellertest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// T0 is the sandbox's and the store's clock at the start of every test.
var T0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// World is one test's world, all on one manual clock.
type World struct {
	T     *testing.T
	Clock *sandbox.ManualClock
	SB    *sandbox.Server
	SBURL string
	Pool  *pgxpool.Pool
	Store *postgres.Store
	Vault *vaultstore.Store // the sandbox's app written, tenants under it
	LWA   *lwa.Client       // the sandbox's token endpoint
}

// Start starts the sandbox of cfg (its Clock replaced by the world's, at
// T0), a fresh database with a store on that clock, and the sandbox's app
// in Vault; LWA is called through lwaHTTP.
func Start(t *testing.T, cfg sandbox.Config, lwaHTTP *http.Client) *World {
	t.Helper()
	w := &World{T: t, Clock: sandbox.NewManualClock(T0)}
	cfg.Clock = w.Clock
	w.SB, w.SBURL = sandboxtest.Start(t, cfg)
	w.Pool, _ = testenv.Pool(t)
	w.Store = postgres.New(w.Pool, postgres.WithClock(w.Clock.Now))
	w.Vault = vaultstore.New(testenv.Vault(t), "secret", "keybuzz/test/"+testenv.ID("app"))
	if err := w.Vault.PutApp(context.Background(), marketplace.AppCredentials{
		ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret), ApplicationID: cfg.ApplicationID, Region: "eu", Draft: true,
	}); err != nil {
		t.Fatalf("put app credentials: %v", err)
	}
	w.LWA = lwa.New(w.SBURL+"/auth/o2/token", lwa.WithHTTPClient(lwaHTTP))
	return w
}

// Seller is a sandbox seller connected as a tenant.
type Seller struct {
	N            int
	ID           string // the selling partner id
	TenantID     string
	ConnectionID string
	Marketplaces []string
}

// TenantSecrets writes and deletes a tenant's secret: the world's Vault,
// or a credential cache in front of it.
type TenantSecrets interface {
	PutTenant(ctx context.Context, tenantID string, c marketplace.TenantCredentials) (string, error)
	DeleteTenant(ctx context.Context, tenantID string) error
}

// Connect authorizes sandbox seller n the way a seller does (auto-approved
// consent, then LWA's authorization_code grant), writes the tenant's secret
// with the refresh token through secrets (deleted when the test ends) and a
// CONNECTED row connected now and due now.
func (w *World) Connect(n int, secrets TenantSecrets) Seller {
	w.T.Helper()
	ctx := context.Background()
	s := Seller{N: n, ID: sandbox.SellerID(n), TenantID: testenv.ID("tenant")}
	for _, sl := range w.SB.Sellers() {
		if sl.ID == s.ID {
			s.Marketplaces = sl.MarketplaceIDs
		}
	}
	code := sandboxtest.Consent(w.T, w.SBURL, s.ID)
	cfg := sandbox.DefaultConfig()
	tok, err := w.LWA.Exchange(ctx, lwa.App{ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret)}, code)
	if err != nil {
		w.T.Fatalf("exchange code: %v", err)
	}
	path, err := secrets.PutTenant(ctx, s.TenantID, marketplace.TenantCredentials{
		RefreshToken: tok.RefreshToken, SellerID: s.ID, MarketplaceID: strings.Join(s.Marketplaces, ","), Region: "eu",
	})
	if err != nil {
		w.T.Fatalf("put tenant: %v", err)
	}
	w.T.Cleanup(func() { _ = secrets.DeleteTenant(context.Background(), s.TenantID) })
	s.ConnectionID = w.AddConnection(s.TenantID, s.ID, strings.Join(s.Marketplaces, ","), path)
	return s
}

// AddConnection writes a CONNECTED connection of the tenant for sellerID
// (its marketplaces comma-separated, its secret at vaultPath), connected
// now and due now, and returns its id.
func (w *World) AddConnection(tenantID, sellerID, marketplaces, vaultPath string) string {
	w.T.Helper()
	var id string
	err := w.Pool.QueryRow(context.Background(), `
SELECT keybuzz_dev.connection($1, 'CONNECTED', 'eu', $2, $3, $4, connected_at => $5, next_poll_at => $5)`,
		tenantID, marketplaces, sellerID, vaultPath, w.Clock.Now()).Scan(&id)
	if err != nil {
		w.T.Fatal(err)
	}
	return id
}

// Truth is the sandbox's ground truth for a seller: the external ids of its
// buyer events at or after since (as polling and push name them), and the
// number of their distinct orders.
func (w *World) Truth(s Seller, since time.Time) (map[string]sandbox.Event, int) {
	ids := map[string]sandbox.Event{}
	orders := map[string]bool{}
	for _, ev := range w.SB.BuyerEvents(s.ID) {
		if ev.At.Before(since) {
			continue
		}
		ids[ev.OrderID+":"+ev.OrderItemID+":cancellation"] = ev
		orders[ev.OrderID] = true
	}
	return ids, len(orders)
}

// Tickets counts the tenant's Ticket and TicketMessage rows.
func (w *World) Tickets(s Seller) (tickets, messages int) {
	w.T.Helper()
	ctx := context.Background()
	if err := w.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM "Ticket" WHERE "tenantId" = $1), (SELECT count(*) FROM "TicketMessage" WHERE "tenantId" = $1)`,
		s.TenantID).Scan(&tickets, &messages); err != nil {
		w.T.Fatal(err)
	}
	return tickets, messages
}

// CheckExactlyOnce fails the test unless the seller's connection holds
// exactly the truth's events since since, each once as an ExternalMessage
// with its TicketMessage, in one ticket per order; a truth with no event
// fails too (the test would prove nothing). It returns the stored bodies by
// externalId.
func (w *World) CheckExactlyOnce(s Seller, since time.Time) map[string]string {
	w.T.Helper()
	want, orders := w.Truth(s, since)
	if len(want) == 0 {
		w.T.Fatal("the sandbox has no buyer events in the window: the test proves nothing")
	}
	bodies := w.Bodies(s)
	for id := range want {
		if _, ok := bodies[id]; !ok {
			w.T.Errorf("missing event %s", id)
		}
	}
	for id := range bodies {
		if _, ok := want[id]; !ok {
			w.T.Errorf("unexpected event %s", id)
		}
	}
	tickets, tmsg := w.Tickets(s)
	if len(bodies) != len(want) || tmsg != len(want) || tickets != orders {
		w.T.Errorf("ExternalMessage=%d TicketMessage=%d Ticket=%d, want %d %d %d", len(bodies), tmsg, tickets, len(want), len(want), orders)
	}
	return bodies
}

// Bodies is what the seller's connection holds: each ExternalMessage's
// externalId and its TicketMessage's body; an ExternalMessage without a
// TicketMessage fails the test.
func (w *World) Bodies(s Seller) map[string]string {
	w.T.Helper()
	rows, err := w.Pool.Query(context.Background(), `SELECT e."externalId", tm."body" FROM public."ExternalMessage" e
	LEFT JOIN keybuzz_amazon."Message" m ON m."externalMessageId" = e."id"
	LEFT JOIN public."TicketMessage" tm ON tm."id" = m."ticketMessageId" WHERE e."connectionId" = $1`, s.ConnectionID)
	if err != nil {
		w.T.Fatal(err)
	}
	defer rows.Close()
	bodies := map[string]string{}
	for rows.Next() {
		var id string
		var body *string
		if err := rows.Scan(&id, &body); err != nil {
			w.T.Fatal(err)
		}
		if body == nil {
			w.T.Fatalf("ExternalMessage %s has no TicketMessage", id)
		}
		if _, dup := bodies[id]; dup {
			w.T.Errorf("event %s stored twice", id)
		}
		bodies[id] = *body
	}
	if err := rows.Err(); err != nil {
		w.T.Fatal(err)
	}
	return bodies
}
