// Package connect is the "Connect Amazon" flow: start builds the consent URL
// with a single-use state bound to the tenant, callback turns Amazon's code
// into a refresh token kept in Vault, status tells the tenant where it stands.
package connect

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// StateTTL is how long a consent may take.
const StateTTL = 15 * time.Minute

// maxCodeLen bounds an spapi_oauth_code (Amazon's are about 20 chars).
const maxCodeLen = 1024

// stateBytes of randomness: 256 bits, base64url without padding = 43 chars.
const stateBytes = 32

// Store is the part of the database the flow needs.
type Store interface {
	BeginConnect(ctx context.Context, b marketplace.Begin) (marketplace.Connection, error)
	ConsumeState(ctx context.Context, stateHash, bindingHash string) (marketplace.StateClaim, error)
	MarkConnected(ctx context.Context, connectionID string, c marketplace.Connected) (marketplace.Connection, error)
	RecordConnectError(ctx context.Context, connectionID, message string) error
	ConnectionByTenant(ctx context.Context, tenantID string) (marketplace.Connection, bool, error)
	SellerTenant(ctx context.Context, sellingPartnerID, region string) (string, bool, error)
	CreateAppstoreLogin(ctx context.Context, l marketplace.AppstoreLogin) error
	ConsumeAppstoreLogin(ctx context.Context, loginHash string) (marketplace.AppstoreLogin, error)
	Disconnect(ctx context.Context, tenantID string) (marketplace.Connection, bool, error)
}

// Secrets is the part of Vault the flow needs: each application's
// credentials, and the tenants' secrets.
type Secrets interface {
	AppFor(ctx context.Context, source marketplace.AppSource) (marketplace.AppCredentials, error)
	PutTenant(ctx context.Context, tenantID string, tc marketplace.TenantCredentials) (string, error)
	DeleteTenant(ctx context.Context, tenantID string) error
	// ForgetApp drops cached app credentials (LWA answered invalid_client).
	ForgetApp()
}

// Exchanger trades an authorization code for tokens (lwa.Client).
type Exchanger interface {
	Exchange(ctx context.Context, app lwa.App, code secret.Value) (lwa.Token, error)
}

// Participations lists the marketplaces a seller takes part in (Sellers API
// getMarketplaceParticipations with the code exchange's access token;
// sellerapi.Gateway). region is the seller's region code.
type Participations interface {
	MarketplaceParticipations(ctx context.Context, region string, access secret.Value) ([]spapi.Participation, error)
}

// Unsubscriber ends what a connection subscribed to at Amazon (push
// notifications). Disconnect and a reconnect with another seller call it
// while the connection's secret is still in Vault; its error is logged and
// the disconnect goes on (a seller must always be able to leave).
type Unsubscriber interface {
	Unsubscribe(ctx context.Context, c marketplace.Connection) error
}

// Accounts reads the seller's account (Sellers API getAccount with the code
// exchange's access token, within the connection's getAccount budget;
// sellerapi.Gateway): its business name becomes the connection's displayName.
type Accounts interface {
	Account(ctx context.Context, connectionID, region string, access secret.Value) (spapi.Account, error)
}

// InboundAddresses gives a connected tenant its inbound mail addresses, one
// per marketplace country (mailaddress.Addresses).
type InboundAddresses interface {
	Provision(ctx context.Context, tenantID string, marketplaceIDs []string) ([]marketplace.InboundAddress, error)
	List(ctx context.Context, tenantID string) ([]marketplace.InboundAddress, error)
}

// Service runs the flow.
type Service struct {
	store            Store
	secrets          Secrets
	lwa              Exchanger
	sellerCentralURL string // AMAZON_SELLER_CENTRAL_URL; empty: by marketplace
	sellers          Participations
	inbound          InboundAddresses
	appSource        marketplace.AppSource
	returnHosts      []string
	unsubscriber     Unsubscriber
	accounts         Accounts
	now              func() time.Time
	random           io.Reader
	log              *slog.Logger
	onConnected      OnConnected
	pushStatus       PushStatuses
}

