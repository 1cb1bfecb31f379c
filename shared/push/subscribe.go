// Package push is the connector's push intake: the application's
// notifications destination (Destinations), each connection's ORDER_CHANGE
// subscription (Subscriber), and the consumer of the notifications queue
// (Intake) that turns a buyer's cancellation request into a ticket through
// the same ingestion as polling. Polling stays as the fallback
// (docs/push.md).
//
// Follow one notification: Amazon -> SQS -> sqsbatch.Handler ->
// Intake.Consume -> Intake.Handle -> Decode ->
// postgres.ConnectionBySubscription (route by SubscriptionId, check
// SellerId) -> getOrder (sellerapi.Gateway.GetOrder, within its budget) ->
// spapi.BuyerEvents (the externalIds polling gives) -> postgres.IngestNotification
// (the events and the outcome in one transaction).
package push

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// PayloadVersion is the ORDER_CHANGE payload version subscribed to.
const PayloadVersion = "1.0"

// OrderChangeTypes is the ORDER_CHANGE event filter: the change types the
// connector turns into tickets (a buyer's cancellation request).
var OrderChangeTypes = []string{spapi.OrderChangeBuyerRequested}

// NotificationsPlan is the usage plan of every Notifications API operation.
var NotificationsPlan = marketplace.RatePlan{Rate: spapi.NotificationsRate, Burst: spapi.NotificationsBurst}

// API is the Notifications API (spapi.Client).
type API interface {
	CreateDestination(ctx context.Context, endpoint string, tokens spapi.Tokens, name, queueARN string) (spapi.Destination, error)
	GetDestinations(ctx context.Context, endpoint string, tokens spapi.Tokens) ([]spapi.Destination, error)
	CreateSubscription(ctx context.Context, endpoint string, tokens spapi.Tokens, notificationType string, r spapi.SubscriptionRequest) (spapi.Subscription, error)
	GetSubscription(ctx context.Context, endpoint string, tokens spapi.Tokens, notificationType, payloadVersion string) (spapi.Subscription, error)
	DeleteSubscriptionByID(ctx context.Context, endpoint string, tokens spapi.Tokens, notificationType, subscriptionID string) error
}

// Apps reads an application's credentials (credcache.Cache).
type Apps interface {
	AppFor(ctx context.Context, source marketplace.AppSource) (marketplace.AppCredentials, error)
}

// AppTokens gives an application's cached grantless token source and the
// region's endpoint (sellerapi.Gateway.AppTokens).
type AppTokens interface {
	AppTokens(app marketplace.AppCredentials, region, scope string) (endpoint string, tokens spapi.Tokens, err error)
}

// Seller runs SP-API calls on a seller's behalf within the connection's
// persisted budget for the operation (sellerapi.Gateway): with the seller's
// own token (Call) or the application's grantless one (CallGrantless). An
// empty budget is a *sellerapi.NoBudgetError, a 429 a *sellerapi.ThrottledError.
type Seller interface {
	Call(ctx context.Context, acct marketplace.SellerAccount, operation string, plan marketplace.RatePlan, f sellerapi.CallFunc) error
	CallGrantless(ctx context.Context, acct marketplace.SellerAccount, scope, operation string, plan marketplace.RatePlan, f sellerapi.CallFunc) error
}

// DestinationStore records the destination id (postgres.Store).
type DestinationStore interface {
	Destination(ctx context.Context, applicationID, region, queueARN string) (string, bool, error)
	SaveDestination(ctx context.Context, applicationID, region, queueARN, destinationID string) (string, error)
}

// Destinations finds or creates the application's destination for the
// notifications queue, once per application and region: the id recorded
// in the database, else createDestination with a grantless token, else (a
// 409: it exists) the one getDestinations lists for the queue's ARN. Every
// container may do so at once: Amazon keeps one destination per ARN and the
// database keeps the first id recorded. Ids are cached per container.
type Destinations struct {
	store    DestinationStore
	apps     Apps
	api      API
	tokens   AppTokens
	queueARN string

	mu  sync.Mutex
	ids map[string]string // app+region -> destination id
}

