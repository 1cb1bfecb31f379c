package poll

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// Budget is the persisted SP-API rate budget (postgres.Store).
type Budget interface {
	TakeToken(ctx context.Context, connectionID, operation string, plan marketplace.RatePlan) (marketplace.Grant, error)
	RecordThrottle(ctx context.Context, connectionID, operation string) (time.Time, error)
	RecordSuccess(ctx context.Context, connectionID, operation string, rate float64) error
}

// AmazonSource reads buyer events from SP-API Orders v2026-01-01
// searchOrders, and single orders with getOrder, each within the
// connection's persisted rate budget of its operation.
type AmazonSource struct {
	secrets  SecretStore
	tokens   *tokenSources
	now      func() time.Time
	api      *spapi.Client
	budget   Budget
	endpoint string // AMAZON_SPAPI_ENDPOINT; "" = by region
	plan     marketplace.RatePlan
	// orderPlan is getOrder's usage plan, a budget of its own.
	orderPlan marketplace.RatePlan
	pageSize  int
}

// AmazonConfig tunes an AmazonSource; zero fields take the defaults.
type AmazonConfig struct {
	EarlyExpiry time.Duration        // refresh access tokens this early (lwa.DefaultEarlyExpiry, 300 s)
	Plan        marketplace.RatePlan // searchOrders (spapi.SearchOrdersRate, spapi.SearchOrdersBurst)
	OrderPlan   marketplace.RatePlan // getOrder (spapi.GetOrderRate, spapi.GetOrderBurst)
	PageSize    int                  // maxResultsPerPage (100)
}

// WithEndpoint sends an AmazonSource's SP-API calls to override
// (AMAZON_SPAPI_ENDPOINT; default: the connection's region's endpoint).
func WithEndpoint(override string) Option { return func(o *options) { o.endpoint = override } }

// WithAmazonConfig tunes an AmazonSource (default: AmazonConfig's
// defaults).
func WithAmazonConfig(c AmazonConfig) Option { return func(o *options) { o.amazon = c } }

// NewAmazonSource builds the real source on a credential store (in a
// Lambda, a credcache.Cache around Vault), spending budget (options:
// WithEndpoint, WithAmazonConfig, WithClock, WithLogger).
func NewAmazonSource(secrets SecretStore, lwaClient *lwa.Client, api *spapi.Client, budget Budget, opts ...Option) *AmazonSource {
	o := apply(opts)
	cfg := o.amazon
	if cfg.Plan.Rate <= 0 {
		cfg.Plan = marketplace.RatePlan{Rate: spapi.SearchOrdersRate, Burst: spapi.SearchOrdersBurst}
	}
	if cfg.OrderPlan.Rate <= 0 {
		cfg.OrderPlan = marketplace.RatePlan{Rate: spapi.GetOrderRate, Burst: spapi.GetOrderBurst}
	}
	if cfg.PageSize <= 0 || cfg.PageSize > 100 {
		cfg.PageSize = 100
	}
	return &AmazonSource{
		secrets:   secrets,
		tokens:    newTokenSources(secrets, lwaClient, cfg.EarlyExpiry, o.log),
		now:       o.now,
		api:       api,
		budget:    budget,
		endpoint:  o.endpoint,
		plan:      cfg.Plan,
		orderPlan: cfg.OrderPlan,
		pageSize:  cfg.PageSize,
	}
}

// Fetch implements Source: credentials (cached), one rate token, one
// searchOrders call, the buyer events of its orders.
func (a *AmazonSource) Fetch(ctx context.Context, acct marketplace.SellerAccount, req PageRequest) (Page, error) {
	c, err := a.open(ctx, acct)
	if err != nil {
		return Page{}, err
	}
	app, tc, endpoint, tokens := c.app, c.tenant, c.endpoint, c.tokens
	marketplaces := tc.Marketplaces()
	if len(marketplaces) == 0 {
		marketplaces = splitIDs(acct.MarketplaceID)
	}
	if req.MarketplaceIDs != nil {
		marketplaces = req.MarketplaceIDs // the window's, kept with its token
	}
	if len(marketplaces) == 0 {
		return Page{}, errors.New("connection has no marketplace id")
	}

	g, err := a.budget.TakeToken(ctx, acct.ConnectionID, spapi.OpSearchOrders, a.plan)
	if err != nil {
		return Page{}, err
	}
	if !g.OK {
		return Page{}, &NoBudgetError{RetryAt: g.RetryAt}
	}
	q := spapi.SearchOrdersQuery{LastUpdatedAfter: req.After, PaginationToken: req.Token, MarketplaceIDs: marketplaces, MaxResults: a.pageSize}
	res, err := a.api.SearchOrders(ctx, endpoint, tokens, q)
	if IsReauth(err) { // a cached token expired and its refresh was refused
		var rerr error
		if tokens, rerr = a.retryReauth(ctx, acct.TenantID, app, tc, err); rerr == nil {
			res, err = a.api.SearchOrders(ctx, endpoint, tokens, q)
		}
	}
	switch {
	case errors.Is(err, spapi.ErrThrottled):
		until, rerr := a.budget.RecordThrottle(context.WithoutCancel(ctx), acct.ConnectionID, spapi.OpSearchOrders)
		if rerr != nil {
			return Page{}, errors.Join(err, rerr)
		}
		return Page{}, &ThrottledError{RetryAt: until, Err: err}
	case err != nil && req.Token != "" && errors.Is(err, spapi.ErrInvalidInput):
		return Page{}, fmt.Errorf("%w: %v", ErrStalePageToken, err)
	case err != nil:
		return Page{}, err
	}
	if g.Throttled || (res.RateLimit > 0 && res.RateLimit != g.Plan.Rate) {
		if err := a.budget.RecordSuccess(ctx, acct.ConnectionID, spapi.OpSearchOrders, res.RateLimit); err != nil {
			return Page{}, err
		}
	}
	end := res.LastUpdatedBefore
	if end.IsZero() { // Amazon always sends it for lastUpdatedAfter searches; be safe
		end = a.now().Add(-2 * time.Minute)
	}
	return Page{Messages: BuyerEvents(res.Orders), NextToken: res.NextToken, WindowEnd: end, Orders: len(res.Orders), MarketplaceIDs: marketplaces}, nil
}

