package poll

import (
	"context"
	"errors"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/mocksource"
)

// Source reads one page of a connection's buyer events.
type Source interface {
	Fetch(ctx context.Context, acct marketplace.SellerAccount, req PageRequest) (Page, error)
}

// PageRequest asks for the first page of the window starting at After, or
// for the page Token points at. Amazon wants a next page asked with the same
// filters as the request that produced its token, so a next page's request
// carries the window's After and MarketplaceIDs again, as Page reported them.
type PageRequest struct {
	After time.Time
	Token string
	// MarketplaceIDs are the marketplaces of the window; nil on a window's
	// first page: the Source takes the connection's.
	MarketplaceIDs []string
}

// Page is one page of events.
type Page struct {
	Messages []marketplace.InboundMessage
	// NextToken points at the next page; "" ends the window.
	NextToken string
	// WindowEnd is the window's end (Amazon's lastUpdatedBefore): the next
	// cursor once the last page is stored.
	WindowEnd time.Time
	// Orders counts the orders read (for logs), events or not.
	Orders int
	// MarketplaceIDs are the marketplaces the page was asked for: the next
	// page must be asked for them again.
	MarketplaceIDs []string
}

// ErrStalePageToken means Amazon refused a stored pagination token (they
// live 24 hours): the window restarts from the cursor.
var ErrStalePageToken = errors.New("pagination token refused")

// MockSource serves the seed's three mock messages (AMAZON_USE_MOCK=true).
type MockSource struct{ Now func() time.Time }

// Fetch implements Source: one page, always the same three messages.
func (m MockSource) Fetch(_ context.Context, acct marketplace.SellerAccount, req PageRequest) (Page, error) {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	msgs := mocksource.Messages(firstMarketplace(acct.MarketplaceID))
	return Page{Messages: msgs, WindowEnd: now().UTC(), Orders: len(msgs), MarketplaceIDs: splitIDs(acct.MarketplaceID)}, nil
}
