// Package poll is the connector's polling: the fan-out that claims due
// connections and enqueues one SQS message each (Fanout), and the poller
// that syncs one connection per message (Poller): lease, credentials, rate
// budget, searchOrders page by page, one transaction per page.
//
// Follow one message: Fanout.Handle -> postgres.ClaimDue -> pollsender.Sender
// -> SQS -> sqsbatch.Handler -> Poller.Consume -> Poller.Poll -> postgres.AcquirePoll ->
// Source.Fetch (AmazonSource: sellerapi.Gateway, spapi searchOrders) ->
// postgres.IngestPage per page -> postgres.FinishPoll.
package poll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
)

// Store is the part of postgres.Store the poller uses.
type Store interface {
	AcquirePoll(ctx context.Context, tenantID, connectionID, owner string, leaseFor time.Duration) (marketplace.PollState, error)
	IngestPage(ctx context.Context, p marketplace.InboundPage) (marketplace.PageResult, error)
	FinishPoll(ctx context.Context, o marketplace.PollOutcome) error
}

// Config tunes a Poller; zero fields take the defaults.
type Config struct {
	// Interval is the poll period of a connection, which is also the
	// schedule's (MARKETPLACE_POLL_INTERVAL_SECONDS; 60 s). A complete sync
	// is due again one period after the fan-out claimed it (the message's
	// enqueuedAt), not after it finished: see Jitter.
	Interval time.Duration
	// Jitter is how much earlier than a full period after its claim a
	// connection is due again, so that the next tick of the schedule claims
	// it even when that tick comes early or this one came late (the
	// schedule's jitter). A period is claimed once per tick, so this never
	// polls more than once per tick. Default Interval/2; at most half of
	// Interval.
	Jitter time.Duration
	// FallbackInterval replaces Interval for a connection that push serves
	// (an ORDER_CHANGE subscription): POLL_FALLBACK_INTERVAL_SECONDS; 30 min.
	FallbackInterval time.Duration
	Lookback         time.Duration // a new connection starts this long before it connected (POLL_LOOKBACK_DAYS; 7 d)
	Overlap          time.Duration // each window starts this long before the cursor (2 min)
	LeaseFor         time.Duration // lease per page, longer than a page takes (5 min)
	MaxPages         int           // pages per poll before yielding (50)
	// DeadlineMargin: no new page is started when the invocation's deadline
	// is closer than this (15 s).
	DeadlineMargin time.Duration
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 60 * time.Second
	}
	if c.FallbackInterval <= 0 {
		c.FallbackInterval = 30 * time.Minute
	}
	if c.Jitter <= 0 || c.Jitter > c.Interval/2 {
		c.Jitter = c.Interval / 2
	}
	if c.Lookback <= 0 {
		c.Lookback = 7 * 24 * time.Hour
	}
	if c.Overlap <= 0 {
		c.Overlap = 2 * time.Minute
	}
	if c.LeaseFor <= 0 {
		c.LeaseFor = 5 * time.Minute
	}
	if c.MaxPages <= 0 {
		c.MaxPages = 50
	}
	if c.DeadlineMargin <= 0 {
		c.DeadlineMargin = 15 * time.Second
	}
	return c
}

// Subscriber subscribes a connection to push (push.Subscriber). Subscribe
// reports whether the connection has a subscription afterwards; it spaces
// its own retries, so calling it on every poll is cheap.
type Subscriber interface {
	Subscribe(ctx context.Context, tenantID, connectionID string) (bool, error)
}

// Poller syncs connections, one SQS message each.
type Poller struct {
	store      Store
	source     Source
	cfg        Config
	now        func() time.Time
	log        *slog.Logger
	metrics    *metrics.Writer
	subscriber Subscriber
}

// WithConfig tunes a Poller (default: Config's defaults).
func WithConfig(c Config) PollerOption { return pollerOption(func(o *options) { o.poller = c }) }

// WithSubscriber makes a Poller subscribe, after a successful poll, a
// connection that has no push subscription yet (Connect's own attempt
// failed, or the connection predates push). Its failures never fail a poll.
func WithSubscriber(s Subscriber) PollerOption {
	return pollerOption(func(o *options) { o.subscriber = s })
}

