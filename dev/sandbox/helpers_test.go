package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
)

var t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

type env struct {
	srv   *sandbox.Server
	base  string
	clock *sandbox.ManualClock
	cfg   sandbox.Config
}

// start runs a sandbox with the default config, a manual clock at t0 and the
// given changes.
func start(t *testing.T, change ...func(*sandbox.Config)) *env {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	clock := sandbox.NewManualClock(t0)
	cfg.Clock = clock
	for _, c := range change {
		c(&cfg)
	}
	srv, base := sandboxtest.Start(t, cfg)
	return &env{srv: srv, base: base, clock: clock, cfg: cfg}
}

var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, a.body)
	}
	return m
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func (e *env) postForm(t *testing.T, path string, form url.Values) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	return do(t, req)
}

func (e *env) postJSON(t *testing.T, method, path string, body any) answer {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, e.base+path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

func (e *env) get(t *testing.T, pathAndQuery, accessToken string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.base+pathAndQuery, nil)
	if accessToken != "" {
		req.Header.Set("x-amz-access-token", accessToken)
	}
	return do(t, req)
}

func (e *env) clientForm(grant string, kv ...string) url.Values {
	f := url.Values{"grant_type": {grant}, "client_id": {e.cfg.ClientID}, "client_secret": {e.cfg.ClientSecret}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// consentCode runs the auto-approved consent for the seller and returns the code.
func (e *env) consentCode(t *testing.T, sellerID string) string {
	t.Helper()
	q := url.Values{"application_id": {e.cfg.ApplicationID}, "state": {"st-1"}, "version": {"beta"},
		"sandbox_auto_approve": {"true"}, "sandbox_seller": {sellerID}}
	a := e.get(t, "/apps/authorize/consent?"+q.Encode(), "")
	if a.status != http.StatusFound {
		t.Fatalf("consent: status %d: %s", a.status, a.body)
	}
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query().Get("spapi_oauth_code")
}

// authorize connects the seller and returns its refresh and access tokens.
func (e *env) authorize(t *testing.T, sellerID string) (refresh, access string) {
	t.Helper()
	a := e.postForm(t, "/auth/o2/token", e.clientForm("authorization_code", "code", e.consentCode(t, sellerID)))
	if a.status != http.StatusOK {
		t.Fatalf("code exchange: %d %s", a.status, a.body)
	}
	m := a.json(t)
	return m["refresh_token"].(string), m["access_token"].(string)
}

// search calls searchOrders with the query.
func (e *env) search(t *testing.T, access string, q url.Values) answer {
	t.Helper()
	return e.get(t, "/orders/2026-01-01/orders?"+q.Encode(), access)
}

func seller1() string { return sandbox.SellerID(1) }
