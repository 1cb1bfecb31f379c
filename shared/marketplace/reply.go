package marketplace

// The support errors of replies to buyers (shared/reply, shared/replies).
var (
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
