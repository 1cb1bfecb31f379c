package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

const (
	jwtSecret   = secret.Value("test-jwt-secret-0123456789abcdef0123456789")
	jwtIssuer   = "keybuzz-test"
	jwtAudience = "keybuzz-amazon"
)

// suiteLogs receives every log line of the suite; TestMain scans it for
// every secret the tests saw.
var (
	suiteLogs   testenv.Buffer
	secretsMu   sync.Mutex
	seenSecrets []string
	sandboxesMu sync.Mutex
	sandboxes   []*sandbox.Server
)

func remember(values ...string) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	seenSecrets = append(seenSecrets, values...)
}

func TestMain(m *testing.M) {
	code := m.Run()
	sandboxesMu.Lock()
	for _, sb := range sandboxes {
		remember(sb.IssuedSecrets()...)
	}
	sandboxesMu.Unlock()
	remember(string(jwtSecret), sandbox.DefaultConfig().ClientSecret)
	logs := suiteLogs.String()
	if code == 0 && len(logs) == 0 {
		fmt.Fprintln(os.Stderr, "log scan: the suite logged nothing, the scanner would prove nothing")
		code = 1
	}
	for _, s := range seenSecrets {
		if len(s) >= 8 && strings.Contains(logs, s) {
			fmt.Fprintf(os.Stderr, "log scan: a secret value (%d chars, starts %.4s…) appears in the logs\n", len(s), s)
			code = 1
		}
	}
	os.Exit(code)
}

// stack is one test's connector against real PostgreSQL, Vault and an
// in-process Amazon sandbox.
type stack struct {
	t       testing.TB
	pool    *pgxpool.Pool
	secrets *vaultstore.Store
	sandbox *sandbox.Server
	sbURL   string
	server  *httptest.Server
	clock   *clock
	api     *http.ServeMux
	appPath string
	// unsubscribed records the connections whose subscriptions were ended.
	unsubscribed *unsubscribeLog

	// bindings is each started state's browser binding cookie: the
	// browser that started it (callback sends it; callbackFrom chooses).
	bindings *jar
}

// jar maps states to their browser's binding cookie.
type jar struct {
	mu sync.Mutex
	m  map[string]*http.Cookie
}

func (j *jar) put(state string, c *http.Cookie) { j.mu.Lock(); defer j.mu.Unlock(); j.m[state] = c }
func (j *jar) get(state string) *http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.m[state]
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type stackOption struct {
	returnURL   string
	returnHosts []string
	loginURL    string // the frontend's sign-in page for Appstore log-ins
	lwaURL      string // default: the sandbox
	lwaTimeout  time.Duration
	appSecret   string // default: the sandbox's
}

func newStack(t testing.TB, opt stackOption) *stack {
	t.Helper()
	ctx := context.Background()
	pool, _ := testenv.Pool(t)
	vc := testenv.Vault(t)
	sbCfg := sandbox.DefaultConfig()
	sb, sbURL := sandboxtest.Start(t, sbCfg)
	sandboxesMu.Lock()
	sandboxes = append(sandboxes, sb)
	sandboxesMu.Unlock()

	appPath := "keybuzz/ai/" + testenv.ID("test-app")
	admin := vaultstore.New(vc, "secret", appPath)
	appSecret := sbCfg.ClientSecret
	if opt.appSecret != "" {
		appSecret = opt.appSecret
	}
	if err := admin.PutApp(ctx, marketplace.AppCredentials{
		ClientID: sbCfg.ClientID, ClientSecret: secret.Value(appSecret), RedirectURI: sbCfg.RedirectURIs[0],
		ApplicationID: sbCfg.ApplicationID, Region: "eu", Draft: true,
	}); err != nil {
		t.Fatalf("seed app credentials: %v", err)
	}
	clk := &clock{t: time.Now()}
	st := &stack{t: t, pool: pool, secrets: admin, sandbox: sb, sbURL: sbURL, clock: clk, appPath: appPath,
		unsubscribed: &unsubscribeLog{}, bindings: &jar{m: map[string]*http.Cookie{}}}
	st.api = st.buildAPI(admin, opt)
	st.server = httptest.NewServer(st.api)
	t.Cleanup(st.server.Close)
	return st
}

