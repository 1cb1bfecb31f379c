package push

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// IntakeStore is the part of postgres.Store the intake uses.
type IntakeStore interface {
	ConnectionBySubscription(ctx context.Context, subscriptionID string) (marketplace.PushTarget, bool, error)
	// IngestNotification stores the events and the notification's outcome
	// (STORED, DUPLICATE or NOT_CONNECTED) in one transaction.
	IngestNotification(ctx context.Context, tenantID, connectionID string, msgs []marketplace.InboundMessage, rec marketplace.NotificationRecord) (marketplace.PageResult, marketplace.NotificationRecord, error)
	RecordNotification(ctx context.Context, r marketplace.NotificationRecord) error
}

// Unsubscriber ends a connection's ORDER_CHANGE subscription at Amazon
// (Subscriber.Unsubscribe).
type Unsubscriber interface {
	Unsubscribe(ctx context.Context, c marketplace.Connection) error
}

// Intake consumes the notifications queue.
type Intake struct {
	store   IntakeStore
	orders  sellerapi.Orders
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics.Writer
	unsub   Unsubscriber
	backoff Backoff
}

// WithClock sets an Intake's clock (default time.Now).
func WithClock(now func() time.Time) IntakeOption {
	return intakeOption(func(o *options) {
		if now != nil {
			o.now = now
		}
	})
}

// WithMetrics makes an Intake emit metrics to m (default: none).
func WithMetrics(m *metrics.Writer) IntakeOption {
	return intakeOption(func(o *options) { o.metrics = m })
}

// WithUnsubscriber lets an Intake end the subscription of a DISABLED
// connection when one of its notifications still arrives: disconnect's own
// deleteSubscriptionById failed (docs/push.md). Default: none.
func WithUnsubscriber(u Unsubscriber) IntakeOption {
	return intakeOption(func(o *options) { o.unsub = u })
}

// NewIntake returns the ordernotify handler's Intake (options: WithClock,
// WithLogger, WithMetrics, WithUnsubscriber, WithBackoff).
func NewIntake(store IntakeStore, orders sellerapi.Orders, opts ...IntakeOption) *Intake {
	o := apply(opts, IntakeOption.applyIntake)
	return &Intake{store: store, orders: orders, now: o.now, log: o.log, metrics: o.metrics, unsub: o.unsub, backoff: o.backoff.withDefaults()}
}

// unsubscribeTimeout bounds the retry of a disconnected connection's
// unsubscribe inside one notification's handling.
const unsubscribeTimeout = 10 * time.Second

// endLeftover ends the subscription a DISABLED connection still has (the
// disconnect's deleteSubscriptionById failed, so Amazon keeps sending the
// seller's order changes): each notification that still arrives retries it,
// and the notification is dropped whatever the outcome. It returns the
// record's detail.
func (in *Intake) endLeftover(ctx context.Context, t marketplace.PushTarget) string {
	if in.unsub == nil {
		return string(t.Status)
	}
	ctx, cancel := context.WithTimeout(ctx, unsubscribeTimeout)
	defer cancel()
	if err := in.unsub.Unsubscribe(ctx, marketplace.Connection{ID: t.ConnectionID, TenantID: t.TenantID}); err != nil {
		in.log.WarnContext(ctx, "disconnected connection's subscription not ended; the next notification retries",
			"connection_id", t.ConnectionID, "error", safeError(err))
		return string(t.Status) + "; unsubscribe failed: " + safeError(err)
	}
	in.log.InfoContext(ctx, "disconnected connection's leftover subscription ended", "connection_id", t.ConnectionID)
	return string(t.Status) + "; leftover subscription ended"
}

// Consume handles one notifications queue message (the ordernotify
// function: sqsbatch.Handler feeds it each record): Handle without its
// result.
func (in *Intake) Consume(ctx context.Context, messageID, body string, receives int) error {
	_, err := in.Handle(ctx, messageID, body, receives)
	return err
}

// Result is what one notification came to.
type Result struct {
	Outcome         marketplace.Outcome
	ConnectionID    string
	MessagesCreated int
	TicketsCreated  int
}

