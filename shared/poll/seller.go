package poll

import (
	"context"
	"errors"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// Call runs one SP-API call of the connection with the seller's own token
// (the cached source polling uses) within the connection's persisted budget
// for operation: an empty budget is a *NoBudgetError, a 429 empties it and
// is a *ThrottledError; a refused refresh of a cached token is retried once
// with Vault's current secret. f gets the connection's endpoint and tokens
// and returns Amazon's x-amzn-RateLimit-Limit (0 when unknown). The push
// flow subscribes connections through it (orders: GetOrder).
func (a *AmazonSource) Call(ctx context.Context, acct marketplace.SellerAccount, operation string, plan marketplace.RatePlan, f func(endpoint string, tokens spapi.Tokens) (float64, error)) error {
	c, err := a.open(ctx, acct)
	if err != nil {
		return err
	}
	endpoint, tokens, app, tc := c.endpoint, c.tokens, c.app, c.tenant
	g, err := a.budget.TakeToken(ctx, acct.ConnectionID, operation, plan)
	if err != nil {
		return err
	}
	if !g.OK {
		return &NoBudgetError{RetryAt: g.RetryAt}
	}
	rate, err := f(endpoint, tokens)
	if IsReauth(err) {
		var rerr error
		if tokens, rerr = a.retryReauth(ctx, acct.TenantID, app, tc, err); rerr == nil {
			rate, err = f(endpoint, tokens)
		}
	}
	if errors.Is(err, spapi.ErrThrottled) {
		until, rerr := a.budget.RecordThrottle(context.WithoutCancel(ctx), acct.ConnectionID, operation)
		if rerr != nil {
			return errors.Join(err, rerr)
		}
		return &ThrottledError{RetryAt: until, Err: err}
	}
	if err != nil {
		return err
	}
	if g.Throttled || (rate > 0 && rate != g.Plan.Rate) {
		return a.budget.RecordSuccess(ctx, acct.ConnectionID, operation, rate)
	}
	return nil
}
