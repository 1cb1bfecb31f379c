package marketplace

import (
	"errors"
	"time"
)

// Polling: the fan-out's jobs, a poller's view of its connection, one
// stored page, the end of a poll and the persisted rate budgets.

// PollJob is a connection the fan-out claimed: one SQS message.
type PollJob struct {
	TenantID     string
	ConnectionID string
}

// PollState is what a poller needs of a connection, read as it takes the lease.
type PollState struct {
	SellerAccount // whose token, which region and marketplaces a call uses
	Status        Status
	ConnectedAt   *time.Time
	// Pushed is true when the connection has an ORDER_CHANGE subscription:
	// push brings its events and polling is the fallback.
	Pushed bool
	// Cursor is the end of the last completed window (nil before the first
	// sync completes); PaginationToken the next page of an unfinished one.
	Cursor          *time.Time
	PaginationToken string
	// PageWindowStart and PageMarketplaceIDs are the filters of the request
	// that produced PaginationToken (lastUpdatedAfter, marketplaceIds), which
	// Amazon wants again with the token. Both are empty when no token is
	// stored, and when it was stored before they were (migration 0005).
	PageWindowStart    *time.Time
	PageMarketplaceIDs []string
	// Leased is true when this poller holds the connection. It is false when
	// another poller does, or when the connection is not CONNECTED.
	Leased bool
}

// PollOutcome ends a poll.
type PollOutcome struct {
	ConnectionID string
	LeaseOwner   string
	// NextPollAt is when the connection is next due; zero keeps it and keeps
	// the fan-out claim (the SQS message will be retried instead).
	NextPollAt time.Time
	// Error is recorded as lastError; "" records a success.
	Error string
	// Status, when set, replaces CONNECTED (NEEDS_REAUTH, ERROR): the
	// connection is not polled again until the seller reconnects.
	Status Status
}

// ErrLeaseLost means another poller took the connection's lease.
var ErrLeaseLost = errors.New("poll lease lost to another poller")

// RatePlan is a token bucket: Rate tokens per second, at most Burst.
type RatePlan struct {
	Rate  float64
	Burst int
}

// Grant is the answer of TakeToken.
type Grant struct {
	OK bool
	// RetryAt is when a token will be available (OK false).
	RetryAt time.Time
	// Plan is the bucket's current plan, as learned from Amazon's headers.
	Plan RatePlan
	// Throttled is set when the last call of this operation got a 429
	// that no success has cleared since.
	Throttled bool
}

// InboundPage is one page of a poll: its messages and where the sync stands
// once they are stored.
type InboundPage struct {
	ConnectionID string
	TenantID     string
	LeaseOwner   string
	// LeaseFor extends the lease from now (a heartbeat per page); 0 keeps it.
	LeaseFor time.Duration
	Messages []InboundMessage
	// NextToken is the pagination token of the next page; "" when this page
	// ends the window.
	NextToken string
	// WindowStart and MarketplaceIDs are the filters of the request that
	// produced NextToken (lastUpdatedAfter, marketplaceIds): stored with
	// it, since the next page must be asked with the same values. Ignored
	// (cleared) when NextToken is "".
	WindowStart    time.Time
	MarketplaceIDs []string
	// Cursor, set on the window's last page, becomes the sync cursor (the
	// answer's lastUpdatedBefore).
	Cursor *time.Time
}

// PageResult counts what a page created.
type PageResult struct {
	MessagesCreated int // new ExternalMessage rows (= new TicketMessage rows)
	TicketsCreated  int
	// ExternalMessageIDs and TicketIDs are the KeyBuzz rows the batch
	// created (none for what was already stored).
	ExternalMessageIDs []string
	TicketIDs          []string
}

// ClaimCursor is where the previous chunk of a fan-out ended, so that the
// next chunk starts there instead of stepping over the rows already claimed
// (keyset order "nextPollAt", "id"). The zero value starts at the beginning.
type ClaimCursor struct {
	NextPollAt time.Time
	ID         string
}