// NewDestinations returns the destination finder for queueARN
// (NOTIFICATIONS_QUEUE_ARN): apps' credentials, api's calls with the
// application's grantless tokens (sellerapi.Gateway.AppTokens, which also
// names the endpoint).
func NewDestinations(store DestinationStore, apps Apps, api API, tokens AppTokens, queueARN string) *Destinations {
	return &Destinations{store: store, apps: apps, api: api, tokens: tokens, queueARN: queueARN, ids: map[string]string{}}
}

// QueueARN is the notifications queue the destination points at.
func (d *Destinations) QueueARN() string { return d.queueARN }

// ID returns the destination id of the application source names (the one
// that authorized the connection: a subscription must point at its own
// application's destination) in region ("" = the app's region).
func (d *Destinations) ID(ctx context.Context, source marketplace.AppSource, region string) (string, error) {
	app, err := d.apps.AppFor(ctx, source)
	if err != nil {
		return "", fmt.Errorf("destination: app credentials: %w", err)
	}
	region = cmp.Or(region, app.Region)
	appID := cmp.Or(app.ApplicationID, app.ClientID)
	key := appID + "\x00" + region
	d.mu.Lock()
	id := d.ids[key]
	d.mu.Unlock()
	if id != "" {
		return id, nil
	}
	id, ok, err := d.store.Destination(ctx, appID, region, d.queueARN)
	if err != nil {
		return "", fmt.Errorf("destination: %w", err)
	}
	if !ok {
		if id, err = d.createOrWait(ctx, app, appID, region); err != nil {
			return "", fmt.Errorf("destination: %w", err)
		}
	}
	d.mu.Lock()
	d.ids[key] = id
	d.mu.Unlock()
	return id, nil
}

