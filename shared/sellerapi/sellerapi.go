// Package sellerapi is the seller gateway: the one place an SP-API call is
// made on a seller's behalf. Every such call follows one protocol: the
// seller's credentials (cached), an access token (cached per seller in one
// lwa.Cache, a rotated refresh token written back to Vault), a token of the
// connection's persisted rate budget for the operation, the call; an
// expired access token is refreshed once (spapi), a refused refresh token
// is retried once with Vault's current secret, a 429 records the back-off
// and empties the budget, and invalid_grant ends in re-auth (IsReauth).
// The flows (poll, push, inboundmail, connect) declare what they use of it.
package sellerapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// Secrets is what the gateway needs of the credential store: reads (cached
// by credcache.Cache in a Lambda), the write-back of a rotated refresh
// token, and the explicit invalidations.
type Secrets interface {
	AppFor(ctx context.Context, source marketplace.AppSource) (marketplace.AppCredentials, error)
	Tenant(ctx context.Context, tenantID string) (marketplace.TenantCredentials, error)
	UpdateRefreshToken(ctx context.Context, tenantID string, tc marketplace.TenantCredentials, token secret.Value) (int, error)
	ForgetApp()
	ForgetTenant(tenantID string)
}

// Budget is the persisted SP-API rate budget (postgres.Store).
type Budget interface {
	TakeToken(ctx context.Context, connectionID, operation string, plan marketplace.RatePlan) (marketplace.Grant, error)
	RecordThrottle(ctx context.Context, connectionID, operation string) (time.Time, error)
	RecordSuccess(ctx context.Context, connectionID, operation string, rate float64) error
}

// Orders reads one order of a seller within the connection's getOrder
// budget (Gateway.GetOrder): how an intake that knows only an order id (a
// notification, a relayed mail) gets the order.
type Orders interface {
	GetOrder(ctx context.Context, acct marketplace.SellerAccount, orderID string) (spapi.Order, error)
}

// CallFunc makes one SP-API call on endpoint with tokens and returns
// Amazon's x-amzn-RateLimit-Limit (0 when unknown).
type CallFunc func(endpoint string, tokens spapi.Tokens) (rate float64, err error)

// Gateway makes SP-API calls on sellers' behalf.
type Gateway struct {
	secrets   Secrets
	lwa       *lwa.Client
	api       *spapi.Client
	budget    Budget
	tokens    *lwa.Cache
	endpoint  string // AMAZON_SPAPI_ENDPOINT; "" = by region
	orderPlan marketplace.RatePlan
	log       *slog.Logger
}

// Option configures a Gateway.
type Option func(*Gateway)

// WithEndpoint sends the calls to override (AMAZON_SPAPI_ENDPOINT; default:
// the seller's region's endpoint).
func WithEndpoint(override string) Option { return func(g *Gateway) { g.endpoint = override } }

// WithEarlyExpiry refreshes cached access tokens this long before they
// expire (default lwa.DefaultEarlyExpiry; <= 0 keeps it).
func WithEarlyExpiry(d time.Duration) Option {
	return func(g *Gateway) { g.tokens = lwa.NewCache(lwa.WithEarlyExpiry(d)) }
}

// WithLogger sets the logger (default slog.Default(); nil keeps it).
func WithLogger(l *slog.Logger) Option {
	return func(g *Gateway) {
		if l != nil {
			g.log = l
		}
	}
}

// New returns the gateway: credentials from secrets (in a Lambda, a
// credcache.Cache around Vault), access tokens from lwaClient, calls with
// api, rate tokens from budget (options: WithEndpoint, WithEarlyExpiry,
// WithLogger).
func New(secrets Secrets, lwaClient *lwa.Client, api *spapi.Client, budget Budget, opts ...Option) *Gateway {
	g := &Gateway{secrets: secrets, lwa: lwaClient, api: api, budget: budget, tokens: lwa.NewCache(), log: slog.Default(),
		orderPlan: marketplace.RatePlan{Rate: spapi.GetOrderRate, Burst: spapi.GetOrderBurst}}
	for _, o := range opts {
		o(g)
	}
	return g
}

// NoBudgetError means the connection's rate budget for the operation has no
// token: nothing was sent, and a token is there again at RetryAt.
type NoBudgetError struct{ RetryAt time.Time }

