// Package marketplace holds the connector's domain: a tenant's marketplace
// connection, its statuses, the inbound messages polling produces, and the
// named support errors. It depends on nothing but the standard library.
package marketplace

import (
	"encoding/json"
	"errors"
	"time"
)

// Type is the marketplace type stored on connections and messages.
const Type = "AMAZON"

// Status is a MarketplaceConnection's lifecycle state.
type Status string

const (
	StatusPending      Status = "PENDING"      // start called, consent not completed
	StatusConnected    Status = "CONNECTED"    // refresh token in Vault, polled
	StatusNeedsReauth  Status = "NEEDS_REAUTH" // Amazon answered invalid_grant: the seller must reconnect
	StatusError        Status = "ERROR"        // a permanent failure other than revocation (no credentials)
	StatusDisconnected Status = "DISCONNECTED"
)

// Connection is a tenant's MarketplaceConnection row.
type Connection struct {
	ID               string
	TenantID         string
	Status           Status
	DisplayName      string
	Region           string
	MarketplaceID    string
	SellingPartnerID string
	VaultPath        string
	LastSyncAt       *time.Time
	LastError        string
	ConnectedAt      *time.Time
	AppSource        AppSource    // the application that authorized it
	AuthorizedAt     *time.Time   // the seller's last consent
	ReauthReason     ReauthReason // why NEEDS_REAUTH, when stored
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// InboundMessage is one buyer-initiated event normalised for the helpdesk:
// it becomes an ExternalMessage and a TicketMessage on the ticket of its
// thread.
type InboundMessage struct {
	ExternalID    string // deterministic: <orderId>:<orderItemId>:cancellation
	ThreadID      string // the order id: one ticket per tenant and order
	OrderID       string
	MarketplaceID string
	AuthorName    string
	AuthorEmail   string // Amazon's anonymised relay address
	Subject       string
	Body          string
	ReceivedAt    time.Time
	Raw           json.RawMessage // the order as Amazon sent it
}

// Error is a support error with a stable code; httpapi maps each to an HTTP
// status in one table.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// The seed's support errors and the few the API adds. Wrap them with context
// (fmt.Errorf("consume state: %w", ErrInvalidState)) and test with errors.Is.
var (
	ErrInvalidState  = &Error{Code: "invalid_state", Message: "Invalid state"}
	ErrTokenExchange = &Error{Code: "token_exchange_failed", Message: "Token exchange failed"}
	// ErrCodeRejected is a token exchange LWA refused with invalid_grant: the
	// code was used, expired or forged: the caller's fault, not ours.
	ErrCodeRejected     = &Error{Code: "token_exchange_failed", Message: "Token exchange failed: the authorization code was refused"}
	ErrNotConnected     = &Error{Code: "connection_not_connected", Message: "Connection not CONNECTED"}
	ErrNoCredentials    = &Error{Code: "no_credentials", Message: "No credentials found"}
	ErrUnauthorized     = &Error{Code: "unauthorized", Message: "Missing or invalid bearer token"}
	ErrBadRequest       = &Error{Code: "invalid_request", Message: "Invalid request"}
	ErrUnavailable      = &Error{Code: "service_unavailable", Message: "A dependency is unavailable, retry later"}
	ErrNotFound         = &Error{Code: "not_found", Message: "Not found"}
	ErrNeedsReauth      = &Error{Code: "needs_reauthorization", Message: "Amazon refused the refresh token: the seller must reconnect"}
	ErrAppMisconfigured = &Error{Code: "app_misconfigured", Message: "Amazon application credentials are missing or invalid"}
)

// AsError returns the support error err wraps, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// StateClaim is what a consumed OAuth state was bound to.
type StateClaim struct {
	TenantID     string
	ConnectionID string
	ReturnURL    string    // the frontend page start named, if any
	AppSource    AppSource // the application whose consent it started
	// SellingPartnerID is the seller the Appstore log-in named, if any.
	SellingPartnerID string
}

// Connected is what a completed consent sets on a connection.
type Connected struct {
	DisplayName      string
	Region           string
	MarketplaceID    string
	SellingPartnerID string
	VaultPath        string
	AppSource        AppSource // the application that issued the refresh token
}

// TicketSummary is a ticket as the local page lists it.
type TicketSummary struct {
	ID            string
	Subject       string
	Status        string
	OrderID       string
	CustomerName  string
	Messages      int
	LastMessageAt *time.Time
	CreatedAt     time.Time
}