// NewPoller returns a Poller of store's connections reading source
// (options: WithConfig, WithSubscriber, WithClock, WithLogger,
// WithMetrics).
func NewPoller(store Store, source Source, opts ...PollerOption) *Poller {
	o := apply(opts, PollerOption.applyPoller)
	return &Poller{store: store, source: source, cfg: o.poller.withDefaults(), now: o.now, log: o.log, metrics: o.metrics,
		subscriber: o.subscriber}
}

// Consume polls the connection one poll queue message names (the
// polltenant function: sqsbatch.Handler feeds it each record). A malformed
// body is logged and acknowledged: no retry can fix it
// (docs/polling.md). It returns an error only for what a redelivery may
// fix.
func (p *Poller) Consume(ctx context.Context, messageID, body string, receives int) error {
	msg, err := pollqueue.Decode(body)
	if err != nil {
		p.log.ErrorContext(ctx, "poll message dropped: malformed body", "err", err, "receive_count", receives)
		p.metrics.Emit("polltenant", map[string]float64{metrics.Errors: 1}, map[string]string{"request_id": messageID, "error_kind": "malformed_message"})
		return nil
	}
	return p.Poll(logging.WithTenantID(ctx, msg.TenantID), msg)
}

// Result is what one poll did.
type Result struct {
	Skipped         string // why nothing was done: "busy", "not_connected", "not_found"
	Pages           int
	Orders          int
	EventsSeen      int
	MessagesCreated int
	TicketsCreated  int
	Throttled       bool
	NextPollAt      time.Time
	Cursor          *time.Time
}

// Poll syncs one connection. It returns an error only for transient
// failures, which SQS should retry; permanent ones (invalid_grant, no
// credentials) change the connection's status and return nil.
func (p *Poller) Poll(ctx context.Context, msg pollqueue.Message) error {
	_, err := p.PollResult(ctx, msg)
	return err
}

