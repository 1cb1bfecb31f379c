package marketplace

import "time"

// StatusDisabled is KeyBuzz's status of a connection the tenant disconnected:
// no secret in Vault, not polled, tickets kept.
const StatusDisabled Status = "DISABLED"

// DisconnectedMessage is the lastError of a disconnected connection
// (KeyBuzz's wording).
const DisconnectedMessage = "Disconnected by user"

// AppSource names the SP-API application that authorized a connection; a
// refresh token works only with the app that issued it.
type AppSource string

const (
	AppExternalTest AppSource = "external_test"
	AppKeyBuzz      AppSource = "keybuzz"
)

// Valid reports whether a is a known application.
func (a AppSource) Valid() bool { return a == AppExternalTest || a == AppKeyBuzz }

// ReauthReason tells the frontend why the seller must consent again.
type ReauthReason string

const (
	// ReauthRenewalDue: the authorization expires within RenewalWindow;
	// the connection stays CONNECTED (computed, never stored).
	ReauthRenewalDue ReauthReason = "renewal_due"
	// ReauthExpired: the 365-day authorization ended (NEEDS_REAUTH).
	ReauthExpired ReauthReason = "authorization_expired"
	// ReauthAppMigration: the connection is on an application KeyBuzz is
	// leaving (NEEDS_REAUTH, set by the app migration command).
	ReauthAppMigration ReauthReason = "app_migration"
	// ReauthRevoked: Amazon refused the refresh token (invalid_grant).
	ReauthRevoked ReauthReason = "revoked"
)

// AuthorizationLifetime is how long a public app's authorization lasts;
// RenewalWindow is how early the seller is asked to renew it.
const (
	AuthorizationLifetime = 365 * 24 * time.Hour
	RenewalWindow         = 30 * 24 * time.Hour
)

// AuthorizationExpiresAt is when an authorization given at authorizedAt ends.
func AuthorizationExpiresAt(authorizedAt time.Time) time.Time {
	return authorizedAt.Add(AuthorizationLifetime)
}

// EffectiveReauthReason is the reason status shows for c at now: the stored
// one, or renewal_due while CONNECTED within RenewalWindow of expiry.
func EffectiveReauthReason(c Connection, now time.Time) ReauthReason {
	if c.ReauthReason != "" {
		return c.ReauthReason
	}
	if c.Status == StatusConnected && c.AuthorizedAt != nil &&
		!now.Before(AuthorizationExpiresAt(*c.AuthorizedAt).Add(-RenewalWindow)) {
		return ReauthRenewalDue
	}
	return ""
}

// Support errors of the hardened Connect flow.
var (
	// ErrBrowserMismatch: the callback arrived in a browser that did not
	// start the consent (no binding cookie, or another one).
	ErrBrowserMismatch = &Error{Code: "browser_mismatch", Message: "This Amazon authorization was not started in this browser: " +
		"nothing was connected. Open KeyBuzz in this browser, signed in to the account to connect, and press Connect Amazon again"}
	// ErrSellerTaken: the seller account belongs to another tenant.
	ErrSellerTaken = &Error{Code: "seller_already_connected", Message: "This Amazon seller account is already connected to another KeyBuzz account"}
	// ErrBadReturnURL: return_url is not an absolute URL on an allowed host.
	ErrBadReturnURL = &Error{Code: "invalid_return_url", Message: "return_url must be an absolute https URL on an allowed host"}
	// ErrBadCallbackURI: amazon_callback_uri is not an https Seller or
	// Vendor Central host of the app's regions.
	ErrBadCallbackURI = &Error{Code: "invalid_amazon_callback_uri", Message: "amazon_callback_uri must be an https Amazon Seller Central or Vendor Central address"}
	// ErrSellerMismatch: the seller who consented is not the one the
	// Appstore log-in named.
	ErrSellerMismatch = &Error{Code: "seller_mismatch", Message: "The Amazon seller who consented is not the one who started from the Appstore"}
)

// Begin is what a start records with its state.
type Begin struct {
	TenantID    string
	StateHash   string
	BindingHash string // SHA-256 of the browser binding cookie
	ReturnURL   string // allowlisted frontend page; empty: the configured one
	AppSource   AppSource
	// SellingPartnerID is the seller an Appstore log-in named (empty otherwise).
	SellingPartnerID string
	ExpiresAt        time.Time
}

// AppstoreLogin is what Amazon's Appstore sent to the log-in route, kept
// until the signed-in tenant starts the consent.
type AppstoreLogin struct {
	LoginHash         string
	AmazonCallbackURI string
	AmazonState       string
	SellingPartnerID  string
	Version           string
	ExpiresAt         time.Time
}

// Renewal is what one renewal pass found: connections whose authorization
// ended (now NEEDS_REAUTH) and CONNECTED ones due within RenewalWindow.
type Renewal struct {
	Expired int
	DueSoon int
}