func (e *NoBudgetError) Error() string {
	return fmt.Sprintf("rate budget empty until %s", e.RetryAt.UTC().Format(time.RFC3339))
}

// ThrottledError is a 429 from Amazon: the budget was emptied until RetryAt.
type ThrottledError struct {
	RetryAt time.Time
	Err     error
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("throttled by Amazon until %s: %v", e.RetryAt.UTC().Format(time.RFC3339), e.Err)
}
func (e *ThrottledError) Unwrap() error { return e.Err }

// ErrorText renders err for what the connector records (lastError,
// pushError) and logs, in at most limit bytes: a URL (which carries a query
// string) is reduced to its host, an LWA error to its code and
// description. Tokens never appear in errors: LWA and SP-API errors carry
// codes and Amazon's messages only.
func ErrorText(err error, limit int) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		host := ""
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		return fmt.Sprintf("%s %s: %v", ue.Op, host, ue.Err)
	}
	var le *lwa.Error
	if errors.As(err, &le) {
		return le.Error()
	}
	s := err.Error()
	if len(s) > limit {
		s = s[:limit]
	}
	return s
}

// IsReauth reports whether err means the seller must reconnect: LWA
// answered invalid_grant on refresh.
func IsReauth(err error) bool { return lwa.IsInvalidGrant(err) }

// Session is a seller opened for calls: its credentials read, its access
// token at hand.
type Session struct {
	g        *Gateway
	acct     marketplace.SellerAccount
	app      marketplace.AppCredentials
	tenant   marketplace.TenantCredentials
	endpoint string
	tokens   *lwa.CachedSource
}

// Open reads the seller's credentials (cached) and gets an access token
// first (cached in a warm container), so that a refused refresh token costs
// no rate token.
func (g *Gateway) Open(ctx context.Context, acct marketplace.SellerAccount) (*Session, error) {
	app, err := g.secrets.AppFor(ctx, acct.AppSource)
	if err != nil {
		return nil, fmt.Errorf("app credentials: %w", err)
	}
	tc, err := g.secrets.Tenant(ctx, acct.TenantID)
	if err != nil {
		return nil, fmt.Errorf("tenant credentials: %w", err)
	}
	endpoint, err := spapi.Endpoint(g.endpoint, cmp.Or(tc.Region, acct.Region, app.Region))
	if err != nil {
		return nil, err
	}
	s := &Session{g: g, acct: acct, app: app, tenant: tc, endpoint: endpoint, tokens: g.sellerTokens(acct.TenantID, app, tc)}
	if _, err := s.tokens.Token(); err != nil {
		if err = s.retryReauth(ctx, err); err != nil {
			return nil, fmt.Errorf("access token: %w", err)
		}
	}
	return s, nil
}

// Marketplaces are the marketplaces the seller's secret lists (nil when it
// lists none).
func (s *Session) Marketplaces() []string { return s.tenant.Marketplaces() }

// Call runs f within the connection's budget for operation: an empty
// budget is a *NoBudgetError (f is not called), a 429 empties the budget
// and is a *ThrottledError; a refused refresh of a cached token is retried
// once with Vault's current secret; a rate Amazon announces that differs
// from the plan's is recorded. Other errors are f's, unwrapped.
func (s *Session) Call(ctx context.Context, operation string, plan marketplace.RatePlan, f CallFunc) error {
	g := s.g
	grant, err := g.budget.TakeToken(ctx, s.acct.ConnectionID, operation, plan)
	if err != nil {
		return err
	}
	if !grant.OK {
		return &NoBudgetError{RetryAt: grant.RetryAt}
	}
	rate, err := f(s.endpoint, s.tokens)
	if IsReauth(err) { // a cached token expired and its refresh was refused
		if rerr := s.retryReauth(ctx, err); rerr == nil {
			rate, err = f(s.endpoint, s.tokens)
		}
	}
	if errors.Is(err, spapi.ErrThrottled) {
		until, rerr := g.budget.RecordThrottle(context.WithoutCancel(ctx), s.acct.ConnectionID, operation)
		if rerr != nil {
			return errors.Join(err, rerr)
		}
		return &ThrottledError{RetryAt: until, Err: err}
	}
	if err != nil {
		return err
	}
	if grant.Throttled || (rate > 0 && rate != grant.Plan.Rate) {
		return g.budget.RecordSuccess(ctx, s.acct.ConnectionID, operation, rate)
	}
	return nil
}