// createOrWait creates (or finds) the destination at Amazon and records it.
// When Amazon refuses for now (several containers at once exceed the
// grantless budget of 1/s, burst 5), it reads the database again for a
// while: another container's id, recorded meanwhile, is as good.
func (d *Destinations) createOrWait(ctx context.Context, app marketplace.AppCredentials, appID, region string) (string, error) {
	id, err := d.create(ctx, app, region)
	if err == nil {
		return d.store.SaveDestination(ctx, appID, region, d.queueARN, id)
	}
	if !spapi.Transient(err) {
		return "", err
	}
	for wait := 100 * time.Millisecond; wait <= 1600*time.Millisecond; wait *= 2 {
		select {
		case <-ctx.Done():
			return "", errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		if id, ok, rerr := d.store.Destination(ctx, appID, region, d.queueARN); rerr == nil && ok {
			return id, nil
		}
	}
	return "", err
}

func (d *Destinations) create(ctx context.Context, app marketplace.AppCredentials, region string) (string, error) {
	endpoint, tokens, err := d.tokens.AppTokens(app, region, spapi.NotificationsScope)
	if err != nil {
		return "", err
	}
	dest, err := d.api.CreateDestination(ctx, endpoint, tokens, destinationName(d.queueARN), d.queueARN)
	if err == nil {
		return dest.ID, nil
	}
	if !errors.Is(err, spapi.ErrConflict) {
		return "", err
	}
	list, lerr := d.api.GetDestinations(ctx, endpoint, tokens)
	if lerr != nil {
		return "", errors.Join(err, lerr)
	}
	for _, x := range list {
		if x.QueueARN == d.queueARN {
			return x.ID, nil
		}
	}
	return "", fmt.Errorf("%w; and getDestinations lists none for %s", err, d.queueARN)
}

// destinationName names the destination after the queue.
func destinationName(queueARN string) string {
	name := queueARN[strings.LastIndex(queueARN, ":")+1:]
	return "keybuzz-amazon-" + name
}

// SubscriptionStore is the part of postgres.Store the Subscriber uses.
type SubscriptionStore interface {
	ClaimSubscribe(ctx context.Context, tenantID, connectionID string, retryAfter time.Duration, force bool) (marketplace.PushTarget, bool, error)
	SaveSubscription(ctx context.Context, connectionID, subscriptionID, destinationID string) error
	RecordSubscribeError(ctx context.Context, connectionID, message string) error
	PushTarget(ctx context.Context, tenantID, connectionID string) (marketplace.PushTarget, error)
	ClearSubscription(ctx context.Context, connectionID, subscriptionID string) error
}

// Subscriber subscribes connections to ORDER_CHANGE with the seller's
// token and removes subscriptions on disconnect.
type Subscriber struct {
	store        SubscriptionStore
	destinations *Destinations // also its apps, its Notifications API and its endpoint
	seller       Seller
	retryAfter   time.Duration
	log          *slog.Logger
}

// WithRetryAfter spaces a Subscriber's attempts for one connection
// (default 10 minutes; a duration <= 0 keeps it).
func WithRetryAfter(d time.Duration) SubscriberOption {
	return subscriberOption(func(o *options) {
		if d > 0 {
			o.retryAfter = d
		}
	})
}

// NewSubscriber returns a Subscriber pointing subscriptions at
// destinations, made with seller's tokens (options: WithRetryAfter,
// WithLogger).
func NewSubscriber(store SubscriptionStore, destinations *Destinations, seller Seller, opts ...SubscriberOption) *Subscriber {
	o := apply(opts, SubscriberOption.applySubscriber)
	return &Subscriber{store: store, destinations: destinations, seller: seller, retryAfter: o.retryAfter, log: o.log}
}

// Subscribe makes sure the connection has an ORDER_CHANGE subscription when
// it is CONNECTED and none is recorded, at most once per retryAfter (from
// any container): createSubscription, or on a 409 the seller's existing
// one (getSubscription), replaced when it points at another destination.
// It reports whether the connection has a subscription afterwards. A
// failure is recorded on the connection (pushError) and returned; the
// connection stays polled at the normal interval.
func (s *Subscriber) Subscribe(ctx context.Context, tenantID, connectionID string) (bool, error) {
	return s.subscribe(ctx, tenantID, connectionID, false)
}

// OnConnected subscribes a connection that has just become CONNECTED, even
// when a subscription is recorded (a reconnect after a revocation, which
// drops Amazon's subscriptions): Amazon's answer wins. It never fails the
// caller: failures are logged and recorded, and the poller retries.
func (s *Subscriber) OnConnected(ctx context.Context, conn marketplace.Connection) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.subscribe(ctx, conn.TenantID, conn.ID, true); err != nil {
		s.log.WarnContext(ctx, "push subscription on connect failed; polling at the normal interval until a retry succeeds",
			"connection_id", conn.ID, "err", err.Error())
	}
}

func (s *Subscriber) subscribe(ctx context.Context, tenantID, connectionID string, force bool) (bool, error) {
	t, ok, err := s.store.ClaimSubscribe(ctx, tenantID, connectionID, s.retryAfter, force)
	if err != nil {
		return false, err
	}
	if !ok {
		cur, err := s.store.PushTarget(ctx, tenantID, connectionID)
		if err != nil {
			return false, err
		}
		return cur.SubscriptionID != "", nil
	}
	sub, destID, err := s.create(ctx, t)
	if err == nil {
		err = s.store.SaveSubscription(ctx, t.ConnectionID, sub.ID, destID)
	}
	if err != nil {
		if rerr := s.store.RecordSubscribeError(context.WithoutCancel(ctx), t.ConnectionID, safeError(err)); rerr != nil {
			s.log.WarnContext(ctx, "push subscription error not recorded", "connection_id", t.ConnectionID, "err", rerr.Error())
		}
		return false, fmt.Errorf("subscribe %s: %w", t.ConnectionID, err)
	}
	s.log.InfoContext(ctx, "push subscription live", "connection_id", t.ConnectionID, "subscription_id", sub.ID, "destination_id", destID)
	return true, nil
}

