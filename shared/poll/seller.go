package poll

import (
	"context"
	"errors"
	"fmt"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// Call runs one SP-API call of the connection with the seller's own token
// (the cached source polling uses) within the connection's persisted budget
// for operation: an empty budget is a *NoBudgetError, a 429 empties it and
// is a *ThrottledError; a refused refresh of a cached token is retried once
// with Vault's current secret. f gets the connection's endpoint and tokens
// and returns Amazon's x-amzn-RateLimit-Limit (0 when unknown). The push
// intake reads orders and subscribes connections through it.
func (a *AmazonSource) Call(ctx context.Context, t Target, operation string, plan marketplace.RatePlan, f func(endpoint string, tokens spapi.Tokens) (float64, error)) error {
	app, err := a.secrets.AppFor(ctx, t.AppSource)
	if err != nil {
		return fmt.Errorf("app credentials: %w", err)
	}
	tc, err := a.secrets.Tenant(ctx, t.TenantID)
	if err != nil {
		return fmt.Errorf("tenant credentials: %w", err)
	}
	endpoint, err := spapi.Endpoint(a.endpoint, firstNonEmpty(tc.Region, t.Region, app.Region))
	if err != nil {
		return err
	}
	tokens := a.tokens.get(t.TenantID, app, tc)
	if _, err := tokens.Token(); err != nil {
		if tokens, err = a.retryReauth(ctx, t.TenantID, app, tc, err); err != nil {
			return fmt.Errorf("access token: %w", err)
		}
	}
	g, err := a.budget.TakeToken(ctx, t.ConnectionID, operation, plan)
	if err != nil {
		return err
	}
	if !g.OK {
		return &NoBudgetError{RetryAt: g.RetryAt}
	}
	rate, err := f(endpoint, tokens)
	if IsReauth(err) {
		var rerr error
		if tokens, rerr = a.retryReauth(ctx, t.TenantID, app, tc, err); rerr == nil {
			rate, err = f(endpoint, tokens)
		}
	}
	if errors.Is(err, spapi.ErrThrottled) {
		until, rerr := a.budget.RecordThrottle(context.WithoutCancel(ctx), t.ConnectionID, operation)
		if rerr != nil {
			return errors.Join(err, rerr)
		}
		return &ThrottledError{RetryAt: until, Err: err}
	}
	if err != nil {
		return err
	}
	if g.Throttled || (rate > 0 && rate != g.Plan.Rate) {
		return a.budget.RecordSuccess(ctx, t.ConnectionID, operation, rate)
	}
	return nil
}
