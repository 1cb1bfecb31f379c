package connect

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// LoginInput is what Amazon's Appstore sends to the app's log-in URI.
type LoginInput struct {
	AmazonCallbackURI string
	AmazonState       string
	SellingPartnerID  string
	Version           string // "beta" for a draft app
}

// LoginResult is the log-in id the frontend hands back to oauth/start
// (as appstore_login) once the tenant has signed in.
type LoginResult struct {
	LoginID   secret.Value
	ExpiresAt time.Time
}

// LoginStore is the part of the database the log-in route needs.
type LoginStore interface {
	CreateAppstoreLogin(ctx context.Context, l marketplace.AppstoreLogin) error
}

// LoginConfig tunes a Login; zero fields take the defaults.
type LoginConfig struct {
	AppSource        marketplace.AppSource // AMAZON_SPAPI_APP_SOURCE; default external_test
	SellerCentralURL string                // AMAZON_SELLER_CENTRAL_URL: also accepted as amazon_callback_uri's origin
	Now              func() time.Time      // default time.Now
	Random           io.Reader             // default crypto/rand
}

// Login is the log-in route's flow (Appstore-initiated authorization).
type Login struct {
	store            LoginStore
	apps             Apps
	appSource        marketplace.AppSource
	sellerCentralURL string
	now              func() time.Time
	random           io.Reader
}

// NewLogin returns the log-in flow on store, checking amazon_callback_uri
// against the region of apps' application.
func NewLogin(store LoginStore, apps Apps, cfg LoginConfig) *Login {
	return &Login{store: store, apps: apps, appSource: appSourceOr(cfg.AppSource), sellerCentralURL: strings.TrimRight(cfg.SellerCentralURL, "/"),
		now: nowOr(cfg.Now), random: randomOr(cfg.Random)}
}

// amazonStatePattern is Amazon's opaque amazon_state: printable ASCII
// (at most maxAmazonState bytes).
var amazonStatePattern = regexp.MustCompile(`^[!-~]+$`)

const maxAmazonState = 2048

// appstoreConsentURL sends the browser back to Amazon's amazon_callback_uri
// with Amazon's amazon_state, our state and version=beta for a draft app.
func appstoreConsentURL(app marketplace.AppCredentials, l marketplace.AppstoreLogin, state secret.Value) string {
	u, _ := url.Parse(l.AmazonCallbackURI) // checked at log-in and at start
	q := u.Query()
	q.Set("amazon_state", l.AmazonState)
	q.Set("state", state.Reveal())
	if app.Draft || l.Version == "beta" {
		q.Set("version", "beta")
	}
	if app.RedirectURI != "" {
		q.Set("redirect_uri", app.RedirectURI)
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	return u.String()
}

// IsLoopbackHost reports whether host (no port) names this machine.
func IsLoopbackHost(host string) bool {
	switch strings.ToLower(strings.Trim(host, "[]")) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return strings.HasPrefix(host, "127.")
}

// Login records an Appstore-initiated authorization until the seller has
// signed in to KeyBuzz: only an https Seller Central or Vendor Central
// amazon_callback_uri of the app's region is accepted (the sandbox's
// AMAZON_SELLER_CENTRAL_URL as well), so the route can never redirect
// anywhere else.
func (s *Login) Run(ctx context.Context, in LoginInput) (LoginResult, error) {
	if in.AmazonCallbackURI == "" || in.AmazonState == "" {
		return LoginResult{}, fmt.Errorf("missing amazon_callback_uri or amazon_state: %w", marketplace.ErrBadRequest)
	}
	if len(in.AmazonState) > maxAmazonState || !amazonStatePattern.MatchString(in.AmazonState) {
		return LoginResult{}, fmt.Errorf("malformed amazon_state: %w", marketplace.ErrBadRequest)
	}
	if in.SellingPartnerID != "" && !ValidSellerID(in.SellingPartnerID) {
		return LoginResult{}, fmt.Errorf("malformed selling_partner_id: %w", marketplace.ErrBadRequest)
	}
	if in.Version != "" && in.Version != "beta" {
		return LoginResult{}, fmt.Errorf("version %q: %w", in.Version, marketplace.ErrBadRequest)
	}
	app, err := s.apps.AppFor(ctx, s.appSource)
	if err != nil {
		return LoginResult{}, fmt.Errorf("log-in: %w", err)
	}
	if err := checkCallbackURI(s.sellerCentralURL, app, in.AmazonCallbackURI); err != nil {
		return LoginResult{}, err
	}
	id, err := randomValue(s.random)
	if err != nil {
		return LoginResult{}, fmt.Errorf("log-in: random id: %w", err)
	}
	expires := s.now().Add(StateTTL).UTC().Truncate(time.Millisecond)
	if err := s.store.CreateAppstoreLogin(ctx, marketplace.AppstoreLogin{
		LoginHash: hashState(id), AmazonCallbackURI: in.AmazonCallbackURI, AmazonState: in.AmazonState,
		SellingPartnerID: in.SellingPartnerID, Version: in.Version, ExpiresAt: expires,
	}); err != nil {
		return LoginResult{}, fmt.Errorf("log-in: %w", err)
	}
	return LoginResult{LoginID: id, ExpiresAt: expires}, nil
}

// checkCallbackURI accepts an https Seller or Vendor Central URL of the
// app's region, or one on the configured Seller Central override's origin.
func checkCallbackURI(sellerCentralURL string, app marketplace.AppCredentials, raw string) error {
	if amazon.IsCentralURL(raw, app.Region) {
		return nil
	}
	if sellerCentralURL != "" {
		if o, err := url.Parse(sellerCentralURL); err == nil {
			if u, err := url.Parse(raw); err == nil && u.User == nil && u.Scheme == o.Scheme && strings.EqualFold(u.Host, o.Host) {
				return nil
			}
		}
	}
	return fmt.Errorf("amazon_callback_uri: %w", marketplace.ErrBadCallbackURI)
}
