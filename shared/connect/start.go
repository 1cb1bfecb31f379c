package connect

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// StartStore is the part of the database oauth/start needs.
type StartStore interface {
	BeginConnect(ctx context.Context, b marketplace.Begin) (marketplace.Connection, error)
	ConsumeAppstoreLogin(ctx context.Context, loginHash string) (marketplace.AppstoreLogin, error)
}

// StartConfig tunes a Start; zero fields take the defaults.
type StartConfig struct {
	// AppSource is the application new consents use
	// (AMAZON_SPAPI_APP_SOURCE; default external_test); existing
	// connections keep theirs.
	AppSource marketplace.AppSource
	// SellerCentralURL sends consents to Seller Central there
	// (AMAZON_SELLER_CENTRAL_URL; default: by marketplace).
	SellerCentralURL string
	// ReturnHosts allows start's return_url on these hosts (host or
	// host:port: FRONTEND_RETURN_HOSTS plus FRONTEND_RETURN_URL's host;
	// default none).
	ReturnHosts []string
	Now         func() time.Time // default time.Now
	Random      io.Reader        // the states' randomness; default crypto/rand
}

// Start is the oauth/start route's flow: a single-use state bound to the
// tenant and the browser, and the consent URL.
type Start struct {
	store            StartStore
	apps             Apps
	appSource        marketplace.AppSource
	sellerCentralURL string
	returnHosts      []string
	now              func() time.Time
	random           io.Reader
}

// NewStart returns the start flow on store, reading the applications'
// credentials from apps.
func NewStart(store StartStore, apps Apps, cfg StartConfig) *Start {
	return &Start{store: store, apps: apps, appSource: appSourceOr(cfg.AppSource), sellerCentralURL: strings.TrimRight(cfg.SellerCentralURL, "/"),
		returnHosts: cfg.ReturnHosts, now: nowOr(cfg.Now), random: randomOr(cfg.Random)}
}

// StartInput is what oauth/start was asked.
type StartInput struct {
	TenantID string
	// ReturnURL is the frontend page to come back to (optional; an absolute
	// URL on an allowed host).
	ReturnURL string
	// AppstoreLogin is the log-in id the Appstore-initiated flow handed the
	// frontend (optional): the consent then goes through Amazon's
	// amazon_callback_uri.
	AppstoreLogin secret.Value
}

// StartResult is the answer of start. Binding goes to the browser as a
// cookie; the callback completes only where it comes back.
type StartResult struct {
	AuthURL   string
	State     secret.Value
	Binding   secret.Value
	ExpiresAt time.Time
}

// Start prepares a consent for the tenant, bound to the browser that will
// carry StartResult.Binding.
func (s *Start) Run(ctx context.Context, in StartInput) (StartResult, error) {
	if !marketplace.ValidTenantID(in.TenantID) {
		return StartResult{}, fmt.Errorf("tenant id: %w", marketplace.ErrBadRequest)
	}
	returnURL, err := s.checkReturnURL(in.ReturnURL)
	if err != nil {
		return StartResult{}, err
	}
	app, err := s.apps.AppFor(ctx, s.appSource)
	if err != nil {
		return StartResult{}, fmt.Errorf("start: %w", err)
	}
	var login marketplace.AppstoreLogin
	if !in.AppstoreLogin.IsZero() {
		if !statePattern.MatchString(in.AppstoreLogin.Reveal()) {
			return StartResult{}, fmt.Errorf("appstore_login: %w", marketplace.ErrInvalidState)
		}
		if login, err = s.store.ConsumeAppstoreLogin(ctx, hashState(in.AppstoreLogin)); err != nil {
			return StartResult{}, fmt.Errorf("start: %w", err)
		}
		if err := checkCallbackURI(s.sellerCentralURL, app, login.AmazonCallbackURI); err != nil {
			return StartResult{}, fmt.Errorf("start: %w", err)
		}
	}
	state, err := randomValue(s.random)
	if err != nil {
		return StartResult{}, fmt.Errorf("start: random state: %w", err)
	}
	binding, err := randomValue(s.random)
	if err != nil {
		return StartResult{}, fmt.Errorf("start: random binding: %w", err)
	}
	expires := s.now().Add(StateTTL).UTC().Truncate(time.Millisecond)
	var authURL string
	if login.AmazonCallbackURI != "" {
		authURL = appstoreConsentURL(app, login, state)
	} else {
		consentBase, err := s.consentBase(app)
		if err != nil {
			return StartResult{}, fmt.Errorf("start: %w", errors.Join(marketplace.ErrAppMisconfigured, err))
		}
		q := url.Values{}
		q.Set("application_id", app.ApplicationID)
		q.Set("state", state.Reveal())
		if app.Draft {
			q.Set("version", "beta")
		}
		if app.RedirectURI != "" {
			q.Set("redirect_uri", app.RedirectURI)
		}
		authURL = consentBase + "/apps/authorize/consent?" + q.Encode()
	}
	if _, err := s.store.BeginConnect(ctx, marketplace.Begin{
		TenantID: in.TenantID, StateHash: hashState(state), BindingHash: hashState(binding), ReturnURL: returnURL,
		AppSource: s.appSource, SellingPartnerID: login.SellingPartnerID, ExpiresAt: expires,
	}); err != nil {
		return StartResult{}, fmt.Errorf("start: %w", err)
	}
	return StartResult{AuthURL: authURL, State: state, Binding: binding, ExpiresAt: expires}, nil
}

func (s *Start) consentBase(app marketplace.AppCredentials) (string, error) {
	if s.sellerCentralURL != "" {
		return s.sellerCentralURL, nil
	}
	id := app.MarketplaceID
	if id == "" {
		r, err := amazon.LookupRegion(app.Region)
		if err != nil {
			return "", err
		}
		id = r.DefaultMarketplaceID
	}
	m, err := amazon.LookupMarketplace(id)
	if err != nil {
		return "", err
	}
	return m.SellerCentral, nil
}

// checkReturnURL accepts an empty return URL or an absolute https one (http
// on loopback) on an allowed host, without user info; it returns it without
// its fragment.
func (s *Start) checkReturnURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Opaque != "" || len(raw) > 2048 {
		return "", fmt.Errorf("return_url: %w", marketplace.ErrBadReturnURL)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && IsLoopbackHost(u.Hostname())) {
		return "", fmt.Errorf("return_url scheme %q: %w", u.Scheme, marketplace.ErrBadReturnURL)
	}
	for _, h := range s.returnHosts {
		if strings.EqualFold(h, u.Host) {
			u.Fragment = ""
			return u.String(), nil
		}
	}
	return "", fmt.Errorf("return_url host %q: %w", u.Host, marketplace.ErrBadReturnURL)
}

func randomOr(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}
