package push_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
)

// The first check, on the real stack: a connected tenant is
// subscribed; a buyer's cancellation request reaches SQS, the intake reads
// the order and stores the ticket with getOrder's cancel reason; the same
// event found later by the fallback poll creates nothing new; a duplicate
// delivery creates nothing either.
func TestPushThenPollStoresOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := e.connect(1)
	e.onConnected(s)

	pt, err := e.Store.PushTarget(ctx, s.TenantID, s.ConnectionID)
	if err != nil || pt.SubscriptionID == "" {
		t.Fatalf("after connect: %+v %v, want a subscription", pt, err)
	}
	if got := e.SB.Subscriptions(s.ID)["ORDER_CHANGE"]; got != pt.SubscriptionID {
		t.Fatalf("sandbox subscription %q, stored %q", got, pt.SubscriptionID)
	}
	// The first poll syncs the look-back window and, push being live,
	// schedules the next poll at the fallback interval.
	e.poll(s)
	var next time.Time
	e.Pool.QueryRow(ctx, `SELECT "nextPollAt" FROM keybuzz_amazon."Connection" WHERE "connectionId" = $1`, s.ConnectionID).Scan(&next)
	if want := e.Clock.Now().Add(15*time.Minute - 30*time.Second); !next.Equal(want) { // less the schedule's jitter
		t.Errorf("nextPollAt %v, want the fallback interval (%v)", next, want)
	}
	before := e.stored(s)

	orderID, err := e.SB.AddOrder(s.ID, "", false)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := e.SB.AddCancellationRequest(s.ID, orderID, "Delivery date is too late")
	if err != nil {
		t.Fatal(err)
	}
	e.waitDelivered(1)
	if n, failed := e.drain(1); n != 1 || failed != 0 {
		t.Fatalf("drained %d records, %d failed; want 1, 0", n, failed)
	}
	ext := ev.OrderID + ":" + ev.OrderItemID + ":cancellation"
	after := e.stored(s)
	body, ok := after.bodies[ext]
	if !ok {
		t.Fatalf("no ExternalMessage %s after the notification", ext)
	}
	if !strings.Contains(body, "Reason: Delivery date is too late") {
		t.Errorf("body %q lacks getOrder's cancel reason", body)
	}
	if after.messages != before.messages+1 || after.tickets != before.tickets+1 {
		t.Errorf("push created %d messages, %d tickets; want 1, 1", after.messages-before.messages, after.tickets-before.tickets)
	}
	var name, email string
	e.Pool.QueryRow(ctx, `SELECT "customerName", COALESCE("customerEmail", '') FROM "Ticket" WHERE "tenantId" = $1 AND "externalId" = $2`, s.TenantID, orderID).Scan(&name, &email)
	// getOrder gives buyerEmail for a seller-fulfilled order only.
	if name == "" || strings.Contains(email, "@marketplace.amazon.") != e.SB.SellerFulfilled(s.ID, orderID) {
		t.Errorf("ticket customer %q <%s>: want getOrder's buyer (an address only for a seller-fulfilled order)", name, email)
	}

	// Polling finds the same event (once searchOrders' window covers it).
	e.Clock.Advance(16 * time.Minute)
	if res := e.poll(s); res.EventsSeen == 0 || res.MessagesCreated != 0 {
		t.Errorf("fallback poll: %+v, want the event seen and nothing created", res)
	}
	e.CheckExactlyOnce(s, t0.Add(-2*24*time.Hour))

	// Amazon delivers at least once: a duplicate changes nothing.
	e.SB.SetDeliveryFaults(sandbox.DeliveryFaults{DuplicateEvery: 1})
	if _, err := e.SB.AddCancellationRequest(s.ID, orderID, "Changed mind about purchase"); err != nil {
		// every item of a one-item order has its request already: add another order
		orderID, _ = e.SB.AddOrder(s.ID, "", true)
	}
	e.waitDelivered(3)
	e.drain(1)
	e.CheckExactlyOnce(s, t0.Add(-2*24*time.Hour))
	if o := e.outcomes(); o[string(marketplace.OutcomeStored)] != 2 {
		t.Errorf("outcomes %v, want 2 STORED", o)
	}
	var received int
	e.Pool.QueryRow(ctx, `SELECT max("receivedCount") FROM keybuzz_amazon."Notification"`).Scan(&received)
	if received != 2 {
		t.Errorf("max receivedCount %d, want 2 (the duplicate is counted on its notification)", received)
	}
	st, err := e.Store.PushStatus(ctx, s.ConnectionID)
	if err != nil || !st.Live || st.LastNotificationAt == nil {
		t.Errorf("push status %+v %v: want live with a last notification", st, err)
	}
}