// OnConnected is told of every connection that has just become CONNECTED
// (push.Subscriber.OnConnected subscribes it to ORDER_CHANGE). It must not
// fail the callback: it handles and logs its own errors.
type OnConnected func(ctx context.Context, conn marketplace.Connection)

// PushStatuses reads a connection's push state (postgres.Store).
type PushStatuses interface {
	PushStatus(ctx context.Context, connectionID string) (marketplace.PushStatus, error)
}

// WithPushStatus adds push's liveness to Status.
func WithPushStatus(p PushStatuses) Option { return func(s *Service) { s.pushStatus = p } }

// WithOnConnected calls f once a consent has made a connection CONNECTED.
func WithOnConnected(f OnConnected) Option { return func(s *Service) { s.onConnected = f } }

// Option configures a Service.
type Option func(*Service)

// WithClock injects the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithRandom injects the randomness of states (tests).
func WithRandom(r io.Reader) Option { return func(s *Service) { s.random = r } }

// WithParticipations makes the callback ask Amazon which marketplaces of
// the region the seller sells on (all of them are then polled); without it,
// or when the call fails, the app's marketplace is used.
func WithParticipations(p Participations) Option { return func(s *Service) { s.sellers = p } }

// WithAccount makes the callback name the connection after the seller's
// registered business (getAccount's business.name) when the seller grants
// it; otherwise, or when the call fails (an empty budget too), the
// connection is "Amazon Seller <id>".
func WithAccount(a Accounts) Option { return func(s *Service) { s.accounts = a } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithAppSource chooses the application new consents use
// (AMAZON_SPAPI_APP_SOURCE); existing connections keep theirs.
func WithAppSource(a marketplace.AppSource) Option { return func(s *Service) { s.appSource = a } }

// WithReturnHosts allows start's return_url on these hosts (host or
// host:port, FRONTEND_RETURN_HOSTS plus FRONTEND_RETURN_URL's host).
func WithReturnHosts(hosts ...string) Option {
	return func(s *Service) { s.returnHosts = append(s.returnHosts, hosts...) }
}

// WithInboundAddresses provisions inbound mail addresses when a connection
// becomes CONNECTED, and lists them in Status.
func WithInboundAddresses(a InboundAddresses) Option { return func(s *Service) { s.inbound = a } }

// WithUnsubscriber sets what ends a connection's Amazon subscriptions.
func WithUnsubscriber(u Unsubscriber) Option { return func(s *Service) { s.unsubscriber = u } }

// WithSecrets reads and writes credentials in secrets (every route but
// Status needs it).
func WithSecrets(secrets Secrets) Option { return func(s *Service) { s.secrets = secrets } }

// WithExchanger trades the callback's authorization code with ex (LWA).
func WithExchanger(ex Exchanger) Option { return func(s *Service) { s.lwa = ex } }

// WithSellerCentralURL sends consents to Seller Central at u
// (AMAZON_SELLER_CENTRAL_URL; default: by marketplace).
func WithSellerCentralURL(u string) Option {
	return func(s *Service) { s.sellerCentralURL = strings.TrimRight(u, "/") }
}

// New returns the flow on store; what each route needs more comes as an
// Option (WithSecrets for all but Status, WithExchanger for the callback).
func New(store Store, opts ...Option) *Service {
	s := &Service{store: store, appSource: marketplace.AppExternalTest, now: time.Now, random: rand.Reader, log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	return s
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
func (s *Service) Start(ctx context.Context, in StartInput) (StartResult, error) {
	if !marketplace.ValidTenantID(in.TenantID) {
		return StartResult{}, fmt.Errorf("tenant id: %w", marketplace.ErrBadRequest)
	}
	returnURL, err := s.checkReturnURL(in.ReturnURL)
	if err != nil {
		return StartResult{}, err
	}
	app, err := s.secrets.AppFor(ctx, s.appSource)
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
		if err := s.checkCallbackURI(app, login.AmazonCallbackURI); err != nil {
			return StartResult{}, fmt.Errorf("start: %w", err)
		}
	}
	state, err := s.randomValue()
	if err != nil {
		return StartResult{}, fmt.Errorf("start: random state: %w", err)
	}
	binding, err := s.randomValue()
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

// randomValue is 256 bits of randomness, base64url without padding (43 chars).
func (s *Service) randomValue() (secret.Value, error) {
	raw := make([]byte, stateBytes)
	if _, err := io.ReadFull(s.random, raw); err != nil {
		return "", err
	}
	return secret.Value(base64.RawURLEncoding.EncodeToString(raw)), nil
}

func (s *Service) consentBase(app marketplace.AppCredentials) (string, error) {
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

// CallbackInput is what Amazon sends the browser back with, and the
// browser's binding cookie.
type CallbackInput struct {
	Code             secret.Value
	State            secret.Value
	SellingPartnerID string
	Binding          secret.Value // empty when the browser has no binding cookie
}

// CallbackResult tells who got connected. TenantID and ReturnURL are set as
// soon as the state is known, also on failure (where to send the browser).
type CallbackResult struct {
	TenantID         string
	ReturnURL        string
	SellingPartnerID string
	// ReplacedSellingPartnerID is the seller this consent replaced on the
	// tenant's connection (its secret destroyed), if another.
	ReplacedSellingPartnerID string
	Connection               marketplace.Connection
}

var (
	statePattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	sellerPattern = regexp.MustCompile(`^[A-Z0-9]{8,32}$`)
	codePattern   = regexp.MustCompile(`^[!-~]+$`) // printable ASCII, no spaces
)

// ValidSellerID reports whether id has the shape of a selling partner id.
func ValidSellerID(id string) bool { return sellerPattern.MatchString(id) }

// Validate checks the shape of the callback's parameters before any I/O.
func (in CallbackInput) Validate() error {
	var missing []string
	if in.State.IsZero() {
		missing = append(missing, "state")
	}
	if in.Code.IsZero() {
		missing = append(missing, "spapi_oauth_code")
	}
	if in.SellingPartnerID == "" {
		missing = append(missing, "selling_partner_id")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: %w", strings.Join(missing, ", "), marketplace.ErrBadRequest)
	}
	if !statePattern.MatchString(in.State.Reveal()) {
		return fmt.Errorf("malformed state: %w", marketplace.ErrInvalidState)
	}
	if len(in.Code.Reveal()) > maxCodeLen || !codePattern.MatchString(in.Code.Reveal()) {
		return fmt.Errorf("malformed spapi_oauth_code: %w", marketplace.ErrBadRequest)
	}
	if !sellerPattern.MatchString(in.SellingPartnerID) {
		return fmt.Errorf("malformed selling_partner_id: %w", marketplace.ErrBadRequest)
	}
	if !in.Binding.IsZero() && !statePattern.MatchString(in.Binding.Reveal()) {
		return fmt.Errorf("malformed binding cookie: %w", marketplace.ErrBrowserMismatch)
	}
	return nil
}

// Callback completes a consent, only in the browser that started it: the
// state is consumed atomically and only with the binding cookie start set,
// so a replay fails and a consent URL opened anywhere else attaches nothing
// and leaves the connection as it was. The seller must not belong to
// another tenant (checked before the code is exchanged, and again by the
// database); the secret reaches Vault before the connection becomes
// CONNECTED, so there is never a CONNECTED connection without a secret.
func (s *Service) Callback(ctx context.Context, in CallbackInput) (CallbackResult, error) {
	if err := in.Validate(); err != nil {
		return CallbackResult{}, err
	}
	claim, err := s.store.ConsumeState(ctx, hashState(in.State), hashState(in.Binding))
	res := CallbackResult{TenantID: claim.TenantID, ReturnURL: claim.ReturnURL, SellingPartnerID: in.SellingPartnerID}
	if err != nil {
		if errors.Is(err, marketplace.ErrBrowserMismatch) {
			s.log.WarnContext(ctx, "oauth callback from a browser that did not start the consent: nothing connected",
				"tenant_id", claim.TenantID, "had_binding_cookie", !in.Binding.IsZero())
		}
		return res, err
	}
	if claim.SellingPartnerID != "" && claim.SellingPartnerID != in.SellingPartnerID {
		s.recordError(ctx, claim.ConnectionID, marketplace.ErrSellerMismatch.Message)
		return res, fmt.Errorf("callback: %w", marketplace.ErrSellerMismatch)
	}
	source := claim.AppSource
	if !source.Valid() {
		source = s.appSource
	}
	app, err := s.secrets.AppFor(ctx, source)
	if err != nil {
		s.recordError(ctx, claim.ConnectionID, "App credentials unavailable")
		return res, fmt.Errorf("callback: %w", err)
	}
	region, err := amazon.LookupRegion(app.Region)
	if err != nil {
		return res, fmt.Errorf("callback: %w", errors.Join(marketplace.ErrAppMisconfigured, err))
	}
	regionName := strings.ToUpper(region.Code) // the seed's "EU", "NA"
	owner, taken, err := s.store.SellerTenant(ctx, in.SellingPartnerID, regionName)
	if err != nil {
		return res, fmt.Errorf("callback: %w", err)
	}
	if taken && owner != claim.TenantID {
		s.recordError(ctx, claim.ConnectionID, marketplace.ErrSellerTaken.Message)
		return res, fmt.Errorf("callback: seller %s: %w", in.SellingPartnerID, marketplace.ErrSellerTaken)
	}
	previous, hadPrevious, err := s.store.ConnectionByTenant(ctx, claim.TenantID)
	if err != nil {
		return res, fmt.Errorf("callback: %w", err)
	}
	tok, err := s.lwa.Exchange(ctx, lwa.App{ClientID: app.ClientID, ClientSecret: app.ClientSecret}, in.Code)
	if err != nil {
		code := lwaCode(err)
		s.recordError(ctx, claim.ConnectionID, marketplace.ErrTokenExchange.Message+": "+code)
		if code == "invalid_client" {
			s.secrets.ForgetApp() // the app secret may have been rotated since it was cached
		}
		if lwa.IsInvalidGrant(err) {
			return res, fmt.Errorf("callback: %w", errors.Join(marketplace.ErrCodeRejected, err))
		}
		return res, fmt.Errorf("callback: %w", errors.Join(marketplace.ErrTokenExchange, err))
	}
	marketplaceID, marketplaceIDs := s.marketplaces(ctx, app, region, tok.AccessToken)
	if hadPrevious && previous.SellingPartnerID != "" && previous.SellingPartnerID != in.SellingPartnerID {
		// Another seller replaces this one: end its subscriptions and
		// destroy its secret (every version) before the new one is written.
		s.unsubscribe(ctx, previous)
		if err := s.secrets.DeleteTenant(ctx, claim.TenantID); err != nil {
			s.recordError(ctx, claim.ConnectionID, "Vault unavailable: previous credentials not removed")
			return res, fmt.Errorf("callback: replace seller: %w", err)
		}
		res.ReplacedSellingPartnerID = previous.SellingPartnerID
	}
	displayName := s.displayName(ctx, claim.ConnectionID, region, tok.AccessToken, in.SellingPartnerID)
	path, err := s.secrets.PutTenant(ctx, claim.TenantID, marketplace.TenantCredentials{
		RefreshToken: tok.RefreshToken, SellerID: in.SellingPartnerID, MarketplaceID: marketplaceID,
		MarketplaceIDs: marketplaceIDs, Region: region.Code, CreatedAt: s.now().UTC(),
	})
	if err != nil {
		s.recordError(ctx, claim.ConnectionID, "Vault unavailable: credentials not stored")
		return res, fmt.Errorf("callback: %w", err)
	}
	conn, err := s.store.MarkConnected(ctx, claim.ConnectionID, marketplace.Connected{
		DisplayName: displayName, Region: regionName, MarketplaceID: marketplaceID,
		SellingPartnerID: in.SellingPartnerID, VaultPath: path, AppSource: source,
	})
	if errors.Is(err, marketplace.ErrSellerTaken) {
		// Another tenant connected this seller meanwhile: no secret of it
		// may stay under this tenant.
		if derr := s.secrets.DeleteTenant(ctx, claim.TenantID); derr != nil {
			s.log.ErrorContext(ctx, "remove credentials of a seller taken by another tenant", "error", derr.Error())
		}
		s.recordError(ctx, claim.ConnectionID, marketplace.ErrSellerTaken.Message)
	}
	if err != nil {
		return res, fmt.Errorf("callback: %w", err)
	}
	res.Connection = conn
	if s.onConnected != nil {
		s.onConnected(ctx, conn)
	}
	s.provisionInbound(ctx, conn)
	return res, nil
}

// provisionInbound gives a CONNECTED connection's tenant one inbound address
// per marketplace; a failure is logged (Status provisions again).
func (s *Service) provisionInbound(ctx context.Context, c marketplace.Connection) []marketplace.InboundAddress {
	if s.inbound == nil || c.Status != marketplace.StatusConnected {
		return nil
	}
	addrs, err := s.inbound.Provision(ctx, c.TenantID, strings.Split(c.MarketplaceID, ","))
	if err != nil {
		s.log.WarnContext(ctx, "inbound addresses not provisioned", "error", err.Error())
	}
	return addrs
}

func (s *Service) unsubscribe(ctx context.Context, c marketplace.Connection) {
	if s.unsubscriber == nil {
		return
	}
	if err := s.unsubscriber.Unsubscribe(ctx, c); err != nil {
		s.log.WarnContext(ctx, "end Amazon subscriptions", "connection_id", c.ID, "error", err.Error())
	}
}

// marketplaces returns the seller's primary marketplace and every
// marketplace of region it sells on, as Amazon lists them (the app's
// marketplace alone when Amazon cannot tell). The primary one, the seed's
// one marketplace_id, is the app's marketplace when the seller sells
// there, else the region's default one (Amazon.fr in Europe) when it does,
// else the first Amazon lists.
func (s *Service) marketplaces(ctx context.Context, app marketplace.AppCredentials, region amazon.Region, access secret.Value) (string, []string) {
	fallback := app.MarketplaceID
	if fallback == "" {
		fallback = region.DefaultMarketplaceID
	}
	if s.sellers == nil {
		return fallback, []string{fallback}
	}
	parts, err := s.sellers.MarketplaceParticipations(ctx, region.Code, access)
	if err != nil {
		s.log.WarnContext(ctx, "marketplace participations unavailable; polling the app's marketplace", "error", err.Error())
		return fallback, []string{fallback}
	}
	var ids []string
	for _, p := range parts {
		m, err := amazon.LookupMarketplace(p.MarketplaceID)
		if p.Participating && err == nil && m.Region == region.Code {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) == 0 {
		return fallback, []string{fallback}
	}
	for _, want := range []string{app.MarketplaceID, region.DefaultMarketplaceID} {
		if slices.Contains(ids, want) {
			return want, ids
		}
	}
	return ids[0], ids
}

// maxDisplayName bounds a business name taken from Amazon (runes).
const maxDisplayName = 200

// displayName is the seller's registered business name when getAccount
// gives it, else "Amazon Seller <id>".
func (s *Service) displayName(ctx context.Context, connectionID string, region amazon.Region, access secret.Value, sellerID string) string {
	fallback := "Amazon Seller " + sellerID
	if s.accounts == nil {
		return fallback
	}
	a, err := s.accounts.Account(ctx, connectionID, region.Code, access)
	var nb *sellerapi.NoBudgetError
	if errors.As(err, &nb) {
		s.log.WarnContext(ctx, "getAccount skipped: no rate budget; the connection keeps the seller id as its name", "error", err.Error())
		return fallback
	}
	if err != nil {
		s.log.InfoContext(ctx, "seller account unavailable (role not granted, or Amazon failed); the connection keeps the seller id as its name", "error", err.Error())
		return fallback
	}
	name := strings.Join(strings.Fields(a.BusinessName), " ")
	if name == "" {
		return fallback
	}
	if r := []rune(name); len(r) > maxDisplayName {
		name = string(r[:maxDisplayName])
	}
	return name
}

// recordError keeps the failure on the connection for status; a failure to
// record it is logged, the original error is what the caller sees.
func (s *Service) recordError(ctx context.Context, connectionID, msg string) {
	if err := s.store.RecordConnectError(ctx, connectionID, msg); err != nil {
		s.log.WarnContext(ctx, "record connect error", "error", err.Error())
	}
}

// lwaCode is the LWA error code of err (never its description, which could
// echo input), or a transport class.
func lwaCode(err error) string {
	var le *lwa.Error
	switch {
	case errors.As(err, &le) && le.Code != "":
		return le.Code
	case errors.As(err, &le):
		return fmt.Sprintf("HTTP %d", le.Status)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "unreachable"
	}
}

// Status is what the status route answers.
type Status struct {
	Connected  bool
	Connection *marketplace.Connection // nil when the tenant never started
	// ReauthReason is why the seller must consent again (renewal_due while
	// still CONNECTED within 30 days of expiry); empty otherwise.
	ReauthReason marketplace.ReauthReason
	// AuthorizationExpiresAt is the consent's end (consent + 365 days).
	AuthorizationExpiresAt *time.Time
	// Push is the connection's ORDER_CHANGE subscription (WithPushStatus);
	// nil when unknown.
	Push *marketplace.PushStatus
	// InboundAddresses are the tenant's inbound mail addresses, one per
	// marketplace country; InboundEmail is the primary marketplace's.
	InboundAddresses []marketplace.InboundAddress
	InboundEmail     string
}

// Status returns the tenant's connection state; no connection is not an error.
func (s *Service) Status(ctx context.Context, tenantID string) (Status, error) {
	c, ok, err := s.store.ConnectionByTenant(ctx, tenantID)
	if err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	if !ok {
		return Status{}, nil
	}
	st := Status{Connected: c.Status == marketplace.StatusConnected, Connection: &c,
		ReauthReason: marketplace.EffectiveReauthReason(c, s.now())}
	if c.AuthorizedAt != nil && c.Status != marketplace.StatusDisabled {
		exp := marketplace.AuthorizationExpiresAt(*c.AuthorizedAt)
		st.AuthorizationExpiresAt = &exp
	}
	if s.pushStatus != nil { // push's own fields; the status answers without them rather than fail
		if ps, err := s.pushStatus.PushStatus(ctx, c.ID); err == nil {
			st.Push = &ps
		} else {
			s.log.WarnContext(ctx, "push status unavailable", "error", err.Error())
		}
	}
	if s.inbound != nil {
		addrs, err := s.inbound.List(ctx, tenantID)
		if err != nil {
			return Status{}, fmt.Errorf("status: %w", err)
		}
		if len(addrs) == 0 {
			addrs = s.provisionInbound(ctx, c)
		}
		st.InboundAddresses = addrs
		primary := strings.Split(c.MarketplaceID, ",")[0]
		for _, a := range addrs {
			if m, err := amazon.LookupMarketplace(primary); err == nil && strings.EqualFold(m.CountryCode, a.Country) {
				st.InboundEmail = a.EmailAddress
			}
		}
		if st.InboundEmail == "" && len(addrs) > 0 {
			st.InboundEmail = addrs[0].EmailAddress
		}
	}
	return st, nil
}

// hashState is what the database keeps of a state: SHA-256, hex.
func hashState(state secret.Value) string {
	sum := sha256.Sum256([]byte(state.Reveal()))
	return hex.EncodeToString(sum[:])
}