func (s *Subscriber) create(ctx context.Context, t marketplace.PushTarget) (spapi.Subscription, string, error) {
	destID, err := s.destinations.ID(ctx, t.AppSource, t.Region)
	if err != nil {
		return spapi.Subscription{}, "", err
	}
	req := spapi.SubscriptionRequest{PayloadVersion: PayloadVersion, DestinationID: destID, OrderChangeTypes: OrderChangeTypes}
	var sub spapi.Subscription
	err = s.seller.Call(ctx, t.SellerAccount, spapi.OpCreateSubscription, NotificationsPlan, func(endpoint string, tokens spapi.Tokens) (float64, error) {
		var err error
		sub, err = s.destinations.api.CreateSubscription(ctx, endpoint, tokens, spapi.NotificationTypeOrderChange, req)
		return 0, err
	})
	if !errors.Is(err, spapi.ErrConflict) {
		return sub, destID, err
	}
	// The seller has one already (ours from an earlier attempt, or one made
	// before the destination changed).
	err = s.seller.Call(ctx, t.SellerAccount, spapi.OpGetSubscription, NotificationsPlan, func(endpoint string, tokens spapi.Tokens) (float64, error) {
		var err error
		sub, err = s.destinations.api.GetSubscription(ctx, endpoint, tokens, spapi.NotificationTypeOrderChange, PayloadVersion)
		return 0, err
	})
	if err != nil || sub.DestinationID == destID {
		return sub, destID, err
	}
	if err := s.deleteAtAmazon(ctx, t, sub.ID); err != nil {
		return spapi.Subscription{}, destID, fmt.Errorf("replace subscription to another destination: %w", err)
	}
	err = s.seller.Call(ctx, t.SellerAccount, spapi.OpCreateSubscription, NotificationsPlan, func(endpoint string, tokens spapi.Tokens) (float64, error) {
		var err error
		sub, err = s.destinations.api.CreateSubscription(ctx, endpoint, tokens, spapi.NotificationTypeOrderChange, req)
		return 0, err
	})
	return sub, destID, err
}

// Unsubscribe deletes the connection's subscription at Amazon
// (deleteSubscriptionById, grantless: it works after the seller revoked the
// app) and forgets it; a subscription Amazon no longer knows is forgotten
// too. Nothing to do is not an error. It is the Connect flow's
// connect.Unsubscriber: disconnect (and a reconnect with another seller)
// call it while the connection's secret still exists.
func (s *Subscriber) Unsubscribe(ctx context.Context, c marketplace.Connection) error {
	connectionID := c.ID
	t, err := s.store.PushTarget(ctx, c.TenantID, connectionID)
	if errors.Is(err, marketplace.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	if t.SubscriptionID == "" {
		return nil
	}
	if err := s.deleteAtAmazon(ctx, t, t.SubscriptionID); err != nil && !errors.Is(err, spapi.ErrNotFound) {
		return fmt.Errorf("unsubscribe %s: %w", connectionID, err)
	}
	if err := s.store.ClearSubscription(ctx, t.ConnectionID, t.SubscriptionID); err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	s.log.InfoContext(ctx, "push subscription deleted", "connection_id", t.ConnectionID, "subscription_id", t.SubscriptionID)
	return nil
}

// deleteAtAmazon calls deleteSubscriptionById with the grantless token,
// within the connection's budget for it.
func (s *Subscriber) deleteAtAmazon(ctx context.Context, t marketplace.PushTarget, subscriptionID string) error {
	return s.seller.CallGrantless(ctx, t.SellerAccount, spapi.NotificationsScope, spapi.OpDeleteSubscriptionByID, NotificationsPlan,
		func(endpoint string, tokens spapi.Tokens) (float64, error) {
			return 0, s.destinations.api.DeleteSubscriptionByID(ctx, endpoint, tokens, spapi.NotificationTypeOrderChange, subscriptionID)
		})
}

// safeError is err as pushError and the logs keep it (at most 500 bytes).
func safeError(err error) string { return sellerapi.ErrorText(err, 500) }