// With every fourth notification dropped (and others duplicated, delayed
// and out of order), many events end stored exactly once: the fallback
// poll catches the dropped ones.
func TestPushSoakWithDroppedNotifications(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.pushing(2)

	e.SB.SetDeliveryFaults(sandbox.DeliveryFaults{DropEvery: 4, DuplicateEvery: 5, ReorderEvery: 7, DelayEvery: 9, Delay: 50 * time.Millisecond})
	// Buyers ask every 2 s (getOrder's budget refills at 0.5/s); the
	// consumer drains every ten requests.
	const events = 60
	for i := 1; i <= events; i++ {
		if _, err := e.SB.AddOrder(s.ID, "", true); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(2 * time.Second)
		if i%10 == 0 {
			st := e.SB.NotificationStats()
			e.waitDelivered(st.Due())
			if _, failed := e.drain(1); failed != 0 {
				t.Fatalf("after %d requests: %d records failed", i, failed)
			}
		}
	}
	st := e.SB.NotificationStats()
	if st.Published != events || st.Dropped != events/4 {
		t.Fatalf("sandbox %+v, want %d published, %d dropped", st, events, events/4)
	}
	pushed := e.stored(s)

	e.Clock.Advance(16 * time.Minute)
	res := e.poll(s)
	e.CheckExactlyOnce(s, t0.Add(-2*24*time.Hour))
	if got := e.stored(s).messages - pushed.messages; got != events/4 || res.MessagesCreated != events/4 {
		t.Errorf("the fallback poll created %d (%d reported), want the %d dropped", got, res.MessagesCreated, events/4)
	}
	if o := e.outcomes(); o[string(marketplace.OutcomeStored)] != events-events/4 {
		t.Errorf("outcomes %v, want %d STORED", o, events-events/4)
	}
}

// Several containers at once find or create one destination: Amazon keeps
// one per queue, the database the first id, and every caller gets it.
func TestDestinationOnceAcrossContainers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := make([]string, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A container of its own: its own grantless token cache.
			d := push.NewDestinations(e.Store, e.secrets, e.api, e.gateway(), e.queueARN)
			ids[i], errs[i] = d.ID(context.Background(), "", "")
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] == "" || ids[i] != ids[0] {
			t.Fatalf("container %d: %q %v (container 0: %q)", i, ids[i], errs[i], ids[0])
		}
	}
	var rows int
	e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM keybuzz_amazon."NotificationDestination"`).Scan(&rows)
	if rows != 1 {
		t.Errorf("%d destination rows, want 1", rows)
	}
	if c := e.SB.Stats("").Calls; c["createDestination"] < 1 || c["createDestination"] > 8 {
		t.Errorf("grantless calls %v", c)
	}
}

// A subscription failure never fails Connect: the connection stays polled
// at the normal interval, the failure is on the connection, and a poll
// after retryAfter subscribes it; disconnecting deletes it at Amazon.
func TestSubscriptionFailureIsRetriedByThePoller(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := e.connect(3)
	e.SB.SetRatePlan(s.ID, "createSubscription", 0, 1) // one call, then 429s
	e.onConnected(s)
	if err := e.subscriber.Unsubscribe(ctx, marketplace.Connection{ID: s.ConnectionID, TenantID: s.TenantID}); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	if subs := e.SB.Subscriptions(s.ID); len(subs) != 0 {
		t.Fatalf("sandbox still has %v after unsubscribe", subs)
	}
	e.onConnected(s) // Amazon answers 429
	st, _ := e.Store.PushStatus(ctx, s.ConnectionID)
	if st.Live || st.Error == "" {
		t.Fatalf("push status %+v: want not live, with the failure", st)
	}
	// Due one interval after the claim (the message's enqueuedAt, now) less
	// the schedule's jitter (half the one-minute period).
	if res := e.poll(s); !res.NextPollAt.Equal(e.Clock.Now().Add(time.Minute - 30*time.Second)) {
		t.Errorf("next poll %v, want the normal interval", res.NextPollAt)
	}
	e.SB.SetRatePlan(s.ID, "createSubscription", 1, 5)
	e.Clock.Advance(11 * time.Minute)
	if res := e.poll(s); !res.NextPollAt.Equal(e.Clock.Now().Add(15*time.Minute - 30*time.Second)) {
		t.Errorf("next poll %v, want the fallback interval once subscribed", res.NextPollAt)
	}
	if st, _ := e.Store.PushStatus(ctx, s.ConnectionID); !st.Live || st.Error != "" {
		t.Errorf("push status %+v: want live, error cleared", st)
	}
}

// A disconnect whose deleteSubscriptionById failed leaves the DISABLED
// connection with its subscription: the next notification for it is
// dropped, nothing stored, and ends the subscription at Amazon; without an
// Unsubscriber the subscription stays.
func TestLeftoverSubscriptionOfADisconnectedSellerIsEnded(t *testing.T) {
	t.Parallel()
	for _, withUnsubscriber := range []bool{true, false} {
		t.Run(fmt.Sprintf("unsubscriber=%v", withUnsubscriber), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			s := e.connect(2)
			e.onConnected(s)
			if len(e.SB.Subscriptions(s.ID)) != 1 {
				t.Fatalf("sandbox subscriptions %v, want one", e.SB.Subscriptions(s.ID))
			}
			// What a disconnect leaves when its unsubscribe failed.
			if _, err := e.Pool.Exec(ctx, `UPDATE "MarketplaceConnection" SET "status" = 'DISABLED' WHERE "id" = $1`, s.ConnectionID); err != nil {
				t.Fatal(err)
			}
			if !withUnsubscriber {
				e.intake = push.NewIntake(e.Store, e.gateway(),
					push.WithClock(e.Clock.Now), push.WithLogger(quiet()))
			}
			orderID, err := e.SB.AddOrder(s.ID, "", true)
			if err != nil {
				t.Fatal(err)
			}
			e.waitDelivered(1)
			if records, failed := e.drain(1); records != 1 || failed != 0 {
				t.Fatalf("drained %d records, %d failed", records, failed)
			}
			var stored int
			var subscription *string
			e.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM "ExternalMessage" WHERE "tenantId" = $1 AND "orderId" = $2),
				(SELECT "pushSubscriptionId" FROM keybuzz_amazon."Connection" WHERE "connectionId" = $3)`, s.TenantID, orderID, s.ConnectionID).Scan(&stored, &subscription)
			if stored != 0 {
				t.Fatalf("a disconnected seller's notification stored %d messages", stored)
			}
			left := len(e.SB.Subscriptions(s.ID))
			if withUnsubscriber && (left != 0 || subscription != nil) {
				t.Fatalf("after the notification: %d subscriptions at Amazon, recorded %v; want none", left, subscription)
			}
			if !withUnsubscriber && (left != 1 || subscription == nil) {
				t.Fatalf("without an unsubscriber: %d subscriptions at Amazon, recorded %v; want it kept", left, subscription)
			}
		})
	}
}

