package sandbox

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
)

const (
	codeTTL        = 5 * time.Minute
	accessTokenTTL = time.Hour
)

// Scopes accepted by the client_credentials (grantless) grant.
var grantlessScopes = map[string]bool{
	"sellingpartnerapi::notifications":              true,
	"sellingpartnerapi::client_credential:rotation": true,
}

type authCode struct {
	sellerID string
	clientID string // the application consented to
	// redirectURI is the redirect_uri the consent request named ("" when it
	// named none): the code exchange must repeat it (RFC 6749 4.1.3, as LWA
	// does).
	redirectURI string
	expires     time.Time
	used        bool
}

type refreshToken struct {
	sellerID string
	clientID string // the application that issued it
	revoked  bool
}

type accessToken struct {
	sellerID string // empty for grantless tokens
	expires  time.Time
	expired  bool // forced by ExpireAccessTokens
}

type lwaError struct {
	status      int
	code        string
	description string
}

func writeLWAError(w http.ResponseWriter, e lwaError) {
	writeJSON(w, e.status, "application/json;charset=UTF-8", map[string]string{
		"error":             e.code,
		"error_description": e.description,
	})
}

// handleToken serves POST /auth/o2/token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	p, err := tokenParams(w, r)
	if err != nil {
		writeLWAError(w, lwaError{http.StatusBadRequest, "invalid_request", "The request body could not be parsed."})
		return
	}
	grant := p["grant_type"]
	switch grant {
	case "":
		writeLWAError(w, lwaError{http.StatusBadRequest, "invalid_request", "The request is missing a required parameter : grant_type"})
		return
	case "authorization_code", "refresh_token", "client_credentials":
	default:
		writeLWAError(w, lwaError{http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server"})
		return
	}
	for _, k := range []string{"client_id", "client_secret"} {
		if p[k] == "" {
			writeLWAError(w, lwaError{http.StatusBadRequest, "invalid_request", "The request is missing a required parameter : " + k})
			return
		}
	}
	if !s.clientOK(p["client_id"], p["client_secret"]) {
		writeLWAError(w, lwaError{http.StatusUnauthorized, "invalid_client", "Client authentication failed"})
		return
	}
	var (
		body map[string]any
		le   *lwaError
	)
	switch grant {
	case "authorization_code":
		body, le = s.grantCode(p)
	case "refresh_token":
		body, le = s.grantRefresh(p)
	case "client_credentials":
		body, le = s.grantClientCredentials(p)
	}
	if le != nil {
		writeLWAError(w, *le)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, "application/json;charset=UTF-8", body)
}

func (s *Server) clientOK(id, secret string) bool {
	ok := false
	for _, app := range s.apps() {
		a := subtle.ConstantTimeCompare([]byte(id), []byte(app.ClientID))
		b := subtle.ConstantTimeCompare([]byte(secret), []byte(app.ClientSecret))
		ok = ok || a&b == 1
	}
	return ok
}

// apps are the registered applications, the main one first.
func (s *Server) apps() []App {
	return append([]App{{s.cfg.ClientID, s.cfg.ClientSecret, s.cfg.ApplicationID}}, s.cfg.OtherApps...)
}

// appByID is the registered application with that SP-API application id.
func (s *Server) appByID(applicationID string) (App, bool) {
	for _, a := range s.apps() {
		if applicationID != "" && a.ApplicationID == applicationID {
			return a, true
		}
	}
	return App{}, false
}

// tokenParams reads a form-encoded or JSON body; HTTP Basic client
// authentication fills client_id/client_secret when the body lacks them.
func tokenParams(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	p := map[string]string{}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		var raw map[string]any
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&raw); err != nil {
			return nil, err
		}
		for k, v := range raw {
			switch v := v.(type) {
			case string:
				p[k] = v
			case nil:
			default:
				p[k] = fmt.Sprint(v)
			}
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		for k := range r.PostForm {
			p[k] = r.PostForm.Get(k)
		}
	}
	if id, secret, ok := r.BasicAuth(); ok {
		if p["client_id"] == "" {
			p["client_id"] = id
		}
		if p["client_secret"] == "" {
			p["client_secret"] = secret
		}
	}
	return p, nil
}

func missing(name string) *lwaError {
	return &lwaError{http.StatusBadRequest, "invalid_request", "The request is missing a required parameter : " + name}
}

