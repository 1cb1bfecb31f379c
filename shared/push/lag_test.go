package push_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
)

// receiveOne takes the next notification body off the test's queue.
func (e *env) receiveOne() string {
	e.T.Helper()
	out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.queueURL), WaitTimeSeconds: 2, MaxNumberOfMessages: 1})
	if err != nil || len(out.Messages) != 1 {
		e.T.Fatalf("receive: %v %d", err, len(out.Messages))
	}
	_, _ = e.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(e.queueURL), ReceiptHandle: out.Messages[0].ReceiptHandle})
	return aws.ToString(out.Messages[0].Body)
}

// A notification ahead of getOrder (404 for a new order, or the order
// without the new request) is handed back with a growing delay, stored by
// push once getOrder shows it, and after the back-off's last delivery
// recorded as left to the fallback poll, which then stores it.
func TestNotificationAheadOfGetOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.pushing(1)
	ctx := context.Background()
	e.SB.SetDeliveryFaults(sandbox.DeliveryFaults{GetOrderLag: time.Minute})

	// A new order: 404 on the first delivery, then 30 s (the default
	// back-off's second delay), then stored.
	if _, err := e.SB.AddOrder(s.ID, "", true); err != nil {
		t.Fatal(err)
	}
	body := e.receiveOne()
	var later *push.RetryLaterError
	for receives, want := range map[int]time.Duration{1: 10 * time.Second, 2: 30 * time.Second} {
		res, err := e.intake.Handle(ctx, "m1", body, receives)
		if !errors.As(err, &later) || later.RetryAfter() != want || res.Outcome != push.OutcomeRetryLater {
			t.Fatalf("delivery %d within the lag: %+v %v, want a retry after %s", receives, res, err, want)
		}
	}
	e.Clock.Advance(61 * time.Second)
	if res, err := e.intake.Handle(ctx, "m1", body, 3); err != nil || res.Outcome != marketplace.OutcomeStored {
		t.Fatalf("delivery after the lag: %+v %v, want STORED", res, err)
	}

	// An old order's new request, never readable within the back-off: the
	// last delivery records it for the fallback poll.
	e.SB.SetDeliveryFaults(sandbox.DeliveryFaults{GetOrderLag: time.Hour})
	ev, err := e.SB.AddCancellationRequest(s.ID, oldOrder(t, e, s), "Changed my mind")
	if err != nil {
		t.Fatal(err)
	}
	body = e.receiveOne()
	if _, err := e.intake.Handle(ctx, "m2", body, 4); !errors.As(err, &later) {
		t.Fatalf("fourth delivery: %v, want a retry", err)
	}
	res, err := e.intake.Handle(ctx, "m2", body, 5)
	if err != nil || res.Outcome != marketplace.OutcomeNoEvent {
		t.Fatalf("last delivery: %+v %v, want NO_EVENT recorded", res, err)
	}
	var detail string
	e.Pool.QueryRow(ctx, `SELECT "detail" FROM keybuzz_amazon."Notification" WHERE "outcome" = 'NO_EVENT'`).Scan(&detail)
	if !strings.Contains(detail, "left to the fallback poll") {
		t.Errorf("detail %q", detail)
	}
	e.SB.SetDeliveryFaults(sandbox.DeliveryFaults{})
	e.Clock.Advance(16 * time.Minute)
	e.poll(s)
	if _, ok := e.stored(s).bodies[ev.OrderID+":"+ev.OrderItemID+":cancellation"]; !ok {
		t.Errorf("the fallback poll did not store %s", ev.OrderID)
	}
	e.CheckExactlyOnce(s, t0.Add(-2*24*time.Hour))
}

// oldOrder is an order of the seller without a cancellation request, placed
// before the test.
func oldOrder(t *testing.T, e *env, s seller) string {
	t.Helper()
	id, err := e.SB.AddOrder(s.ID, "", false)
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(2 * time.Hour) // older than any lag the test sets
	return id
}
