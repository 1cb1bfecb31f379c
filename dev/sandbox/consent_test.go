package sandbox_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

func consentQuery(e *env, kv ...string) string {
	q := url.Values{"application_id": {e.cfg.ApplicationID}, "state": {"state-123"}, "version": {"beta"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return "/apps/authorize/consent?" + q.Encode()
}

func TestConsentPage(t *testing.T) {
	e := start(t)
	s2 := sandbox.SellerID(2)
	a := e.get(t, consentQuery(e, "sandbox_seller", s2), "")
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	page := string(a.body)
	for _, want := range []string{e.cfg.AppName, `value="` + s2 + `" selected`, `name="state" value="state-123"`, `method="post"`, ">Confirm</button>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	// Confirm (README.md names the button) = the form's POST
	form := url.Values{"application_id": {e.cfg.ApplicationID}, "state": {"state-123"}, "version": {"beta"},
		"redirect_uri": {e.cfg.RedirectURIs[1]}, "sandbox_seller": {s2}}
	a = e.postForm(t, "/apps/authorize/consent", form)
	if a.status != 302 {
		t.Fatalf("approve: %d %s", a.status, a.body)
	}
	loc, _ := url.Parse(a.header.Get("Location"))
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), e.cfg.RedirectURIs[1]+"?") || q.Get("state") != "state-123" ||
		q.Get("selling_partner_id") != s2 || q.Get("spapi_oauth_code") == "" {
		t.Fatalf("redirect %s", loc)
	}
	// The consent named a redirect_uri: the exchange repeats it (LWA).
	tok := e.postForm(t, "/auth/o2/token", e.clientForm("authorization_code", "code", q.Get("spapi_oauth_code"), "redirect_uri", e.cfg.RedirectURIs[1]))
	if tok.status != 200 {
		t.Fatalf("exchange approved code: %d %s", tok.status, tok.body)
	}
}

func TestConsentAutoApproveAndErrors(t *testing.T) {
	e := start(t)
	auto := start(t, func(c *sandbox.Config) { c.AutoApprove = true; c.Draft = false })

	tests := []struct {
		name     string
		env      *env
		path     string
		status   int
		code     string // error code shown on the page
		redirect string // expected redirect prefix
		seller   string
	}{
		{"auto-approve query", e, consentQuery(e, "sandbox_auto_approve", "true"), 302, "", e.cfg.RedirectURIs[0], seller1()},
		{"auto-approve config, published app", auto, consentQuery(auto, "version", "", "sandbox_seller", sandbox.SellerID(3)), 302, "", auto.cfg.RedirectURIs[0], sandbox.SellerID(3)},
		{"draft without version=beta", e, consentQuery(e, "version", "", "sandbox_auto_approve", "true"), 400, "MD1000", "", ""},
		{"unregistered redirect_uri", e, consentQuery(e, "redirect_uri", "https://evil.example/cb", "sandbox_auto_approve", "true"), 400, "MD5101", "", ""},
		{"redirect_uri with fragment", e, consentQuery(e, "redirect_uri", e.cfg.RedirectURIs[0]+"#x"), 400, "MD5110", "", ""},
		{"unknown application", e, consentQuery(e, "application_id", "amzn1.sp.solution.other", "sandbox_auto_approve", "true"), 400, "UNKNOWN_APPLICATION", "", ""},
		{"missing state", e, consentQuery(e, "state", "", "sandbox_auto_approve", "true"), 400, "MISSING_STATE", "", ""},
		{"unknown seller", e, consentQuery(e, "sandbox_seller", "ANOSUCHSELLER1"), 400, "UNKNOWN_SELLER", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.env.get(t, tt.path, "")
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.code != "" {
				if a.header.Get("Location") != "" {
					t.Errorf("error page redirects")
				}
				if !strings.Contains(string(a.body), `<code id="error-code">`+tt.code+`</code>`) ||
					!strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
					t.Errorf("page lacks code %s: %s", tt.code, a.body)
				}
				return
			}
			loc, _ := url.Parse(a.header.Get("Location"))
			if !strings.HasPrefix(loc.String(), tt.redirect+"?") || loc.Query().Get("selling_partner_id") != tt.seller ||
				loc.Query().Get("state") != "state-123" || loc.Query().Get("spapi_oauth_code") == "" {
				t.Errorf("redirect %s", loc)
			}
		})
	}
}
