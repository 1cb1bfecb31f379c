// Package sqsbatch is the queue transport: it adapts Lambda's SQS event
// (ReportBatchItemFailures) to the flows, which never see it. A flow
// consumes one message (its SQS id, its body, how many times SQS delivered
// it) and says whether a redelivery may help; Handler runs the records of
// one event concurrently up to a bound, each with its own request id in the
// context, and reports exactly the records whose handling failed, so SQS
// retries them alone (and, after the queue's maxReceiveCount, moves them to
// its dead-letter queue).
package sqsbatch

import (
	"context"
	"log/slog"
	"strconv"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/keybuzz/keybuzz-amazon/shared/logging"
)

// Consumer handles one message of a queue. receives is SQS's
// ApproximateReceiveCount (0 when unknown). It returns an error only when
// a redelivery may succeed: a message no retry can fix (a malformed body,
// once recorded) returns nil.
type Consumer interface {
	Consume(ctx context.Context, messageID, body string, receives int) error
}

// BatchConsumer is a Consumer that shares work among the records of one
// event: ConsumeBatch returns the function that consumes this event's
// records and the one called once they are all handled.
type BatchConsumer interface {
	Consumer
	ConsumeBatch(ctx context.Context) (consume func(ctx context.Context, messageID, body string, receives int) error, done func(ctx context.Context))
}

// Option configures a Handler.
type Option func(*options)

type options struct {
	parallel int
	delayer  Delayer
	log      *slog.Logger
}

// DefaultParallel is how many records of one event are handled at once.
const DefaultParallel = 4

// WithParallel handles n records at once (default DefaultParallel; n <= 0
// keeps it).
func WithParallel(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.parallel = n
		}
	}
}

// LambdaHandler is the signature lambda.Start takes for an SQS event source
// mapping with ReportBatchItemFailures.
type LambdaHandler func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)

// Handler returns the Lambda handler that feeds c every record of an event
// (options: WithParallel, WithDelayer). It never fails the whole batch.
func Handler(c Consumer, opts ...Option) LambdaHandler {
	o := options{parallel: DefaultParallel, log: slog.Default()}
	for _, f := range opts {
		f(&o)
	}
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		if lc, ok := lambdacontext.FromContext(ctx); ok && logging.RequestID(ctx) == "" {
			ctx = logging.WithRequestID(ctx, lc.AwsRequestID)
		}
		consume, done := c.Consume, func(context.Context) {}
		if b, ok := c.(BatchConsumer); ok {
			consume, done = b.ConsumeBatch(ctx)
		}
		res := run(ctx, ev, o.parallel, func(ctx context.Context, r events.SQSMessage) error {
			receives, _ := strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
			err := consume(ctx, r.MessageId, r.Body, receives)
			o.delay(ctx, r, err)
			return err
		})
		done(ctx)
		return res, nil
	}
}

// run calls each for every record of ev, at most parallel at once (at
// least one), and returns the records for which it returned an error as
// batch item failures. The response's slice is never nil, so it marshals
// as [].
func run(ctx context.Context, ev events.SQSEvent, parallel int, each func(ctx context.Context, r events.SQSMessage) error) events.SQSEventResponse {
	var (
		mu       sync.Mutex
		failures = []events.SQSBatchItemFailure{}
		wg       sync.WaitGroup
		sem      = make(chan struct{}, max(parallel, 1))
	)
	for _, r := range ev.Records {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := each(logging.WithRequestID(ctx, r.MessageId), r); err != nil {
				mu.Lock()
				failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return events.SQSEventResponse{BatchItemFailures: failures}
}
