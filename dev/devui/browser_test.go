package devui_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/devui"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

const jwtSecret = secret.Value("browser-test-jwt-secret-0123456789abcdef")

// local is the local server of cmd/local in miniature: the API routes and
// the local page on one loopback origin, against the test stack's
// PostgreSQL, Vault and an Amazon sandbox.
type local struct {
	url     string
	pool    interface{ Close() }
	store   *postgres.Store
	secrets *vaultstore.Store
}

func startLocal(t *testing.T) *local {
	t.Helper()
	ctx := context.Background()
	pool, _ := testenv.Pool(t)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	cfg := sandbox.DefaultConfig()
	cfg.RedirectURIs = []string{srv.URL + httpapi.CallbackPath}
	cfg.LoginURI = srv.URL + httpapi.LoginPath
	_, sbURL := sandboxtest.Start(t, cfg)

	appPath := "keybuzz/ai/" + testenv.ID("browser-app")
	secrets := vaultstore.New(testenv.Vault(t), "secret", appPath)
	if err := secrets.PutApp(ctx, marketplace.AppCredentials{ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret),
		RedirectURI: cfg.RedirectURIs[0], ApplicationID: cfg.ApplicationID, Region: "eu", Draft: true}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	store := postgres.New(pool)
	cached, lwaClient := credcache.New(secrets), lwa.New(sbURL+"/auth/o2/token")
	gw := sellerapi.New(cached, lwaClient, spapi.New(), store, sellerapi.WithEndpoint(sbURL))
	verifier, err := auth.NewVerifier(ctx, config.Config{JWTHS256Secret: jwtSecret, JWTIssuer: "kb", JWTAudience: "kb-amazon", TenantClaim: "tenantId"})
	if err != nil {
		t.Fatal(err)
	}
	start := httpapi.StartRoute(connect.NewStart(store, cached, connect.StartConfig{SellerCentralURL: sbURL}), verifier, log)
	callback := httpapi.CallbackRoute(connect.NewCallback(store, cached, lwaClient, connect.CallbackConfig{Participations: gw, Log: log}), log, srv.URL+"/")
	login := httpapi.LoginRoute(connect.NewLogin(store, cached, connect.LoginConfig{SellerCentralURL: sbURL}), log, srv.URL+"/")
	status := httpapi.StatusRoute(connect.NewStatus(store, connect.StatusConfig{Log: log}), verifier, log)
	disconnect := httpapi.DisconnectRoute(connect.NewDisconnect(store, cached, connect.DisconnectConfig{Log: log}), verifier, log)
	page := &devui.Page{Start: start, Status: status, Disconnect: disconnect, Tickets: store, Log: log, Token: func(tenant string) (string, error) {
		return auth.Issue(jwtSecret, "kb", "kb-amazon", "tenantId", tenant, time.Hour, time.Now())
	}, SandboxURL: sbURL, Apps: store, AppSource: marketplace.AppKeyBuzz}
	for _, r := range []httpapi.Route{start, callback, login, status, disconnect, {Path: "/", Handler: page.Handler()}} {
		mux.Handle(r.Path, r.Handler)
	}
	return &local{url: srv.URL, store: store, secrets: secrets}
}

// browser starts a headless Chromium with its own profile (its own cookies).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := devstack.Chromium()
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func (l *local) status(t *testing.T, tenant string) marketplace.Status {
	t.Helper()
	c, ok, err := l.store.ConnectionByTenant(context.Background(), tenant)
	if err != nil || !ok {
		t.Fatalf("connection of %s: %v %v", tenant, ok, err)
	}
	return c.Status
}

func (l *local) hasSecret(t *testing.T, tenant string) bool {
	t.Helper()
	_, err := l.secrets.Tenant(context.Background(), tenant)
	if err != nil && !errors.Is(err, marketplace.ErrNoCredentials) {
		t.Fatal(err)
	}
	return err == nil
}

