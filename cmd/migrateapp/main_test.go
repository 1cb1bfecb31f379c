package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
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

var noRedirect = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// twoApps is the connector with both applications registered at Amazon
// (the sandbox) and in Vault.
type twoApps struct {
	t       *testing.T
	store   *postgres.Store
	secrets *credcache.Cache
	sbURL   string
	log     *slog.Logger
}

func newTwoApps(t *testing.T) *twoApps {
	ctx := context.Background()
	pool, _ := testenv.Pool(t)
	cfg := sandbox.DefaultConfig()
	kb := sandbox.App{ClientID: "amzn1.application-oa2-client.keybuzz-own", ClientSecret: "keybuzz-own-secret", ApplicationID: "amzn1.sp.solution.keybuzz-own"}
	cfg.OtherApps = []sandbox.App{kb}
	cfg.Sellers = 4
	_, sbURL := sandboxtest.Start(t, cfg)

	paths := map[marketplace.AppSource]string{
		marketplace.AppExternalTest: "keybuzz/ai/" + testenv.ID("app-temp"),
		marketplace.AppKeyBuzz:      "keybuzz/ai/" + testenv.ID("app-keybuzz"),
	}
	vs := vaultstore.New(testenv.Vault(t), "secret", paths[marketplace.AppExternalTest], vaultstore.WithAppPaths(paths))
	for src, app := range map[marketplace.AppSource]sandbox.App{
		marketplace.AppExternalTest: {ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, ApplicationID: cfg.ApplicationID},
		marketplace.AppKeyBuzz:      kb,
	} {
		if err := vaultstore.New(testenv.Vault(t), "secret", paths[src]).PutApp(ctx, marketplace.AppCredentials{ClientID: app.ClientID, ClientSecret: secret.Value(app.ClientSecret),
			ApplicationID: app.ApplicationID, RedirectURI: cfg.RedirectURIs[0], Region: "eu", Draft: true}); err != nil {
			t.Fatal(err)
		}
	}
	return &twoApps{t: t, store: postgres.New(pool), secrets: credcache.New(vs), sbURL: sbURL,
		log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
}

// connect runs a consent for tenant as seller n with AMAZON_SPAPI_APP_SOURCE=app.
func (e *twoApps) connect(tenant string, seller int, app marketplace.AppSource) {
	e.t.Helper()
	ctx := context.Background()
	start := connect.NewStart(e.store, e.secrets, connect.StartConfig{AppSource: app, SellerCentralURL: e.sbURL})
	callback := connect.NewCallback(e.store, e.secrets, lwa.New(e.sbURL+"/auth/o2/token"), connect.CallbackConfig{AppSource: app, Log: e.log})
	st, err := start.Run(ctx, connect.StartInput{TenantID: tenant})
	if err != nil {
		e.t.Fatal(err)
	}
	u, _ := url.Parse(st.AuthURL)
	q := u.Query()
	q.Set("sandbox_auto_approve", "true")
	q.Set("sandbox_seller", sandbox.SellerID(seller))
	u.RawQuery = q.Encode()
	resp, err := noRedirect.Get(u.String())
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	cb := loc.Query()
	if _, err := callback.Run(ctx, connect.CallbackInput{Code: secret.Value(cb.Get("spapi_oauth_code")), State: st.State,
		SellingPartnerID: cb.Get("selling_partner_id"), Binding: st.Binding}); err != nil {
		e.t.Fatalf("connect %s on %s: %v (consent %d %s)", tenant, app, err, resp.StatusCode, loc)
	}
}

// poll syncs the tenant's connection as polltenant does.
func (e *twoApps) poll(tenant string) (marketplace.Connection, error) {
	e.t.Helper()
	ctx := context.Background()
	c, _, err := e.store.ConnectionByTenant(ctx, tenant)
	if err != nil {
		e.t.Fatal(err)
	}
	sp := spapi.New()
	src := poll.NewAmazonSource(sellerapi.New(e.secrets, lwa.New(e.sbURL+"/auth/o2/token"), sp, e.store,
		sellerapi.WithEndpoint(e.sbURL), sellerapi.WithLogger(e.log)), sp)

	p := poll.NewPoller(e.store, src, poll.WithLogger(e.log))
	_, perr := p.PollResult(ctx, pollqueue.Message{TenantID: tenant, ConnectionID: c.ID, EnqueuedAt: time.Now()})
	after, _, err := e.store.ConnectionByTenant(ctx, tenant)
	if err != nil {
		e.t.Fatal(err)
	}
	return after, perr
}

// Connections on both apps: whatever AMAZON_SPAPI_APP_SOURCE chooses for
// new consents, every connection polls with the app that authorized it;
// the migration's dry run lists the old-app ones and changes nothing, the
// real run marks them NEEDS_REAUTH (app_migration) in batches, and a
// reconnect moves a connection to the new app.
func TestConnectionsKeepTheirAppAndMigrate(t *testing.T) {
	e := newTwoApps(t)
	ctx := context.Background()
	var old []string
	for i := 1; i <= 3; i++ { // on the external test app (the seed's default)
		tenant := testenv.ID("tenant-old")
		e.connect(tenant, i, marketplace.AppExternalTest)
		old = append(old, tenant)
	}
	newer := testenv.ID("tenant-new")
	e.connect(newer, 4, marketplace.AppKeyBuzz) // AMAZON_SPAPI_APP_SOURCE switched to keybuzz
	for _, tenant := range append(append([]string{}, old...), newer) {
		c, err := e.poll(tenant)
		if err != nil || c.Status != marketplace.StatusConnected || c.LastError != "" {
			t.Fatalf("poll %s (app %s): %s %q (%v)", tenant, c.AppSource, c.Status, c.LastError, err)
		}
	}
	if c, _, _ := e.store.ConnectionByTenant(ctx, newer); c.AppSource != marketplace.AppKeyBuzz {
		t.Errorf("new consent on %s, want keybuzz", c.AppSource)
	}

	// Dry run: lists the three old-app connections, changes nothing.
	var out bytes.Buffer
	n, err := run(ctx, e.store, options{to: marketplace.AppKeyBuzz, batch: 2}, &out)
	if err != nil || n != 3 || strings.Count(out.String(), "would mark") != 3 || strings.Contains(out.String(), newer) {
		t.Fatalf("dry run: %d (%v)\n%s", n, err, out.String())
	}
	for _, tenant := range old {
		if !strings.Contains(out.String(), "tenant="+tenant) {
			t.Errorf("dry run does not list %s", tenant)
		}
		if c, _, _ := e.store.ConnectionByTenant(ctx, tenant); c.Status != marketplace.StatusConnected {
			t.Errorf("dry run changed %s to %s", tenant, c.Status)
		}
	}

	// Real run, limited to 2, then the rest.
	out.Reset()
	if n, err := run(ctx, e.store, options{to: marketplace.AppKeyBuzz, apply: true, batch: 1, limit: 2}, &out); err != nil || n != 2 {
		t.Fatalf("apply (limit 2): %d (%v)\n%s", n, err, out.String())
	}
	if n, err := run(ctx, e.store, options{to: marketplace.AppKeyBuzz, apply: true, batch: 10}, &out); err != nil || n != 1 {
		t.Fatalf("apply (rest): %d (%v)\n%s", n, err, out.String())
	}
	if n, _ := run(ctx, e.store, options{to: marketplace.AppKeyBuzz, apply: true, batch: 10}, io.Discard); n != 0 {
		t.Errorf("a second real run marked %d more", n)
	}
	for _, tenant := range old {
		c, _, _ := e.store.ConnectionByTenant(ctx, tenant)
		if c.Status != marketplace.StatusNeedsReauth || c.ReauthReason != marketplace.ReauthAppMigration {
			t.Errorf("%s: %s %s, want NEEDS_REAUTH app_migration", tenant, c.Status, c.ReauthReason)
		}
	}
	if c, _, _ := e.store.ConnectionByTenant(ctx, newer); c.Status != marketplace.StatusConnected {
		t.Errorf("the keybuzz-app connection became %s", c.Status)
	}
	// The seller reconnects: the connection moves to the keybuzz app and polls.
	e.connect(old[0], 1, marketplace.AppKeyBuzz)
	c, err := e.poll(old[0])
	if err != nil || c.Status != marketplace.StatusConnected || c.AppSource != marketplace.AppKeyBuzz || c.ReauthReason != "" {
		t.Errorf("after reconnect: %s %s %q (%v)", c.Status, c.AppSource, c.ReauthReason, err)
	}
}

func TestRunRefusesBadOptions(t *testing.T) {
	for _, o := range []options{{to: "other", batch: 1}, {to: marketplace.AppKeyBuzz, batch: 0}} {
		if _, err := run(context.Background(), nil, o, io.Discard); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