// Call opens the seller and runs f with the seller's own token (Session.Call).
func (g *Gateway) Call(ctx context.Context, acct marketplace.SellerAccount, operation string, plan marketplace.RatePlan, f CallFunc) error {
	s, err := g.Open(ctx, acct)
	if err != nil {
		return err
	}
	return s.Call(ctx, operation, plan, f)
}

// GetOrder reads one order of the seller with getOrder (the
// spapi.IncludedData datasets, as searchOrders), within the connection's own
// persisted getOrder budget (0.5/s, burst 30). An unknown order matches
// spapi.ErrNotFound; a refused refresh token, IsReauth.
func (g *Gateway) GetOrder(ctx context.Context, acct marketplace.SellerAccount, orderID string) (spapi.Order, error) {
	var o spapi.Order
	err := g.Call(ctx, acct, spapi.OpGetOrder, g.orderPlan, func(endpoint string, tokens spapi.Tokens) (float64, error) {
		var err error
		o, err = g.api.GetOrder(ctx, endpoint, tokens, orderID, nil)
		return 0, err
	})
	if err != nil {
		return spapi.Order{}, err
	}
	return o, nil
}

// CallGrantless runs f with the seller's application's grantless token for
// scope (a call Amazon allows without the seller's token, such as
// deleteSubscriptionById, which works after the seller revoked the app),
// within the connection's budget for operation: an empty budget is a
// *NoBudgetError, a 429 a *ThrottledError.
func (g *Gateway) CallGrantless(ctx context.Context, acct marketplace.SellerAccount, scope, operation string, plan marketplace.RatePlan, f CallFunc) error {
	app, err := g.secrets.AppFor(ctx, acct.AppSource)
	if err != nil {
		return fmt.Errorf("app credentials: %w", err)
	}
	region := cmp.Or(acct.Region, app.Region)
	endpoint, tokens, err := g.AppTokens(app, region, scope)
	if err != nil {
		return err
	}
	grant, err := g.budget.TakeToken(ctx, acct.ConnectionID, operation, plan)
	if err != nil {
		return err
	}
	if !grant.OK {
		return &NoBudgetError{RetryAt: grant.RetryAt}
	}
	_, err = f(endpoint, tokens)
	if errors.Is(err, spapi.ErrThrottled) {
		until, rerr := g.budget.RecordThrottle(context.WithoutCancel(ctx), acct.ConnectionID, operation)
		if rerr != nil {
			return errors.Join(err, rerr)
		}
		return &ThrottledError{RetryAt: until, Err: err}
	}
	return err
}

// AppTokens returns the endpoint of region ("" = the app's) and app's cached
// grantless token source for scope (one per application, secret, region
// and scope), for calls made on the application's own behalf
// (createDestination).
func (g *Gateway) AppTokens(app marketplace.AppCredentials, region, scope string) (string, spapi.Tokens, error) {
	region = cmp.Or(region, app.Region)
	endpoint, err := spapi.Endpoint(g.endpoint, region)
	if err != nil {
		return "", nil, err
	}
	key := "app\x00" + app.ClientID + "\x00" + region + "\x00" + scope
	src := g.tokens.Source(key, app.ClientSecret.Reveal(), nil, func() oauth2.TokenSource {
		return g.lwa.GrantlessSource(context.Background(), lwa.App{ClientID: app.ClientID, ClientSecret: app.ClientSecret}, scope)
	})
	return endpoint, src, nil
}

// CallWithToken runs f with an access token the caller holds (the one the
// consent's code exchange just gave, before the secret is stored) within
// the connection's budget for operation: an empty budget is a
// *NoBudgetError, a 429 records the back-off and is a *ThrottledError.
// region is the seller's region code.
func (g *Gateway) CallWithToken(ctx context.Context, connectionID, region string, access secret.Value, operation string, plan marketplace.RatePlan, f CallFunc) error {
	endpoint, err := spapi.Endpoint(g.endpoint, region)
	if err != nil {
		return err
	}
	grant, err := g.budget.TakeToken(ctx, connectionID, operation, plan)
	if err != nil {
		return err
	}
	if !grant.OK {
		return &NoBudgetError{RetryAt: grant.RetryAt}
	}
	_, err = f(endpoint, spapi.StaticToken(access))
	if errors.Is(err, spapi.ErrThrottled) {
		until, rerr := g.budget.RecordThrottle(context.WithoutCancel(ctx), connectionID, operation)
		if rerr != nil {
			return errors.Join(err, rerr)
		}
		return &ThrottledError{RetryAt: until, Err: err}
	}
	return err
}

