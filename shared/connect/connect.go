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
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
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
	BeginConnect(ctx context.Context, tenantID, stateHash string, expiresAt time.Time) (marketplace.Connection, error)
	ConsumeState(ctx context.Context, stateHash string) (marketplace.StateClaim, error)
	MarkConnected(ctx context.Context, connectionID string, c marketplace.Connected) (marketplace.Connection, error)
	RecordConnectError(ctx context.Context, connectionID, message string) error
	ConnectionByTenant(ctx context.Context, tenantID string) (marketplace.Connection, bool, error)
}

// Secrets is the part of Vault the flow needs.
type Secrets interface {
	App(ctx context.Context) (marketplace.AppCredentials, error)
	PutTenant(ctx context.Context, tenantID string, tc marketplace.TenantCredentials) (string, error)
	// ForgetApp drops cached app credentials (LWA answered invalid_client).
	ForgetApp()
}

// Exchanger trades an authorization code for tokens (lwa.Client).
type Exchanger interface {
	Exchange(ctx context.Context, app lwa.App, code secret.Value) (lwa.Token, error)
}

// Participations lists the marketplaces a seller takes part in (Sellers API
// getMarketplaceParticipations; spapi.Client).
type Participations interface {
	MarketplaceParticipations(ctx context.Context, endpoint string, tokens spapi.Tokens) ([]spapi.Participation, error)
}

// Service runs the flow.
type Service struct {
	store            Store
	secrets          Secrets
	lwa              Exchanger
	sellerCentralURL string // AMAZON_SELLER_CENTRAL_URL; empty: by marketplace
	sellers          Participations
	spapiEndpoint    string // AMAZON_SPAPI_ENDPOINT; empty: by region
	now              func() time.Time
	random           io.Reader
	log              *slog.Logger
}

// Option configures a Service.
type Option func(*Service)

// WithClock injects the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithRandom injects the randomness of states (tests).
func WithRandom(r io.Reader) Option { return func(s *Service) { s.random = r } }

