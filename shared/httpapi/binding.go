package httpapi

import (
	"net"
	"net/http"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// The browser binding cookie (docs/connect.md, "Browser binding"): set by
// oauth/start's answer, read by oauth/callback. Over https it is a
// __Host- cookie (Secure, Path=/, no Domain: only this API host can set or
// read it, no sibling subdomain can plant one); on a loopback http address
// (the local server) browsers refuse Secure cookies, so it goes without the
// prefix. SameSite=Lax: sent on Amazon's top-level redirect to the
// callback, never on cross-site subrequests. HttpOnly: no script reads it.
const (
	bindingCookieSecure   = "__Host-kb_amazon_binding"
	bindingCookieLoopback = "kb_amazon_binding"
)

// secureRequest reports whether r reached the API over https (directly,
// through API Gateway or a proxy) or from anywhere but loopback.
func secureRequest(r *http.Request) bool {
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return !connect.IsLoopbackHost(host)
}

func bindingCookieName(r *http.Request) string {
	if secureRequest(r) {
		return bindingCookieSecure
	}
	return bindingCookieLoopback
}

func setBinding(w http.ResponseWriter, r *http.Request, v secret.Value, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: bindingCookieName(r), Value: v.Reveal(), Path: "/", Expires: expires,
		MaxAge: int(connect.StateTTL.Seconds()), Secure: secureRequest(r), HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

func clearBinding(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: bindingCookieName(r), Value: "", Path: "/", MaxAge: -1,
		Secure: secureRequest(r), HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// readBinding returns the binding cookie of r's scheme (empty when absent).
func readBinding(r *http.Request) secret.Value {
	c, err := r.Cookie(bindingCookieName(r))
	if err != nil {
		return ""
	}
	return secret.Value(c.Value)
}