// conn is what an SP-API call of a connection needs.
type conn struct {
	app      marketplace.AppCredentials
	tenant   marketplace.TenantCredentials
	endpoint string
	tokens   *tenantSource
}

// open reads the connection's credentials (cached) and gets an access token
// first (cached in a warm container), so that a refused refresh token costs
// no rate token.
func (a *AmazonSource) open(ctx context.Context, acct marketplace.SellerAccount) (conn, error) {
	app, err := a.secrets.AppFor(ctx, acct.AppSource)
	if err != nil {
		return conn{}, fmt.Errorf("app credentials: %w", err)
	}
	tc, err := a.secrets.Tenant(ctx, acct.TenantID)
	if err != nil {
		return conn{}, fmt.Errorf("tenant credentials: %w", err)
	}
	region := cmp.Or(tc.Region, acct.Region, app.Region)
	endpoint, err := spapi.Endpoint(a.endpoint, region)
	if err != nil {
		return conn{}, err
	}
	tokens := a.tokens.get(acct.TenantID, app, tc)
	if _, err := tokens.Token(); err != nil {
		if tokens, err = a.retryReauth(ctx, acct.TenantID, app, tc, err); err != nil {
			return conn{}, fmt.Errorf("access token: %w", err)
		}
	}
	return conn{app: app, tenant: tc, endpoint: endpoint, tokens: tokens}, nil
}

// GetOrder reads one order of the connection with getOrder (the
// spapi.IncludedData datasets, as searchOrders), within the connection's
// own persisted getOrder budget (AmazonConfig.OrderPlan; 0.5/s, burst 30):
// how an intake that knows only an order id (a notification, a relayed
// mail) gives its ticket the order's context. An empty budget is a
// *NoBudgetError, a 429 a *ThrottledError (the budget is emptied); an
// unknown order matches spapi.ErrNotFound; a refused refresh token,
// IsReauth.
func (a *AmazonSource) GetOrder(ctx context.Context, acct marketplace.SellerAccount, orderID string) (spapi.Order, error) {
	c, err := a.open(ctx, acct)
	if err != nil {
		return spapi.Order{}, err
	}
	g, err := a.budget.TakeToken(ctx, acct.ConnectionID, spapi.OpGetOrder, a.orderPlan)
	if err != nil {
		return spapi.Order{}, err
	}
	if !g.OK {
		return spapi.Order{}, &NoBudgetError{RetryAt: g.RetryAt}
	}
	o, err := a.api.GetOrder(ctx, c.endpoint, c.tokens, orderID, nil)
	if IsReauth(err) { // a cached token expired and its refresh was refused
		if tokens, rerr := a.retryReauth(ctx, acct.TenantID, c.app, c.tenant, err); rerr == nil {
			o, err = a.api.GetOrder(ctx, c.endpoint, tokens, orderID, nil)
		}
	}
	if errors.Is(err, spapi.ErrThrottled) {
		until, rerr := a.budget.RecordThrottle(context.WithoutCancel(ctx), acct.ConnectionID, spapi.OpGetOrder)
		if rerr != nil {
			return spapi.Order{}, errors.Join(err, rerr)
		}
		return spapi.Order{}, &ThrottledError{RetryAt: until, Err: err}
	}
	if err != nil {
		return spapi.Order{}, err
	}
	if g.Throttled {
		if err := a.budget.RecordSuccess(ctx, acct.ConnectionID, spapi.OpGetOrder, 0); err != nil {
			return spapi.Order{}, err
		}
	}
	return o, nil
}

// retryReauth handles LWA's invalid_grant: the cached secret may be stale
// (the seller reconnected since it was read), so Vault is read again; with
// a different refresh token it returns that token's source, else err.
func (a *AmazonSource) retryReauth(ctx context.Context, tenantID string, app marketplace.AppCredentials, used marketplace.TenantCredentials, err error) (*tenantSource, error) {
	if lwa.IsInvalidClient(err) {
		a.secrets.ForgetApp() // the next poll reads the rotated secret
	}
	if !IsReauth(err) {
		return nil, err
	}
	a.secrets.ForgetTenant(tenantID)
	fresh, ferr := a.secrets.Tenant(ctx, tenantID)
	if ferr != nil || fresh.RefreshToken == used.RefreshToken {
		return nil, err
	}
	tokens := a.tokens.get(tenantID, app, fresh)
	if _, terr := tokens.Token(); terr != nil {
		return nil, terr
	}
	return tokens, nil
}

// IsReauth reports whether err means the seller must reconnect: LWA
// answered invalid_grant on refresh.
func IsReauth(err error) bool { return lwa.IsInvalidGrant(err) }

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
