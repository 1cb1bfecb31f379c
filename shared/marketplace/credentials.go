package marketplace

import (
	"errors"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// Credentials: what Vault keeps for the application and for each tenant.

// AppCredentials are the SP-API application's LWA credentials.
type AppCredentials struct {
	ClientID      string
	ClientSecret  secret.Value
	RedirectURI   string // optional: sent as redirect_uri on consent
	ApplicationID string
	Region        string // na, eu, fe (Vault keeps the AWS region, "eu-west-1")
	MarketplaceID string // optional: which Seller Central hosts the consent
	Draft         bool   // app not yet published: consent needs version=beta
	LoginURI      string // optional: the Appstore log-in URI (KeyBuzz's newer app secret)
}

// TenantCredentials are what a seller's consent produced.
type TenantCredentials struct {
	RefreshToken secret.Value
	SellerID     string
	// MarketplaceID is the seller's primary marketplace (one id, the seed's
	// marketplace_id); MarketplaceIDs every marketplace polled (it holds
	// MarketplaceID; empty means MarketplaceID alone).
	MarketplaceID  string
	MarketplaceIDs []string
	Region         string // na, eu, fe (Vault keeps the AWS region, "eu-west-1")
	CreatedAt      time.Time
	// Version is the KV version read, for check-and-set writes.
	Version int
}

// ValidTenantID reports whether id may name a tenant: 1-128 ASCII letters,
// digits, '-' and '_', starting with a letter or digit. Anything else could
// walk the Vault path tree or inject into it. (A loop rather than the
// regexp ^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$, whose compilation at package
// init was the costliest of every function's cold start.)
func ValidTenantID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Marketplaces returns every marketplace of the seller: MarketplaceIDs, or
// MarketplaceID alone.
func (tc TenantCredentials) Marketplaces() []string {
	if len(tc.MarketplaceIDs) > 0 {
		return tc.MarketplaceIDs
	}
	if tc.MarketplaceID != "" {
		return []string{tc.MarketplaceID}
	}
	return nil
}

// ErrConflict means a check-and-set write of a tenant's credentials lost to
// a concurrent writer (a reconnect wrote a new secret meanwhile).
var ErrConflict = errors.New("credentials: check-and-set version mismatch")
