package sandbox

import (
	"net/http"
	"net/url"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
)

// The Appstore-initiated authorization: the seller presses "Authorize now"
// on the app's Appstore page (GET /_sandbox/appstore/authorize), Amazon
// sends the browser to the app's log-in URI with amazon_callback_uri,
// amazon_state and selling_partner_id; the app signs the user in and sends
// the browser back to amazon_callback_uri (GET /apps/authorize/confirm)
// with amazon_state, its own state and version=beta for a draft app; the
// consent then ends as in the website flow.

// amazonStateTTL is how long the sandbox waits for the app's log-in.
const amazonStateTTL = 10 * time.Minute

type amazonState struct {
	sellerID string
	expires  time.Time
	used     bool
}

// handleAppstoreStart plays the Appstore page: ?seller=<id> (default the
// first seller), ?login_uri= overrides Config.LoginURI (tests, whose app
// listens on a random port).
func (s *Server) handleAppstoreStart(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	seller, ok := s.sellers[0], true
	if id := q.Get("seller"); id != "" {
		seller, ok = s.seller(id)
	}
	if !ok {
		s.renderConsentError(w, &consentError{"UNKNOWN_SELLER", "Account not found", "The sandbox has no seller " + q.Get("seller") + "."})
		return
	}
	login := s.cfg.LoginURI
	if v := q.Get("login_uri"); v != "" {
		login = v
	}
	u, err := url.Parse(login)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		s.renderConsentError(w, &consentError{"NO_LOGIN_URI", "Authorization error", "The application has no valid log-in URI."})
		return
	}
	st := "amzn1.state." + devrand.Hex(16)
	s.mu.Lock()
	s.amazonStates[st] = &amazonState{sellerID: seller.ID, expires: s.now().Add(amazonStateTTL)}
	s.mu.Unlock()
	lq := u.Query()
	lq.Set("amazon_callback_uri", "http://"+r.Host+"/apps/authorize/confirm")
	lq.Set("amazon_state", st)
	lq.Set("selling_partner_id", seller.ID)
	if s.cfg.Draft {
		lq.Set("version", "beta")
	}
	u.RawQuery = lq.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// handleAppstoreConfirm is amazon_callback_uri: it checks amazon_state (one
// this sandbox issued, unused, unexpired), version=beta for a draft app and
// the app's state, then shows the consent for the seller who started (or
// approves at once, as the consent page does).
func (s *Server) handleAppstoreConfirm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	as := s.amazonStates[q.Get("amazon_state")]
	valid := as != nil && !as.used && s.now().Before(as.expires)
	if valid {
		as.used = true
	}
	s.mu.Unlock()
	if !valid {
		s.renderConsentError(w, &consentError{"INVALID_AMAZON_STATE", "Authorization error",
			"The amazon_state is unknown, used or expired: start again from the Appstore."})
		return
	}
	c := consentRequest{ApplicationID: s.cfg.ApplicationID, State: q.Get("state"), Version: q.Get("version"),
		RedirectURI: q.Get("redirect_uri"), SellerID: as.sellerID}
	redirect, cerr := s.checkConsent(c)
	if cerr != nil {
		s.renderConsentError(w, cerr)
		return
	}
	seller, _ := s.seller(as.sellerID)
	if s.cfg.AutoApprove || q.Get("sandbox_auto_approve") == "true" {
		s.approve(w, r, c, redirect, seller.ID)
		return
	}
	s.renderConsent(w, c, seller)
}