func (s *Server) grantCode(p map[string]string) (map[string]any, *lwaError) {
	code := p["code"]
	if code == "" {
		return nil, missing("code")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.codes[code]
	if c == nil || c.used || !s.now().Before(c.expires) || (c.clientID != "" && c.clientID != p["client_id"]) {
		return nil, &lwaError{http.StatusBadRequest, "invalid_grant", "The request has an invalid grant parameter : code"}
	}
	if c.redirectURI != "" && p["redirect_uri"] != c.redirectURI {
		// The code stays usable: the client may retry with the right URI.
		if p["redirect_uri"] == "" {
			return nil, missing("redirect_uri")
		}
		return nil, &lwaError{http.StatusBadRequest, "invalid_grant", "The redirect URI does not match the one of the authorization request"}
	}
	c.used = true
	rt := s.issueRefreshForLocked(c.sellerID, c.clientID)
	at := s.issueAccessLocked(c.sellerID)
	return tokenBody(at, rt), nil
}

func (s *Server) grantRefresh(p map[string]string) (map[string]any, *lwaError) {
	tok := p["refresh_token"]
	if tok == "" {
		return nil, missing("refresh_token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.refreshTokens[tok]
	if rt == nil || rt.revoked || (rt.clientID != "" && rt.clientID != p["client_id"]) {
		return nil, &lwaError{http.StatusBadRequest, "invalid_grant", "The request has an invalid grant parameter : refresh_token"}
	}
	out := tok
	if s.rotate[rt.sellerID] {
		out = s.issueRefreshForLocked(rt.sellerID, rt.clientID)
	}
	return tokenBody(s.issueAccessLocked(rt.sellerID), out), nil
}

func (s *Server) grantClientCredentials(p map[string]string) (map[string]any, *lwaError) {
	scope := strings.TrimSpace(p["scope"])
	if scope == "" {
		return nil, missing("scope")
	}
	for _, sc := range strings.Fields(scope) {
		if !grantlessScopes[sc] {
			return nil, &lwaError{http.StatusBadRequest, "invalid_scope", "An unknown scope was requested"}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return tokenBody(s.issueAccessLocked(""), ""), nil
}

func tokenBody(access, refresh string) map[string]any {
	b := map[string]any{
		"access_token": access,
		"token_type":   "bearer",
		"expires_in":   int(accessTokenTTL / time.Second),
	}
	if refresh != "" {
		b["refresh_token"] = refresh
	}
	return b
}

func (s *Server) issueRefreshLocked(sellerID string) string {
	return s.issueRefreshForLocked(sellerID, "")
}

// issueRefreshForLocked issues a refresh token of clientID's application
// (empty: any registered application may use it).
func (s *Server) issueRefreshForLocked(sellerID, clientID string) string {
	t := "Atzr|" + devrand.Hex(48)
	s.refreshTokens[t] = &refreshToken{sellerID: sellerID, clientID: clientID}
	s.issued = append(s.issued, t)
	return t
}

func (s *Server) issueAccessLocked(sellerID string) string {
	t := "Atza|" + devrand.Hex(48)
	s.accessTokens[t] = &accessToken{sellerID: sellerID, expires: s.now().Add(accessTokenTTL)}
	s.issued = append(s.issued, t)
	return t
}

func (s *Server) issueCode(sellerID, clientID, redirectURI string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := "ANsb" + devrand.Hex(16)
	s.codes[c] = &authCode{sellerID: sellerID, clientID: clientID, redirectURI: redirectURI, expires: s.now().Add(codeTTL)}
	s.issued = append(s.issued, c)
	return c
}

// RevokeSeller revokes every refresh token of the seller: refreshing answers
// invalid_grant from now on (as when a seller removes the app). The
// seller's access tokens stop working at once too (403, expired): Amazon
// does not document whether a removed app's access tokens last out their
// hour, and the strict reading is the one under which "nothing is read
// for a seller after the revocation" can be checked exactly (the soak
// otherwise stored, now and then, an order a container read with a token
// cached before the revocation).
func (s *Server) RevokeSeller(sellerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.refreshTokens {
		if rt.sellerID == sellerID {
			rt.revoked = true
		}
	}
	for _, at := range s.accessTokens {
		if at.sellerID == sellerID {
			at.expired = true
		}
	}
}

// ExpireAccessTokens makes every access token issued so far for the seller
// answer 403 "The access token you provided has expired.".
func (s *Server) ExpireAccessTokens(sellerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, at := range s.accessTokens {
		if at.sellerID == sellerID {
			at.expired = true
		}
	}
}

// RotateRefreshTokens makes refresh_token grants of the seller return a new
// refresh token (on) instead of the one sent (off, Amazon's default). Older
// refresh tokens stay valid.
func (s *Server) RotateRefreshTokens(sellerID string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate[sellerID] = on
}

// IssueRefreshToken authorizes the app for a seller without going through
// consent (for tests and `make dev` seeding) and returns the refresh token.
func (s *Server) IssueRefreshToken(sellerID string) (string, error) {
	if _, ok := s.seller(sellerID); !ok {
		return "", fmt.Errorf("issue refresh token: unknown seller %q", sellerID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueRefreshLocked(sellerID), nil
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