// Handle processes one SQS body. It returns an error only when SQS should
// deliver it again (database, Vault, LWA or SP-API unavailable, budget
// empty, throttled); every other body is recorded with its outcome and
// acknowledged. receives is the message's ApproximateReceiveCount (0 when
// unknown).
func (in *Intake) Handle(ctx context.Context, messageID, body string, receives int) (Result, error) {
	start := in.now()
	n, err := Decode(body)
	if err != nil {
		m, _ := asMalformed(err)
		rec := marketplace.NotificationRecord{NotificationID: cmp.Or(m.NotificationID, "sqs:"+messageID),
			NotificationType: n.NotificationType, SubscriptionID: n.SubscriptionID, Outcome: marketplace.OutcomeMalformed, Detail: m.Reason}
		in.log.WarnContext(ctx, "notification dropped: malformed body", "reason", m.Reason, "receive_count", receives)
		return in.finish(ctx, rec, Result{Outcome: marketplace.OutcomeMalformed}, start)
	}
	rec := marketplace.NotificationRecord{
		NotificationID: n.NotificationID, NotificationType: n.NotificationType, SubscriptionID: n.SubscriptionID,
		OrderID: n.AmazonOrderID, ChangeType: n.OrderChangeType, EventTime: n.EventTime,
	}
	drop := func(o marketplace.Outcome, detail string) (Result, error) {
		rec.Outcome, rec.Detail = o, detail
		return in.finish(ctx, rec, Result{Outcome: o, ConnectionID: rec.ConnectionID}, start)
	}
	if n.NotificationType != spapi.NotificationTypeOrderChange {
		return drop(marketplace.OutcomeIgnored, "notification type "+n.NotificationType)
	}
	t, ok, err := in.store.ConnectionBySubscription(ctx, n.SubscriptionID)
	if err != nil {
		return in.retry(ctx, rec, err)
	}
	if !ok {
		in.log.WarnContext(ctx, "notification dropped: unknown subscription", "subscription_id", n.SubscriptionID)
		return drop(marketplace.OutcomeUnknownSubscription, "")
	}
	rec.ConnectionID, rec.TenantID = t.ConnectionID, t.TenantID
	ctx = logging.WithTenantID(ctx, t.TenantID)
	// The SellerId of the body is not signed: the subscription, created with
	// the tenant's own token, routes; the seller id must agree with it.
	if n.SellerID != t.SellingPartnerID {
		in.log.WarnContext(ctx, "notification dropped: seller id does not match the subscription's connection",
			"connection_id", t.ConnectionID, "subscription_id", n.SubscriptionID)
		return drop(marketplace.OutcomeSellerMismatch, "SellerId "+n.SellerID)
	}
	rec.Routed = true
	if t.Status == marketplace.StatusDisabled {
		return drop(marketplace.OutcomeNotConnected, in.endLeftover(ctx, t))
	}
	if t.Status != marketplace.StatusConnected {
		return drop(marketplace.OutcomeNotConnected, string(t.Status))
	}
	if !n.BuyerRequestedCancel() {
		return drop(marketplace.OutcomeIgnored, "change type "+n.OrderChangeType)
	}

	order, err := in.orders.GetOrder(ctx, t.SellerAccount, n.AmazonOrderID)
	switch {
	case err == nil && order.OrderID != n.AmazonOrderID:
		return drop(marketplace.OutcomeOrderNotFound, "getOrder answered another order")
	case errors.Is(err, spapi.ErrNotFound) && receives < in.backoff.Deliveries:
		return in.later(ctx, rec, receives, "getOrder answered 404")
	case errors.Is(err, spapi.ErrNotFound):
		return in.leftToPoll(ctx, rec, marketplace.OutcomeOrderNotFound, receives, "getOrder still answered 404")
	case lwa.IsInvalidGrant(err), errors.Is(err, marketplace.ErrNoCredentials):
		// The poller marks the connection; nothing to retry here.
		return drop(marketplace.OutcomeNotConnected, safeError(err))
	case err != nil && permanent(err):
		return drop(marketplace.OutcomeOrderNotFound, safeError(err))
	case err != nil:
		return in.retry(ctx, rec, err)
	}
	msgs := spapi.BuyerEvents([]spapi.Order{order})
	if missing(n, msgs) {
		if receives < in.backoff.Deliveries {
			return in.later(ctx, rec, receives, "getOrder does not show the buyer's request yet")
		}
		if len(msgs) == 0 {
			return in.leftToPoll(ctx, rec, marketplace.OutcomeNoEvent, receives, "getOrder still did not show the buyer's request")
		}
		// Store what the order shows; the fallback poll reads the rest.
		in.log.WarnContext(ctx, "notification partly readable; the rest is left to the fallback poll",
			"notification_id", rec.NotificationID, "receive_count", receives)
	}
	if len(msgs) == 0 {
		return drop(marketplace.OutcomeNoEvent, "")
	}
	// The events and the outcome in one transaction (nothing of either when
	// it fails): STORED, DUPLICATE, or NOT_CONNECTED when the connection was
	// disconnected meanwhile.
	res, stored, err := in.store.IngestNotification(ctx, t.TenantID, t.ConnectionID, msgs, rec)
	if err != nil {
		return in.retry(ctx, rec, err)
	}
	return in.report(ctx, stored, Result{Outcome: stored.Outcome, ConnectionID: t.ConnectionID, MessagesCreated: res.MessagesCreated, TicketsCreated: res.TicketsCreated}, start)
}

// permanent reports SP-API answers a redelivery cannot change (400, 403
// other than an expired token, which the client already refreshed). The
// fallback poll still reads the order.
func permanent(err error) bool {
	return errors.Is(err, spapi.ErrInvalidInput) || errors.Is(err, spapi.ErrUnauthorized)
}