// MarketplaceParticipations lists the marketplaces of a seller whose code
// was just exchanged (Sellers API getMarketplaceParticipations, once per
// consent, with the exchange's access token; outside any budget).
func (g *Gateway) MarketplaceParticipations(ctx context.Context, region string, access secret.Value) ([]spapi.Participation, error) {
	endpoint, err := spapi.Endpoint(g.endpoint, region)
	if err != nil {
		return nil, err
	}
	return g.api.MarketplaceParticipations(ctx, endpoint, spapi.StaticToken(access))
}

// Account reads the account of a seller whose code was just exchanged
// (Sellers API getAccount, with the exchange's access token), within the
// connection's getAccount budget (spapi.AccountRate, spapi.AccountBurst).
func (g *Gateway) Account(ctx context.Context, connectionID, region string, access secret.Value) (spapi.Account, error) {
	var a spapi.Account
	err := g.CallWithToken(ctx, connectionID, region, access, spapi.OpGetAccount, marketplace.RatePlan{Rate: spapi.AccountRate, Burst: spapi.AccountBurst},
		func(endpoint string, tokens spapi.Tokens) (float64, error) {
			var err error
			a, err = g.api.Account(ctx, endpoint, tokens)
			return 0, err
		})
	return a, err
}

// sellerTokens returns the tenant's cached access-token source, built with
// context.Background() so that later refreshes outlive this invocation; a
// new app secret, or a refresh token the source neither started with nor
// rotated to (the seller reconnected), builds a new one.
func (g *Gateway) sellerTokens(tenantID string, app marketplace.AppCredentials, tc marketplace.TenantCredentials) *lwa.CachedSource {
	keep := func(base oauth2.TokenSource) bool {
		r, ok := base.(*lwa.RotatingSource)
		return ok && r.Holds(tc.RefreshToken)
	}
	return g.tokens.Source("seller\x00"+tenantID, app.ClientID+"\x00"+app.ClientSecret.Reveal(), keep, func() oauth2.TokenSource {
		persist := func(ctx context.Context, tok secret.Value) error { return g.persistRotated(ctx, tenantID, tok) }
		onErr := func(err error) {
			g.log.Warn("rotated refresh token not saved to Vault; retrying on next refresh", "tenant_id", tenantID, "err", err)
		}
		return g.lwa.NewRotatingSource(context.Background(), lwa.App{ClientID: app.ClientID, ClientSecret: app.ClientSecret}, tc.RefreshToken,
			lwa.WithPersist(persist), lwa.WithPersistError(onErr))
	})
}

// persistRotated writes a rotated refresh token back with check-and-set on
// the version read; on a conflict (a reconnect wrote a new secret
// meanwhile) the store drops its cached copy and Vault's secret wins.
func (g *Gateway) persistRotated(ctx context.Context, tenantID string, tok secret.Value) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tc, err := g.secrets.Tenant(ctx, tenantID)
	if err != nil {
		return err
	}
	if tc.RefreshToken == tok {
		return nil
	}
	if _, err := g.secrets.UpdateRefreshToken(ctx, tenantID, tc, tok); err != nil && !errors.Is(err, marketplace.ErrConflict) {
		return err
	}
	return nil
}

// retryReauth handles LWA's invalid_grant: the cached secret may be stale
// (the seller reconnected since it was read), so Vault is read again; with
// a different refresh token the session takes that token's source, else it
// returns err.
func (s *Session) retryReauth(ctx context.Context, err error) error {
	g := s.g
	if lwa.IsInvalidClient(err) {
		g.secrets.ForgetApp() // the next call reads the rotated secret
	}
	if !IsReauth(err) {
		return err
	}
	g.secrets.ForgetTenant(s.acct.TenantID)
	fresh, ferr := g.secrets.Tenant(ctx, s.acct.TenantID)
	if ferr != nil || fresh.RefreshToken == s.tenant.RefreshToken {
		return err
	}
	tokens := g.sellerTokens(s.acct.TenantID, s.app, fresh)
	if _, terr := tokens.Token(); terr != nil {
		return terr
	}
	s.tenant, s.tokens = fresh, tokens
	return nil
}
