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