// WithParticipations makes the callback ask Amazon which marketplaces of
// the region the seller sells on (all of them are then polled); without it,
// or when the call fails, the app's marketplace is used.
func WithParticipations(p Participations, endpointOverride string) Option {
	return func(s *Service) { s.sellers, s.spapiEndpoint = p, endpointOverride }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New returns the flow.
func New(store Store, secrets Secrets, ex Exchanger, sellerCentralURL string, opts ...Option) *Service {
	s := &Service{store: store, secrets: secrets, lwa: ex, sellerCentralURL: strings.TrimRight(sellerCentralURL, "/"),
		now: time.Now, random: rand.Reader, log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// StartResult is the answer of start.
type StartResult struct {
	AuthURL   string
	ExpiresAt time.Time
}

// Start prepares a consent for tenantID.
func (s *Service) Start(ctx context.Context, tenantID string) (StartResult, error) {
	if !marketplace.ValidTenantID(tenantID) {
		return StartResult{}, fmt.Errorf("tenant id: %w", marketplace.ErrBadRequest)
	}
	app, err := s.secrets.App(ctx)
	if err != nil {
		return StartResult{}, fmt.Errorf("start: %w", err)
	}
	consentBase, err := s.consentBase(app)
	if err != nil {
		return StartResult{}, fmt.Errorf("start: %w", errors.Join(marketplace.ErrAppMisconfigured, err))
	}
	raw := make([]byte, stateBytes)
	if _, err := io.ReadFull(s.random, raw); err != nil {
		return StartResult{}, fmt.Errorf("start: random state: %w", err)
	}
	state := secret.Value(base64.RawURLEncoding.EncodeToString(raw))
	expires := s.now().Add(StateTTL).UTC().Truncate(time.Millisecond)
	if _, err := s.store.BeginConnect(ctx, tenantID, hashState(state), expires); err != nil {
		return StartResult{}, fmt.Errorf("start: %w", err)
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
	return StartResult{AuthURL: consentBase + "/apps/authorize/consent?" + q.Encode(), ExpiresAt: expires}, nil
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

// CallbackInput is what Amazon sends the browser back with.
type CallbackInput struct {
	Code             secret.Value
	State            secret.Value
	SellingPartnerID string
}

// CallbackResult tells who got connected.
type CallbackResult struct {
	TenantID         string
	SellingPartnerID string
	Connection       marketplace.Connection
}

var (
	statePattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	sellerPattern = regexp.MustCompile(`^[A-Z0-9]{8,32}$`)
	codePattern   = regexp.MustCompile(`^[!-~]+$`) // printable ASCII, no spaces
)

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
	return nil
}

// Callback completes a consent. The state is consumed first and atomically,
// so a replay fails; the secret reaches Vault before the connection becomes
// CONNECTED, so there is never a CONNECTED connection without a secret.
func (s *Service) Callback(ctx context.Context, in CallbackInput) (CallbackResult, error) {
	if err := in.Validate(); err != nil {
		return CallbackResult{}, err
	}
	claim, err := s.store.ConsumeState(ctx, hashState(in.State))
	if err != nil {
		return CallbackResult{}, err
	}
	res := CallbackResult{TenantID: claim.TenantID, SellingPartnerID: in.SellingPartnerID}

	app, err := s.secrets.App(ctx)
	if err != nil {
		s.recordError(ctx, claim.ConnectionID, "App credentials unavailable")
		return res, fmt.Errorf("callback: %w", err)
	}
	tok, err := s.lwa.Exchange(ctx, lwa.App{ClientID: app.ClientID, ClientSecret: app.ClientSecret}, in.Code)
	if err != nil {
		code := lwaCode(err)
		s.recordError(ctx, claim.ConnectionID, marketplace.ErrTokenExchange.Message+": "+code)
		if lwa.IsInvalidClient(err) {
			s.secrets.ForgetApp() // the app secret may have been rotated since it was cached
		}
		if lwa.IsInvalidGrant(err) {
			return res, fmt.Errorf("callback: %w", errors.Join(marketplace.ErrCodeRejected, err))
		}
		return res, fmt.Errorf("callback: %w", errors.Join(marketplace.ErrTokenExchange, err))
	}
	region, err := amazon.LookupRegion(app.Region)
	if err != nil {
		return res, fmt.Errorf("callback: %w", errors.Join(marketplace.ErrAppMisconfigured, err))
	}
	marketplaceID := s.marketplaces(ctx, app, region, tok.AccessToken)
	path, err := s.secrets.PutTenant(ctx, claim.TenantID, marketplace.TenantCredentials{
		RefreshToken: tok.RefreshToken, SellerID: in.SellingPartnerID, MarketplaceID: marketplaceID,
		Region: region.Code, CreatedAt: s.now().UTC(),
	})
	if err != nil {
		s.recordError(ctx, claim.ConnectionID, "Vault unavailable: credentials not stored")
		return res, fmt.Errorf("callback: %w", err)
	}
	conn, err := s.store.MarkConnected(ctx, claim.ConnectionID, marketplace.Connected{
		DisplayName: "Amazon Seller " + in.SellingPartnerID, Region: region.Code, MarketplaceID: marketplaceID,
		SellingPartnerID: in.SellingPartnerID, VaultPath: path,
	})
	if err != nil {
		return res, fmt.Errorf("callback: %w", err)
	}
	res.Connection = conn
	return res, nil
}

// marketplaces returns the seller's marketplaces in region, comma-separated,
// as Amazon lists them; the app's marketplace when Amazon cannot tell.
func (s *Service) marketplaces(ctx context.Context, app marketplace.AppCredentials, region amazon.Region, access secret.Value) string {
	fallback := app.MarketplaceID
	if fallback == "" {
		fallback = region.DefaultMarketplaceID
	}
	if s.sellers == nil {
		return fallback
	}
	endpoint, err := spapi.Endpoint(s.spapiEndpoint, region.Code)
	if err != nil {
		return fallback
	}
	parts, err := s.sellers.MarketplaceParticipations(ctx, endpoint, spapi.StaticToken(access))
	if err != nil {
		s.log.WarnContext(ctx, "marketplace participations unavailable; polling the app's marketplace", "error", err.Error())
		return fallback
	}
	var ids []string
	for _, p := range parts {
		m, err := amazon.LookupMarketplace(p.MarketplaceID)
		if p.Participating && err == nil && m.Region == region.Code {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) == 0 {
		return fallback
	}
	return strings.Join(ids, ",")
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
	return Status{Connected: c.Status == marketplace.StatusConnected, Connection: &c}, nil
}

// hashState is what the database keeps of a state: SHA-256, hex.
func hashState(state secret.Value) string {
	sum := sha256.Sum256([]byte(state.Reveal()))
	return hex.EncodeToString(sum[:])
}
