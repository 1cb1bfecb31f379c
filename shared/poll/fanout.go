package poll

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
)

// ClaimStore is the part of postgres.Store the fan-out uses.
type ClaimStore interface {
	ClaimDue(ctx context.Context, limit int, claimFor time.Duration, after marketplace.ClaimCursor) ([]marketplace.PollJob, marketplace.ClaimCursor, error)
	ReleaseClaims(ctx context.Context, connectionIDs []string) error
	// Renew ends expired authorizations (NEEDS_REAUTH) and counts those
	// due within 30 days, before the claim (so an expired one is not polled).
	Renew(ctx context.Context) (marketplace.Renewal, error)
}

// Sender sends poll messages (pollsender.Sender).
type Sender interface {
	Send(ctx context.Context, msgs <-chan pollqueue.Message) pollqueue.Result
}

// FanoutConfig tunes a Fanout; zero fields take the defaults.
type FanoutConfig struct {
	Chunk int // connections claimed per statement (1000)
	// ClaimFor is how long a claimed connection is not enqueued again unless
	// its poll ends first. A transient failure keeps the claim while SQS
	// retries the message, so it should exceed the queue's VisibilityTimeout
	// x maxReceiveCount (750 s x 5 deployed); default 1 h.
	ClaimFor       time.Duration
	DeadlineMargin time.Duration // stop claiming this close to the deadline (5 s)
}

// Fanout enqueues one poll message per due connection.
type Fanout struct {
	store   ClaimStore
	sender  Sender
	cfg     FanoutConfig
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics.Writer
}

// WithFanoutConfig tunes a Fanout (default: FanoutConfig's defaults).
func WithFanoutConfig(c FanoutConfig) FanoutOption {
	return fanoutOption(func(o *options) { o.fanout = c })
}

// NewFanout returns a Fanout claiming store's due connections and sending
// their messages with sender (options: WithFanoutConfig, WithClock,
// WithLogger, WithMetrics).
func NewFanout(store ClaimStore, sender Sender, opts ...FanoutOption) *Fanout {
	o := apply(opts, FanoutOption.applyFanout)
	cfg := o.fanout
	if cfg.Chunk <= 0 {
		cfg.Chunk = 1000
	}
	if cfg.ClaimFor <= 0 {
		cfg.ClaimFor = time.Hour
	}
	if cfg.DeadlineMargin <= 0 {
		cfg.DeadlineMargin = 5 * time.Second
	}
	return &Fanout{store: store, sender: sender, cfg: cfg, now: o.now, log: o.log, metrics: o.metrics}
}

// FanoutResult is the pollfanout Lambda's answer.
type FanoutResult struct {
	Claimed int `json:"claimed"`
	Sent    int `json:"sent"`
	Failed  int `json:"failed"`
}

// Handle is the pollfanout Lambda handler (EventBridge scheduled event).
func (f *Fanout) Handle(ctx context.Context, ev events.EventBridgeEvent) (FanoutResult, error) {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		ctx = logging.WithRequestID(ctx, lc.AwsRequestID)
	} else if ev.ID != "" {
		ctx = logging.WithRequestID(ctx, ev.ID)
	}
	return f.Run(ctx)
}

// Run claims due connections chunk by chunk, streaming them to the sender
// while the next chunk is claimed, then releases the claims of messages
// that could not be sent so the next run takes them again.
func (f *Fanout) Run(ctx context.Context) (FanoutResult, error) {
	start := time.Now()
	msgs := make(chan pollqueue.Message, f.cfg.Chunk)
	done := make(chan pollqueue.Result, 1)
	go func() { done <- f.sender.Send(ctx, msgs) }()

	renewal, renewErr := f.store.Renew(ctx)
	if renewErr != nil {
		f.log.WarnContext(ctx, "renewal pass failed; polling goes on", "error", renewErr.Error())
	} else if renewal.Expired > 0 {
		f.log.InfoContext(ctx, "authorizations expired: sellers must reconnect", "expired", renewal.Expired)
	}
	var (
		res      FanoutResult
		claimErr error
		chunks   int
		cursor   marketplace.ClaimCursor
	)
	for {
		if d, ok := ctx.Deadline(); ok && time.Until(d) < f.cfg.DeadlineMargin {
			break
		}
		jobs, next, err := f.store.ClaimDue(ctx, f.cfg.Chunk, f.cfg.ClaimFor, cursor)
		if err != nil {
			claimErr = err
			break
		}
		chunks++
		cursor = next
		res.Claimed += len(jobs)
		at := f.now().UTC()
		for _, j := range jobs {
			msgs <- pollqueue.Message{TenantID: j.TenantID, ConnectionID: j.ConnectionID, EnqueuedAt: at}
		}
		if len(jobs) < f.cfg.Chunk {
			break
		}
	}
	close(msgs)
	sent := <-done
	res.Sent, res.Failed = sent.Sent, len(sent.Failed)

	var releaseErr error
	if len(sent.Failed) > 0 {
		ids := make([]string, len(sent.Failed))
		for i, m := range sent.Failed {
			ids[i] = m.ConnectionID
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		releaseErr = f.store.ReleaseClaims(rctx, ids)
		cancel()
	}
	attrs := []any{"claimed", res.Claimed, "sent", res.Sent, "failed", res.Failed, "chunks", chunks, "duration_ms", time.Since(start).Milliseconds()}
	if sent.Err != nil {
		attrs = append(attrs, "send_err", sent.Err.Error())
	}
	if claimErr != nil {
		attrs = append(attrs, "claim_err", claimErr.Error())
	}
	if releaseErr != nil {
		attrs = append(attrs, "release_err", releaseErr.Error())
	}
	if claimErr != nil || res.Failed > 0 {
		f.log.WarnContext(ctx, "fan-out done with failures", attrs...)
	} else {
		f.log.InfoContext(ctx, "fan-out done", attrs...)
	}
	values := map[string]float64{
		metrics.Claimed: float64(res.Claimed), metrics.Enqueued: float64(res.Sent), metrics.EnqueueFailed: float64(res.Failed),
	}
	if renewErr == nil {
		values[metrics.RenewalDue], values[metrics.AuthorizationsExpired] = float64(renewal.DueSoon), float64(renewal.Expired)
	}
	f.metrics.Emit("pollfanout", values, nil)
	if claimErr != nil && res.Claimed == 0 {
		return res, claimErr
	}
	if res.Claimed > 0 && res.Sent == 0 {
		return res, errors.Join(errors.New("no poll message could be sent"), sent.Err)
	}
	return res, nil
}