// later hands a notification getOrder is behind on back to the queue, to
// be delivered again after the back-off's delay for this delivery.
func (in *Intake) later(ctx context.Context, rec marketplace.NotificationRecord, receives int, reason string) (Result, error) {
	d := in.backoff.delay(max(receives, 1))
	in.log.InfoContext(ctx, "notification ahead of getOrder; delivered again later", "notification_id", rec.NotificationID,
		"connection_id", rec.ConnectionID, "order_id", rec.OrderID, "reason", reason, "receive_count", receives, "retry_after_ms", d.Milliseconds())
	in.metrics.Emit("ordernotify", map[string]float64{"notifications": 1, "aheadOfGetOrder": 1},
		map[string]string{"tenant_id": rec.TenantID, "connection_id": rec.ConnectionID, "request_id": logging.RequestID(ctx)})
	return Result{Outcome: OutcomeRetryLater, ConnectionID: rec.ConnectionID}, &RetryLaterError{After: d, Reason: reason}
}

// leftToPoll records a notification whose order getOrder still did not
// show after the back-off's deliveries: the fallback poll will store its
// event (it reads every order changed in its window).
func (in *Intake) leftToPoll(ctx context.Context, rec marketplace.NotificationRecord, o marketplace.Outcome, receives int, reason string) (Result, error) {
	rec.Outcome, rec.Detail = o, fmt.Sprintf("%s after %d deliveries: left to the fallback poll", reason, receives)
	in.log.WarnContext(ctx, "notification left to the fallback poll", "notification_id", rec.NotificationID,
		"connection_id", rec.ConnectionID, "order_id", rec.OrderID, "receive_count", receives)
	return in.finish(ctx, rec, Result{Outcome: o, ConnectionID: rec.ConnectionID}, in.now())
}

// OutcomeRetryLater is a Result's outcome (never recorded) for a
// notification handed back to the queue because getOrder is behind it.
const OutcomeRetryLater marketplace.Outcome = "RETRY_LATER"

// retry logs a transient failure and hands the record back to SQS.
func (in *Intake) retry(ctx context.Context, rec marketplace.NotificationRecord, err error) (Result, error) {
	var nb *sellerapi.NoBudgetError
	kind := "transient"
	if errors.As(err, &nb) {
		kind = "no_budget"
	}
	var th *sellerapi.ThrottledError
	if errors.As(err, &th) {
		kind = "throttled"
	}
	in.log.WarnContext(ctx, "notification failed; SQS will deliver it again", "notification_id", rec.NotificationID,
		"connection_id", rec.ConnectionID, "error_kind", kind, "err", safeError(err))
	in.metrics.Emit("ordernotify", map[string]float64{"notifications": 1, metrics.Errors: 1},
		map[string]string{"tenant_id": rec.TenantID, "connection_id": rec.ConnectionID, "error_kind": kind, "request_id": logging.RequestID(ctx)})
	err = fmt.Errorf("notification %s: %w", rec.NotificationID, err)
	// An empty budget or a 429 says when a token is there again: the
	// notification comes back then, not at the queue's visibility timeout.
	switch {
	case nb != nil:
		err = &budgetWait{after: nb.RetryAt.Sub(in.now()), err: err}
	case th != nil:
		err = &budgetWait{after: th.RetryAt.Sub(in.now()), err: err}
	}
	return Result{ConnectionID: rec.ConnectionID}, err
}

// budgetWait is a transient failure that knows when to try again.
type budgetWait struct {
	after time.Duration
	err   error
}

func (e *budgetWait) Error() string { return e.err.Error() }
func (e *budgetWait) Unwrap() error { return e.err }

// RetryAfter is when the budget has a token again (at least a second).
func (e *budgetWait) RetryAfter() time.Duration { return max(e.after, time.Second) }

// finish records the outcome; a record that cannot be written makes SQS
// deliver the notification again (ingestion is idempotent).
func (in *Intake) finish(ctx context.Context, rec marketplace.NotificationRecord, res Result, start time.Time) (Result, error) {
	if err := in.store.RecordNotification(ctx, rec); err != nil {
		return in.retry(ctx, rec, err)
	}
	return in.report(ctx, rec, res, start)
}

// report logs and measures a notification whose outcome is recorded.
func (in *Intake) report(ctx context.Context, rec marketplace.NotificationRecord, res Result, start time.Time) (Result, error) {
	attrs := []any{"notification_id", rec.NotificationID, "outcome", string(rec.Outcome), "connection_id", rec.ConnectionID,
		"order_id", rec.OrderID, "change_type", rec.ChangeType, "messages_created", res.MessagesCreated,
		"duration_ms", in.now().Sub(start).Milliseconds()}
	if rec.EventTime != nil {
		attrs = append(attrs, "event_to_stored_ms", in.now().Sub(*rec.EventTime).Milliseconds())
	}
	if rec.Detail != "" {
		attrs = append(attrs, "detail", rec.Detail)
	}
	in.log.InfoContext(ctx, "notification handled", attrs...)
	in.metrics.Emit("ordernotify", map[string]float64{"notifications": 1, metrics.EventsIngested: float64(res.MessagesCreated),
		metrics.TicketsCreated: float64(res.TicketsCreated), metrics.Errors: 0},
		map[string]string{"tenant_id": rec.TenantID, "connection_id": rec.ConnectionID, "outcome": string(rec.Outcome), "request_id": logging.RequestID(ctx)})
	return res, nil
}
