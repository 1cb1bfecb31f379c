package poll

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// AmazonSource reads buyer events from SP-API Orders v2026-01-01
// searchOrders through the seller gateway, within the connection's
// persisted searchOrders budget.
type AmazonSource struct {
	seller   *sellerapi.Gateway
	api      *spapi.Client
	now      func() time.Time
	plan     marketplace.RatePlan
	pageSize int
}

// AmazonConfig tunes an AmazonSource; zero fields take the defaults.
type AmazonConfig struct {
	Plan     marketplace.RatePlan // searchOrders (spapi.SearchOrdersRate, spapi.SearchOrdersBurst)
	PageSize int                  // maxResultsPerPage (100)
}

// WithAmazonConfig tunes an AmazonSource (default: AmazonConfig's
// defaults).
func WithAmazonConfig(c AmazonConfig) SourceOption {
	return sourceOption(func(o *options) { o.amazon = c })
}

// NewAmazonSource builds the real source: searchOrders with api, on the
// seller's behalf through gw (options: WithAmazonConfig, WithClock).
func NewAmazonSource(gw *sellerapi.Gateway, api *spapi.Client, opts ...SourceOption) *AmazonSource {
	o := apply(opts, SourceOption.applySource)
	cfg := o.amazon
	if cfg.Plan.Rate <= 0 {
		cfg.Plan = marketplace.RatePlan{Rate: spapi.SearchOrdersRate, Burst: spapi.SearchOrdersBurst}
	}
	if cfg.PageSize <= 0 || cfg.PageSize > 100 {
		cfg.PageSize = 100
	}
	return &AmazonSource{seller: gw, api: api, now: o.now, plan: cfg.Plan, pageSize: cfg.PageSize}
}

// Fetch implements Source: the seller opened (credentials and access token,
// cached), one rate token, one searchOrders call, the buyer events of its
// orders.
func (a *AmazonSource) Fetch(ctx context.Context, acct marketplace.SellerAccount, req PageRequest) (Page, error) {
	sess, err := a.seller.Open(ctx, acct)
	if err != nil {
		return Page{}, err
	}
	marketplaces := sess.Marketplaces()
	if len(marketplaces) == 0 {
		marketplaces = splitIDs(acct.MarketplaceID)
	}
	if req.MarketplaceIDs != nil {
		marketplaces = req.MarketplaceIDs // the window's, kept with its token
	}
	if len(marketplaces) == 0 {
		return Page{}, errors.New("connection has no marketplace id")
	}
	q := spapi.SearchOrdersQuery{LastUpdatedAfter: req.After, PaginationToken: req.Token, MarketplaceIDs: marketplaces, MaxResults: a.pageSize}
	var res *spapi.SearchOrdersPage
	err = sess.Call(ctx, spapi.OpSearchOrders, a.plan, func(endpoint string, tokens spapi.Tokens) (float64, error) {
		var err error
		if res, err = a.api.SearchOrders(ctx, endpoint, tokens, q); err != nil {
			return 0, err
		}
		return res.RateLimit, nil
	})
	switch {
	case err != nil && req.Token != "" && errors.Is(err, spapi.ErrInvalidInput):
		return Page{}, fmt.Errorf("%w: %v", ErrStalePageToken, err)
	case err != nil:
		return Page{}, err
	}
	end := res.LastUpdatedBefore
	if end.IsZero() { // Amazon always sends it for lastUpdatedAfter searches; be safe
		end = a.now().Add(-2 * time.Minute)
	}
	return Page{Messages: spapi.BuyerEvents(res.Orders), NextToken: res.NextToken, WindowEnd: end, Orders: len(res.Orders), MarketplaceIDs: marketplaces}, nil
}

func splitIDs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func firstMarketplace(s string) string {
	if ids := splitIDs(s); len(ids) > 0 {
		return ids[0]
	}
	return ""
}
