package connect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
)

// CallbackStore is the part of the database oauth/callback needs.
type CallbackStore interface {
	ConsumeState(ctx context.Context, stateHash, bindingHash string) (marketplace.StateClaim, error)
	MarkConnected(ctx context.Context, connectionID string, c marketplace.Connected) (marketplace.Connection, error)
	RecordConnectError(ctx context.Context, connectionID, message string) error
	ConnectionByTenant(ctx context.Context, tenantID string) (marketplace.Connection, bool, error)
	SellerTenant(ctx context.Context, sellingPartnerID, region string) (string, bool, error)
}

// Secrets is the part of Vault the callback needs: each application's
// credentials, and the tenants' secrets.
type Secrets interface {
	Apps
	PutTenant(ctx context.Context, tenantID string, tc marketplace.TenantCredentials) (string, error)
	DeleteTenant(ctx context.Context, tenantID string) error
	// ForgetApp drops cached app credentials (LWA answered invalid_client).
	ForgetApp()
}

// CallbackConfig tunes a Callback; zero fields take the defaults (nil
// collaborators: that step is skipped).
type CallbackConfig struct {
	// AppSource is the application of states started before apps were
	// recorded (AMAZON_SPAPI_APP_SOURCE; default external_test).
	AppSource marketplace.AppSource
	// Participations asks Amazon which marketplaces of the region the seller
	// sells on (all of them are then polled); without it, or when the call
	// fails, the app's marketplace is used.
	Participations Participations
	// Accounts names the connection after the seller's registered business
	// when the seller grants it; otherwise, or when the call fails (an empty
	// budget too), the connection is "Amazon Seller <id>".
	Accounts Accounts
	// InboundAddresses provisions the tenant's inbound mail addresses once
	// the connection is CONNECTED.
	InboundAddresses InboundAddresses
	// Unsubscriber ends the subscriptions of a seller another one replaces.
	Unsubscriber Unsubscriber
	// OnConnected is told of the connection once it is CONNECTED.
	OnConnected OnConnected
	Now         func() time.Time // default time.Now
	Log         *slog.Logger     // default slog.Default()
}

// Callback is the oauth/callback route's flow: Amazon's code becomes a
// refresh token in Vault and a CONNECTED connection.
type Callback struct {
	store        CallbackStore
	secrets      Secrets
	lwa          Exchanger
	appSource    marketplace.AppSource
	sellers      Participations
	accounts     Accounts
	inbound      InboundAddresses
	unsubscriber Unsubscriber
	onConnected  OnConnected
	now          func() time.Time
	log          *slog.Logger
}

// NewCallback returns the callback flow on store, keeping credentials in
// secrets and exchanging codes with exchanger (LWA).
func NewCallback(store CallbackStore, secrets Secrets, exchanger Exchanger, cfg CallbackConfig) *Callback {
	return &Callback{store: store, secrets: secrets, lwa: exchanger, appSource: appSourceOr(cfg.AppSource), sellers: cfg.Participations,
		accounts: cfg.Accounts, inbound: cfg.InboundAddresses, unsubscriber: cfg.Unsubscriber, onConnected: cfg.OnConnected,
		now: nowOr(cfg.Now), log: logOr(cfg.Log)}
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
func (s *Callback) Run(ctx context.Context, in CallbackInput) (CallbackResult, error) {
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
	// The consent URL named the app's redirect URI when it has one (Start,
	// the Appstore log-in): the exchange repeats it, as LWA requires.
	tok, err := s.lwa.Exchange(ctx, lwa.App{ClientID: app.ClientID, ClientSecret: app.ClientSecret, RedirectURI: app.RedirectURI}, in.Code)
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
		unsubscribe(ctx, s.unsubscriber, s.log, previous)
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
	provisionInbound(ctx, s.inbound, s.log, conn)
	return res, nil
}

// marketplaces returns the seller's primary marketplace and every
// marketplace of region it sells on, as Amazon lists them (the app's
// marketplace alone when Amazon cannot tell). The primary one, the seed's
// one marketplace_id, is the app's marketplace when the seller sells
// there, else the region's default one (Amazon.fr in Europe) when it does,
// else the first Amazon lists.
func (s *Callback) marketplaces(ctx context.Context, app marketplace.AppCredentials, region amazon.Region, access secret.Value) (string, []string) {
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
func (s *Callback) displayName(ctx context.Context, connectionID string, region amazon.Region, access secret.Value, sellerID string) string {
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
func (s *Callback) recordError(ctx context.Context, connectionID, msg string) {
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