// buildAPI wires the connector on the stack's database, sandbox and clock,
// with secrets from the given Vault store.
func (s *stack) buildAPI(secrets *vaultstore.Store, opt stackOption) *http.ServeMux {
	t := s.t
	log := logging.New(&suiteLogs, "debug").With("test", t.Name())
	lwaURL := s.sbURL + "/auth/o2/token"
	if opt.lwaURL != "" {
		lwaURL = opt.lwaURL
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	if opt.lwaTimeout > 0 {
		hc.Timeout = opt.lwaTimeout
	}
	store := postgres.New(s.pool, postgres.WithClock(s.clock.Now))
	cached, lwaClient := credcache.New(secrets, credcache.WithClock(s.clock.Now)), lwa.New(lwaURL, lwa.WithHTTPClient(hc))
	gw := sellerapi.New(cached, lwaClient, spapi.New(), store, sellerapi.WithEndpoint(s.sbURL), sellerapi.WithLogger(log))
	verifier, err := auth.NewVerifier(context.Background(), config.Config{
		JWTHS256Secret: jwtSecret, JWTIssuer: jwtIssuer, JWTAudience: jwtAudience, TenantClaim: "tenantId",
	})
	if err != nil {
		t.Fatalf("verifier: %v", err)
	}
	return httpapi.Mux(
		httpapi.StartRoute(connect.NewStart(store, cached, connect.StartConfig{SellerCentralURL: s.sbURL, ReturnHosts: opt.returnHosts, Now: s.clock.Now}), verifier, log),
		httpapi.CallbackRoute(connect.NewCallback(store, cached, lwaClient, connect.CallbackConfig{Participations: gw, Accounts: gw,
			Unsubscriber: s.unsubscribed, Now: s.clock.Now, Log: log}), log, opt.returnURL),
		httpapi.LoginRoute(connect.NewLogin(store, cached, connect.LoginConfig{SellerCentralURL: s.sbURL, Now: s.clock.Now}), log, opt.loginURL),
		httpapi.StatusRoute(connect.NewStatus(store, connect.StatusConfig{Now: s.clock.Now, Log: log}), verifier, log),
		httpapi.InboundAddressRoute(connect.NewStatus(store, connect.StatusConfig{Now: s.clock.Now, Log: log,
			InboundAddresses: mailaddress.NewAddresses(store, "inbound.keybuzz.test")}), verifier, log),
		httpapi.DisconnectRoute(connect.NewDisconnect(store, cached, connect.DisconnectConfig{Unsubscriber: s.unsubscribed, Log: log}), verifier, log))
}

// withVaultAt serves the same connector but with Vault at addr.
func (s *stack) withVaultAt(addr string) *stack {
	s.t.Helper()
	vc, err := testenv.Vault(s.t).Clone()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := vc.SetAddress(addr); err != nil {
		s.t.Fatal(err)
	}
	vc.SetMaxRetries(0)
	vc.SetToken(testenv.Env(s.t, "VAULT_TOKEN"))
	other := *s
	other.api = s.buildAPI(vaultstore.New(vc, "secret", s.appPath), stackOption{})
	other.server = httptest.NewServer(other.api)
	s.t.Cleanup(other.server.Close)
	return &other
}

func token(t testing.TB, tenant string) string {
	t.Helper()
	tok, err := auth.Issue(jwtSecret, jwtIssuer, jwtAudience, "tenantId", tenant, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	remember(tok)
	return tok
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer is not JSON (%d): %s", a.status, a.body)
	}
	return m
}

func (a answer) errorCode(t testing.TB) string {
	t.Helper()
	e, _ := a.json(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (s *stack) do(method, path, bearer string, header ...string) answer {
	s.t.Helper()
	return s.doWith(s.t, method, path, bearer, header...)
}

// doWith is do reporting to t (a fuzz iteration's own T).
func (s *stack) doWith(t testing.TB, method, path, bearer string, header ...string) answer {
	t.Helper()
	return s.doBodyWith(t, method, path, bearer, "", header...)
}

func (s *stack) doBody(method, path, bearer, body string, header ...string) answer {
	s.t.Helper()
	return s.doBodyWith(s.t, method, path, bearer, body, header...)
}

func (s *stack) doBodyWith(t testing.TB, method, path, bearer, body string, header ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.server.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: got}
}

// start calls oauth/start for tenant and returns the consent URL; the
// answer's binding cookie is kept as that state's browser.
func (s *stack) start(tenant string) *url.URL {
	s.t.Helper()
	u, _ := s.startWith(tenant, "")
	return u
}

// startWith is start with a JSON body; it also returns the binding cookie.
func (s *stack) startWith(tenant, body string) (*url.URL, *http.Cookie) {
	s.t.Helper()
	a := s.doBody(http.MethodPost, httpapi.StartPath, token(s.t, tenant), body)
	if a.status != http.StatusOK {
		s.t.Fatalf("start: %d %s", a.status, a.body)
	}
	j := a.json(s.t)
	u, err := url.Parse(j["authUrl"].(string))
	if err != nil {
		s.t.Fatal(err)
	}
	state, _ := j["state"].(string)
	if state == "" || state != u.Query().Get("state") {
		s.t.Fatalf("start's state %q is not the consent URL's", state)
	}
	c := bindingCookie(s.t, a.header)
	remember(state, c.Value)
	s.bindings.put(state, c)
	return u, c
}

// bindingCookie is the binding cookie an answer sets (the loopback form:
// the test server is http on 127.0.0.1).
func bindingCookie(t testing.TB, h http.Header) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "kb_amazon_binding" {
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || len(c.Value) != 43 {
				t.Fatalf("binding cookie %v: want HttpOnly, SameSite=Lax, Path=/, 256 bits", c)
			}
			return c
		}
	}
	t.Fatalf("start set no binding cookie: %v", h.Values("Set-Cookie"))
	return nil
}

