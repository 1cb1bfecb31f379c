// Package marketplace holds the connector's domain: a tenant's marketplace
// connection, its statuses, the inbound messages polling produces, and the
// named support errors. It depends on nothing but the standard library.
package marketplace

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Type is the marketplace type stored on connections and messages.
const Type = "AMAZON"

// Status is a MarketplaceConnection's lifecycle state.
type Status string

const (
	StatusPending   Status = "PENDING"   // start called, consent not completed
	StatusConnected Status = "CONNECTED" // refresh token in Vault, polled
	// StatusNeedsReauth: Amazon answered invalid_grant, the seller must
	// reconnect. The connector's addition to KeyBuzz's enum.
	StatusNeedsReauth Status = "NEEDS_REAUTH"
	StatusError       Status = "ERROR" // a permanent failure other than revocation (no credentials)
	// StatusDisconnected is no stored status: the status route's answer
	// for a tenant with no connection (KeyBuzz's "DISCONNECTED").
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

// SellerAccount is a connection as an SP-API call made on its seller's
// behalf needs it: whose credentials (the tenant's refresh token, the
// application that authorized it), which region and marketplaces, which
// seller. PollState and PushTarget embed it; a Connection gives it with
// SellerAccount.
type SellerAccount struct {
	TenantID         string
	ConnectionID     string
	Region           string
	MarketplaceID    string // one id, or several separated by commas
	SellingPartnerID string
	// AppSource is the application that authorized the connection: its
	// refresh token works only with that app's credentials (empty: the
	// current AMAZON_SPAPI_APP_SOURCE app).
	AppSource AppSource
}

// SellerAccount is the connection's account for SP-API calls.
func (c Connection) SellerAccount() SellerAccount {
	return SellerAccount{TenantID: c.TenantID, ConnectionID: c.ID, Region: c.Region, MarketplaceID: c.MarketplaceID,
		SellingPartnerID: c.SellingPartnerID, AppSource: c.AppSource}
}

// InboundMessage is one thing a buyer did on Amazon, whatever channel
// brought it (polling, an ORDER_CHANGE notification, a relay mail),
// normalised for the helpdesk. The one ingestion path (postgres.Store's
// Ingest and IngestPage) stores it once as an ExternalMessage and a
// TicketMessage, on the ticket of its thread.
type InboundMessage struct {
	// ExternalID is the event's own id, the same whichever channel brings
	// it ("<orderId>:<orderItemId>:cancellation"; a mail's Message-ID): with
	// Type and the connection it stores the event once.
	ExternalID string
	// Type is the marketplace (ExternalMessage.type); "" is Type (AMAZON).
	Type string
	// ThreadKey makes one ticket per tenant and thread: the order id, or the
	// buyer's relay alias for a mail that names no order.
	ThreadKey string
	// OrderID is the Amazon order the event is about ("" when none); it
	// becomes the ticket's externalId (the thread key when empty).
	OrderID       string
	MarketplaceID string // where the order was placed ("" when unknown)
	BuyerName     string // "" when Amazon does not share it: the ticket says "Amazon Buyer"
	BuyerEmail    string // Amazon's anonymised relay address of the buyer
	// Language is the buyer's language, ISO 639-1 ("fr"): the marketplace's
	// for order events, the mail's for relay messages; "" when unknown.
	Language   string
	Subject    string
	Body       string
	ReceivedAt time.Time
	// Raw is the event as received (the order, the notification, the parsed
	// mail's headers); stored as "{}" when empty.
	Raw json.RawMessage
}

// DefaultBuyerName names a buyer Amazon does not name, as KeyBuzz does.
const DefaultBuyerName = "Amazon Buyer"

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

// NewID returns n random bytes in hex: a request id, a lease owner.
func NewID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