// PollResult is Poll returning what was done.
func (p *Poller) PollResult(ctx context.Context, msg pollqueue.Message) (Result, error) {
	start := time.Now()
	owner := logging.RequestID(ctx) + "/" + marketplace.NewID(6)
	st, err := p.store.AcquirePoll(ctx, msg.TenantID, msg.ConnectionID, owner, p.cfg.LeaseFor)
	if errors.Is(err, marketplace.ErrNotFound) {
		p.log.WarnContext(ctx, "poll skipped: no such connection for this tenant", "connection_id", msg.ConnectionID)
		return Result{Skipped: "not_found"}, nil
	}
	if err != nil {
		p.log.ErrorContext(ctx, "poll failed: cannot take the lease", "connection_id", msg.ConnectionID, "err", err)
		p.emit(ctx, msg, Result{}, "lease", start)
		return Result{}, err
	}
	if !st.Leased {
		r := Result{Skipped: "busy"}
		if st.Status != marketplace.StatusConnected {
			r.Skipped = "not_connected"
		}
		p.log.InfoContext(ctx, "poll skipped", "connection_id", msg.ConnectionID, "reason", r.Skipped, "status", st.Status)
		return r, nil
	}

	// Stop Amazon calls a little before the invocation's deadline so that
	// the outcome and the lease release are still written.
	syncCtx, cancelSync := ctx, context.CancelFunc(func() {})
	if d, ok := ctx.Deadline(); ok {
		syncCtx, cancelSync = context.WithDeadline(ctx, d.Add(-p.cfg.DeadlineMargin/3))
	}
	res, syncErr := p.sync(syncCtx, st, owner, msg.EnqueuedAt)
	cancelSync()
	if syncErr == nil && !st.Pushed && p.subscriber != nil {
		if ok, err := p.subscriber.Subscribe(ctx, st.TenantID, st.ConnectionID); err != nil {
			p.log.WarnContext(ctx, "push subscription failed; polling at the normal interval", "connection_id", st.ConnectionID, "err", errorText(err))
		} else if ok && res.Cursor != nil { // a complete sync: next at the fallback interval
			res.NextPollAt = p.nextPeriod(msg.EnqueuedAt, p.cfg.FallbackInterval)
		}
	}
	out := marketplace.PollOutcome{ConnectionID: st.ConnectionID, LeaseOwner: owner, NextPollAt: res.NextPollAt}
	kind := ""
	var retErr error
	var throttled *sellerapi.ThrottledError
	switch {
	case syncErr == nil:
	case errors.Is(syncErr, marketplace.ErrLeaseLost):
		p.log.WarnContext(ctx, "poll stopped: lease lost to another poller", "connection_id", st.ConnectionID)
		return res, nil
	case sellerapi.IsReauth(syncErr):
		kind = "needs_reauth"
		out.Status, out.Error, out.NextPollAt = marketplace.StatusNeedsReauth, "Amazon refused the refresh token (invalid_grant): the seller must reconnect", p.now()
	case errors.Is(syncErr, marketplace.ErrNoCredentials):
		kind = "no_credentials"
		out.Status, out.Error, out.NextPollAt = marketplace.StatusError, marketplace.ErrNoCredentials.Message, p.now()
	case errors.As(syncErr, &throttled):
		kind, res.Throttled = "throttled", true
		out.Error, out.NextPollAt, retErr = errorText(syncErr), time.Time{}, syncErr
	default:
		kind = "transient"
		out.Error, out.NextPollAt, retErr = errorText(syncErr), time.Time{}, syncErr
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := p.store.FinishPoll(fctx, out); err != nil && !errors.Is(err, marketplace.ErrLeaseLost) {
		p.log.ErrorContext(ctx, "poll outcome not recorded", "connection_id", st.ConnectionID, "err", err)
		if retErr == nil && syncErr == nil {
			retErr = err
		}
	}
	attrs := []any{"connection_id", st.ConnectionID, "pages", res.Pages, "orders", res.Orders, "events", res.EventsSeen,
		"messages_created", res.MessagesCreated, "tickets_created", res.TicketsCreated, "duration_ms", time.Since(start).Milliseconds()}
	if !res.NextPollAt.IsZero() {
		attrs = append(attrs, "next_poll_at", res.NextPollAt)
	}
	if syncErr != nil {
		attrs = append(attrs, "error_kind", kind, "err", errorText(syncErr))
		if retErr != nil {
			p.log.WarnContext(ctx, "poll failed; SQS will retry", attrs...)
		} else {
			p.log.ErrorContext(ctx, "poll failed permanently; connection status changed", append(attrs, "status", out.Status)...)
		}
	} else {
		p.log.InfoContext(ctx, "poll done", attrs...)
	}
	p.emit(ctx, msg, res, kind, start)
	return res, retErr
}

// sync reads pages from the stored position and stores each in its own
// transaction, until the window ends, the budget is empty, the page limit or
// the invocation's deadline is reached.
func (p *Poller) sync(ctx context.Context, st marketplace.PollState, owner string, claimedAt time.Time) (Result, error) {
	var res Result
	// A stored token resumes its window with the filters stored with it;
	// without them (a token stored before they were) the window restarts.
	req := PageRequest{After: p.windowStart(st)}
	if st.PaginationToken != "" {
		if st.PageWindowStart != nil && len(st.PageMarketplaceIDs) > 0 {
			req = PageRequest{After: *st.PageWindowStart, Token: st.PaginationToken, MarketplaceIDs: st.PageMarketplaceIDs}
		} else {
			p.log.WarnContext(ctx, "stored pagination token has no filters; restarting the window from the cursor", "connection_id", st.ConnectionID)
		}
	}
	restarted := false
	for {
		if res.Pages >= p.cfg.MaxPages || p.nearDeadline(ctx) {
			res.NextPollAt = p.now() // more to read: due again at once
			return res, nil
		}
		page, err := p.source.Fetch(ctx, st.SellerAccount, req)
		var nb *sellerapi.NoBudgetError
		switch {
		case errors.As(err, &nb):
			res.NextPollAt = nb.RetryAt
			return res, nil
		case errors.Is(err, ErrStalePageToken) && !restarted:
			p.log.WarnContext(ctx, "stored pagination token refused; restarting the window from the cursor", "connection_id", st.ConnectionID)
			req, restarted = PageRequest{After: p.windowStart(st)}, true
			continue
		case err != nil:
			return res, err
		}
		in := marketplace.InboundPage{
			ConnectionID: st.ConnectionID, TenantID: st.TenantID, LeaseOwner: owner, LeaseFor: p.cfg.LeaseFor,
			Messages: page.Messages, NextToken: page.NextToken,
			WindowStart: req.After, MarketplaceIDs: page.MarketplaceIDs,
		}
		if page.NextToken == "" {
			end := page.WindowEnd
			in.Cursor = &end
		}
		pr, err := p.store.IngestPage(ctx, in)
		if err != nil {
			return res, err
		}
		res.Pages++
		res.Orders += page.Orders
		res.EventsSeen += len(page.Messages)
		res.MessagesCreated += pr.MessagesCreated
		res.TicketsCreated += pr.TicketsCreated
		if page.NextToken == "" {
			res.Cursor = in.Cursor
			res.NextPollAt = p.nextPeriod(claimedAt, p.interval(st))
			return res, nil
		}
		req = PageRequest{After: req.After, Token: page.NextToken, MarketplaceIDs: page.MarketplaceIDs}
	}
}

// interval is the time to the next poll after a complete sync: the
// fallback interval when push serves the connection.
func (p *Poller) interval(st marketplace.PollState) time.Duration {
	if st.Pushed {
		return p.cfg.FallbackInterval
	}
	return p.cfg.Interval
}

// nextPeriod is when a connection whose complete sync was claimed at
// claimedAt is due again: one interval after the claim, less the schedule's
// jitter, whatever the poll's duration. Anchoring on the claim rather than
// on the poll's end keeps the cadence at one poll per period: a connection
// due "interval after it finished" is not yet due at the next tick and
// waits for the one after (two periods). A claim time that is missing or
// ahead of this clock counts as now; one far behind (a message SQS
// redelivered) gives a time already past, so the next tick takes it.
func (p *Poller) nextPeriod(claimedAt time.Time, interval time.Duration) time.Time {
	now := p.now()
	if claimedAt.IsZero() || claimedAt.After(now) {
		claimedAt = now
	}
	jitter := p.cfg.Jitter
	if jitter > interval/2 {
		jitter = interval / 2
	}
	return claimedAt.Add(interval - jitter)
}

// windowStart is where searchOrders starts when no page token is stored:
// the cursor minus the overlap, or, before the first complete sync, the
// look-back before the connection was made; to the second, as it is sent
// (and stored with the window's pagination tokens).
func (p *Poller) windowStart(st marketplace.PollState) time.Time {
	if st.Cursor != nil {
		return st.Cursor.Add(-p.cfg.Overlap).UTC().Truncate(time.Second)
	}
	base := p.now()
	if st.ConnectedAt != nil {
		base = *st.ConnectedAt
	}
	return base.Add(-p.cfg.Lookback).UTC().Truncate(time.Second)
}

func (p *Poller) nearDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && time.Until(d) < p.cfg.DeadlineMargin
}

func (p *Poller) emit(ctx context.Context, msg pollqueue.Message, r Result, errKind string, start time.Time) {
	if p.metrics == nil {
		return
	}
	v := map[string]float64{
		metrics.Polls: 1, metrics.Pages: float64(r.Pages), metrics.EventsIngested: float64(r.MessagesCreated),
		metrics.TicketsCreated: float64(r.TicketsCreated), metrics.Throttled429: 0, metrics.Errors: 0,
	}
	if r.Throttled {
		v[metrics.Throttled429] = 1
	}
	if errKind != "" {
		v[metrics.Errors] = 1
	}
	if r.Cursor != nil {
		v[metrics.CursorLagSeconds] = p.now().Sub(*r.Cursor).Seconds()
	}
	props := map[string]string{"tenant_id": msg.TenantID, "connection_id": msg.ConnectionID, "request_id": logging.RequestID(ctx),
		"duration_ms": fmt.Sprint(time.Since(start).Milliseconds())}
	if errKind != "" {
		props["error_kind"] = errKind
	}
	p.metrics.Emit("polltenant", v, props)
}

// errorText is err as lastError and the logs keep it (at most 1000 bytes).
func errorText(err error) string { return sellerapi.ErrorText(err, 1000) }