// consent approves authURL on the sandbox as seller n and returns the
// callback query Amazon sends the browser back with.
func (s *stack) consent(authURL *url.URL, seller int) url.Values {
	s.t.Helper()
	return sandboxtest.Approve(s.t, authURL.String(), sandbox.SellerID(seller))
}

// callback is Amazon's redirect arriving in the browser that started q's
// state.
func (s *stack) callback(q url.Values) answer {
	s.t.Helper()
	return s.callbackFrom(q, s.bindings.get(q.Get("state")))
}

// callbackFrom is Amazon's redirect arriving in a browser holding binding
// (nil: a fresh client with no cookie).
func (s *stack) callbackFrom(q url.Values, binding *http.Cookie) answer {
	s.t.Helper()
	h := []string{}
	if binding != nil {
		h = append(h, "Cookie", binding.Name+"="+binding.Value)
	}
	return s.do(http.MethodGet, httpapi.CallbackPath+"?"+q.Encode(), "", h...)
}

func (s *stack) status(tenant string) map[string]any {
	s.t.Helper()
	a := s.do(http.MethodGet, httpapi.StatusPath, token(s.t, tenant))
	if a.status != http.StatusOK {
		s.t.Fatalf("status: %d %s", a.status, a.body)
	}
	return a.json(s.t)
}

func (s *stack) connectionStatus(tenant string) (status, lastError string) {
	s.t.Helper()
	err := s.pool.QueryRow(context.Background(), `SELECT "status", COALESCE("lastError", '') FROM "MarketplaceConnection" WHERE "tenantId" = $1`, tenant).Scan(&status, &lastError)
	if err != nil {
		s.t.Fatalf("read connection: %v", err)
	}
	return status, lastError
}

// unsubscribeLog is a connect.Unsubscriber that records what it was asked.
type unsubscribeLog struct {
	mu      sync.Mutex
	sellers []string
}

func (u *unsubscribeLog) Unsubscribe(_ context.Context, c marketplace.Connection) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sellers = append(u.sellers, c.SellingPartnerID)
	return nil
}

func (u *unsubscribeLog) list() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.sellers...)
}
