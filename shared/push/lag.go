package push

import (
	"fmt"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// Amazon's read APIs are eventually consistent: a notification can arrive
// before getOrder shows what it announces (a 404 for a new order, or the
// order without the buyer's new cancellation request; AMAZON.md, "Push
// instead of poll"). Such a notification is handed back to the queue to be
// delivered again after a growing delay (the message's visibility, set by
// the queue adapter from RetryLaterError.RetryAfter), and only after
// Backoff.Deliveries deliveries is it recorded as left to the fallback
// poll: an event the intake could still read is never dropped.

// Backoff is how a notification ahead of getOrder is retried.
type Backoff struct {
	// First is the delay before the second delivery; each next one is
	// Factor times longer, up to Max. Defaults 10 s, 3, 5 min.
	First  time.Duration
	Factor int
	Max    time.Duration
	// Deliveries is the delivery at which the intake stops waiting: it
	// records the notification (ORDER_NOT_FOUND or NO_EVENT, "left to the
	// fallback poll") and acknowledges it. Default 5: no more than the
	// queue's maxReceiveCount (MaxReceiveCount, 5 by default), so the record
	// is written before SQS would move the message to the DLQ. With the
	// defaults a change gets 10 + 30 + 90 + 270 s to become readable.
	Deliveries int
}

func (b Backoff) withDefaults() Backoff {
	if b.First <= 0 {
		b.First = 10 * time.Second
	}
	if b.Factor < 1 {
		b.Factor = 3
	}
	if b.Max <= 0 {
		b.Max = 5 * time.Minute
	}
	if b.Deliveries <= 0 {
		b.Deliveries = 5
	}
	return b
}

// delay is the wait before the delivery after the receives-th (1-based).
func (b Backoff) delay(receives int) time.Duration {
	d := b.First
	for i := 1; i < receives && d < b.Max; i++ {
		d *= time.Duration(b.Factor)
	}
	return min(d, b.Max)
}

// WithBackoff sets how an Intake retries a notification getOrder does not
// show yet (default: Backoff's defaults).
func WithBackoff(b Backoff) IntakeOption { return intakeOption(func(o *options) { o.backoff = b }) }

// RetryLaterError hands a notification back to the queue, to be delivered
// again no sooner than RetryAfter (the queue adapter sets the message's
// visibility to it; without one, the queue's own visibility timeout
// applies).
type RetryLaterError struct {
	After  time.Duration
	Reason string
}

func (e *RetryLaterError) Error() string {
	return fmt.Sprintf("%s: deliver again in %s", e.Reason, e.After)
}

// RetryAfter is the delay the queue adapter sets as the message's visibility.
func (e *RetryLaterError) RetryAfter() time.Duration { return e.After }

// announcedEvents are the external ids of the buyer requests a
// notification announces: its items flagged IsBuyerRequestedCancel (the
// same ids poll and push store, spapi.BuyerEvents). any is true when it
// announces a cancellation request without flagging an item (a
// BuyerRequestedChange whose ChangeReason names a cancellation): some
// event must then be in the order.
func announcedEvents(n Notification) (ids []string, any bool) {
	for _, it := range n.Items {
		if it.IsBuyerRequestedCancel {
			ids = append(ids, n.AmazonOrderID+":"+it.OrderItemID+":cancellation")
		}
	}
	any = len(ids) == 0 && n.OrderChangeType == "BuyerRequestedChange" && strings.Contains(strings.ToLower(n.ChangeReason), "cancel")
	return ids, any
}

// missing reports whether the order read lacks a buyer request the
// notification announces: getOrder is behind the notification.
func missing(n Notification, msgs []marketplace.InboundMessage) bool {
	ids, any := announcedEvents(n)
	if any {
		return len(msgs) == 0
	}
	have := map[string]bool{}
	for _, m := range msgs {
		have[m.ExternalID] = true
	}
	for _, id := range ids {
		if !have[id] {
			return true
		}
	}
	return false
}