// after is where the browser is, once it has left the page at prev, and
// the text of the selector there, once the page that has it is loaded (read by script, so a navigation that just
// replaced the document cannot leave a stale node behind).
func after(t *testing.T, ctx context.Context, prev, sel string) (loc, text string) {
	t.Helper()
	js := fmt.Sprintf(`document.readyState === "complete" && document.querySelector(%q) ? location.href + "\n" + document.querySelector(%q).textContent : ""`, sel, sel)
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err == nil && v != "" {
			loc, text, _ = strings.Cut(v, "\n")
			if loc != prev {
				return loc, strings.TrimSpace(text)
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("%s never appeared: %v", sel, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The same browser that started Connect completes it; a fresh browser (no
// cookie of the starter) that approves the same consent URL attaches
// nothing and says so, and the starter's browser can still finish.
func TestBrowserConsent(t *testing.T) {
	l := startLocal(t)
	tenant := testenv.ID("tenant-browser")
	a := browser(t)
	approve := chromedp.CSS(`button[name="approve"]`)

	// Browser A: the local page, Connect Amazon, the sandbox's consent page.
	if err := chromedp.Do(a,
		chromedp.Navigate(l.url+"/?tenant="+url.QueryEscape(tenant)),
		chromedp.Click(chromedp.CSS("#connect")),
		chromedp.WaitVisible(approve),
	); err != nil {
		t.Fatalf("browser A to the consent page: %v", err)
	}
	consentURL, err := chromedp.Run(a, chromedp.Location())
	if err != nil || !strings.Contains(consentURL, "/apps/authorize/consent?") {
		t.Fatalf("browser A is at %s (%v)", consentURL, err)
	}

	// Browser B, a fresh profile, approves A's consent URL.
	b := browser(t)
	if err := chromedp.Do(b, chromedp.Navigate(consentURL), chromedp.Click(approve)); err != nil {
		t.Fatalf("browser B: %v", err)
	}
	if loc, code := after(t, b, consentURL, "#error-code"); code != "browser_mismatch" || !strings.Contains(loc, "amazon_error=browser_mismatch") {
		t.Errorf("browser B sees %q at %s", code, loc)
	}
	if st := l.status(t, tenant); st != marketplace.StatusPending || l.hasSecret(t, tenant) {
		t.Fatalf("after browser B: %s, secret %v; want PENDING and none", st, l.hasSecret(t, tenant))
	}

	// Browser A approves on its own consent page: connected.
	if err := chromedp.Do(a, chromedp.Click(approve)); err != nil {
		t.Fatalf("browser A approves: %v", err)
	}
	connected, outcome := after(t, a, consentURL, "#outcome")
	if loc := connected; !strings.Contains(outcome, "connected") || !strings.Contains(loc, "amazon_connected=true") ||
		!strings.Contains(loc, "tenant_id="+tenant) {
		t.Errorf("browser A sees %q at %s", outcome, loc)
	}
	if st := l.status(t, tenant); st != marketplace.StatusConnected || !l.hasSecret(t, tenant) {
		t.Fatalf("after browser A: %s, secret %v", st, l.hasSecret(t, tenant))
	}

	// Disconnect from the page: DISABLED, secret gone.
	if err := chromedp.Do(a, chromedp.Click(chromedp.CSS("#disconnect"))); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	if _, outcome := after(t, a, connected, "#outcome"); !strings.Contains(outcome, "disconnected") {
		t.Errorf("page after disconnect: %q", outcome)
	}
	if st := l.status(t, tenant); st != marketplace.StatusDisabled || l.hasSecret(t, tenant) {
		t.Errorf("after disconnect: %s, secret %v", st, l.hasSecret(t, tenant))
	}
}

// The Appstore start in a browser: the sandbox's Appstore page sends it to
// the log-in route, the page signs the seller in and continues to Amazon's
// amazon_callback_uri, the consent comes back to the same browser. The
// page's migration dry run then lists the connection (external_test) as
// not yet on the keybuzz app.
func TestBrowserAppstoreStart(t *testing.T) {
	l := startLocal(t)
	tenant := testenv.ID("tenant-appstore")
	a := browser(t)
	home := l.url + "/?tenant=" + url.QueryEscape(tenant)
	if err := chromedp.Do(a, chromedp.Navigate(home), chromedp.Click(chromedp.CSS("#appstore-start"))); err != nil {
		t.Fatal(err)
	}
	signIn, button := after(t, a, home, "#connect")
	if !strings.Contains(signIn, "amazon_appstore_login=") || button != "Continue to Amazon" {
		t.Fatalf("sign-in page %s shows %q", signIn, button)
	}
	if err := chromedp.Do(a, chromedp.Clear(chromedp.CSS("#tenant")), chromedp.SendKeys(chromedp.CSS("#tenant"), tenant),
		chromedp.Click(chromedp.CSS("#connect")), chromedp.WaitVisible(chromedp.CSS(`button[name="approve"]`))); err != nil {
		t.Fatal(err)
	}
	confirm, err := chromedp.Run(a, chromedp.Location())
	if err != nil || !strings.Contains(confirm, "/apps/authorize/confirm?") || !strings.Contains(confirm, "amazon_state=") {
		t.Fatalf("consent at %s (%v)", confirm, err)
	}
	if err := chromedp.Do(a, chromedp.Click(chromedp.CSS(`button[name="approve"]`))); err != nil {
		t.Fatal(err)
	}
	if loc, outcome := after(t, a, confirm, "#outcome"); !strings.Contains(outcome, "connected") || !strings.Contains(loc, "tenant_id="+tenant) {
		t.Fatalf("after consent %q at %s", outcome, loc)
	}
	if st := l.status(t, tenant); st != marketplace.StatusConnected {
		t.Fatalf("status %s", st)
	}
	if _, dry := after(t, a, "", "#old-apps"); !strings.Contains(dry, tenant) || !strings.Contains(dry, "external_test") {
		t.Errorf("migration dry run shows %q", dry)
	}
}
