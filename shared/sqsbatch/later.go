package sqsbatch

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// A consumer that wants a message back later, not at the queue's visibility
// timeout (a notification ahead of Amazon's eventually consistent reads:
// push.RetryLaterError), returns an error with a RetryAfter method; with a
// Delayer the Handler makes the message invisible for that long before
// reporting it failed, so SQS delivers it again after the delay.

// Delayer sets how long a received message stays invisible (SQS's
// ChangeMessageVisibility; sqsvisibility.Visibility).
type Delayer interface {
	Delay(ctx context.Context, queueARN, receiptHandle string, after time.Duration) error
}

// WithDelayer makes a Handler honour its consumer's RetryAfter through d
// (default: none; the queue's visibility timeout applies).
func WithDelayer(d Delayer) Option { return func(o *options) { o.delayer = d } }

// RetryAfter is the delay err asks for (an error in its chain with a
// RetryAfter() time.Duration method); ok is false when it asks none.
func RetryAfter(err error) (time.Duration, bool) {
	var r interface{ RetryAfter() time.Duration }
	if err == nil || !errors.As(err, &r) {
		return 0, false
	}
	return r.RetryAfter(), true
}

// delay applies the RetryAfter of a failed record. A visibility that cannot
// be set only means the queue's own timeout applies: logged, not fatal.
func (o options) delay(ctx context.Context, r events.SQSMessage, err error) {
	d, ok := RetryAfter(err)
	if !ok || o.delayer == nil || r.ReceiptHandle == "" {
		return
	}
	if derr := o.delayer.Delay(ctx, r.EventSourceARN, r.ReceiptHandle, d); derr != nil {
		o.log.WarnContext(ctx, "message visibility not set; the queue's timeout applies", "retry_after_ms", d.Milliseconds(), "err", derr.Error())
	}
}
