package marketplace

import "errors"

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

	// The support errors of the hardened Connect flow.

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

	// The support errors of replies to buyers (shared/reply, shared/replies).

	// ErrTicketClosed: KeyBuzz does not answer a CLOSED or RESOLVED ticket.
	ErrTicketClosed = &Error{Code: "ticket_closed", Message: "Cannot reply to a closed or resolved ticket"}
	// ErrNotAmazonTicket: the ticket is not on the AMAZON channel.
	ErrNotAmazonTicket = &Error{Code: "not_amazon_ticket", Message: "Ticket is not an Amazon ticket"}
	// ErrOAuthNotConnected: the tenant's Amazon connection is not CONNECTED
	// (KeyBuzz's code for it).
	ErrOAuthNotConnected = &Error{Code: "oauth_not_connected", Message: "Amazon connection not found or not connected"}
	// ErrNoBuyerAddress: no relay alias of the buyer is known (no relay mail
	// on the ticket, no buyerEmail on the order).
	ErrNoBuyerAddress = &Error{Code: "no_buyer_address", Message: "No Amazon relay address is known for this buyer yet: answer this ticket in Seller Central (Messages)"}
	// ErrNoSenderAddress: the tenant has no inbound address in the country
	// of the buyer's marketplace, the only From Amazon accepts there.
	ErrNoSenderAddress = &Error{Code: "no_sender_address", Message: "The tenant has no inbound address for the buyer's marketplace: open the Amazon status page to create it, then approve it in Seller Central > Settings > Messaging Permissions"}
	// ErrIdempotencyReused: an Idempotency-Key already used for another request.
	ErrIdempotencyReused = &Error{Code: "idempotency_key_reused", Message: "This Idempotency-Key was used for another reply"}
)

// AsError returns the support error err wraps, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