// Every ORDER_CHANGE shape the sandbox sends (both levels, each change
// type, full, minimal and null Summaries, several ChangeReasons) reaches
// the intake: buyers' cancellation requests are stored, status and tip
// changes recorded IGNORED, nothing fails or is retried.
func TestEveryOrderChangeVariantHandled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.pushing(1)
	e.SB.SetOrderChangeFilter(s.ID, nil) // every change type, not only the connector's

	var plain, asked []string
	for i := 0; i < 6; i++ { // six in a row of each kind: each kind meets all six shapes
		if _, err := e.SB.AddOrder(s.ID, "", true); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(2 * time.Second)
	}
	for i := 0; i < 12; i++ {
		id, err := e.SB.AddOrder(s.ID, "", false) // no notification: nothing asked yet
		if err != nil {
			t.Fatal(err)
		}
		if i < 6 {
			asked = append(asked, id)
		} else {
			plain = append(plain, id)
		}
	}
	for _, id := range asked {
		if _, err := e.SB.AddCancellationRequest(s.ID, id, "Delivery too slow"); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(2 * time.Second)
	}
	for _, id := range plain {
		if err := e.SB.SetOrderStatus(s.ID, id, "SHIPPED"); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range plain {
		if err := e.SB.SetDeliveryTip(s.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	st := e.SB.NotificationStats()
	if st.Published != 24 {
		t.Fatalf("sandbox published %d, want 24", st.Published)
	}
	e.waitDelivered(st.Due())
	if records, failed := e.drain(1); records != 24 || failed != 0 {
		t.Fatalf("drained %d records, %d failed; want 24, none failed", records, failed)
	}
	e.CheckExactlyOnce(s, t0.Add(-2*24*time.Hour)) // the poll's look-back and every request since
	o := e.outcomes()
	if o[string(marketplace.OutcomeStored)] != 12 || o[string(marketplace.OutcomeIgnored)] != 12 || len(o) != 2 {
		t.Errorf("outcomes %v, want 12 STORED and 12 IGNORED", o)
	}
}
