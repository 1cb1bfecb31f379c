// Package sqsbatch runs the records of one SQS event the way every SQS
// consumer of the connector does with ReportBatchItemFailures: records are
// handled concurrently up to a bound, each with its own request id in the
// context, and exactly the records whose handling failed are reported, so
// SQS retries them alone (and, after the queue's maxReceiveCount, moves
// them to its dead-letter queue).
package sqsbatch

import (
	"context"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/keybuzz/keybuzz-amazon/shared/logging"
)

// Handle calls each for every record of ev, at most parallel at once (at
// least one), and returns the records for which it returned an error as
// batch item failures. each should return nil for a record no retry can
// fix (a malformed body, once recorded): only transient failures are worth
// a redelivery. The response's slice is never nil, so it marshals as [].
func Handle(ctx context.Context, ev events.SQSEvent, parallel int, each func(ctx context.Context, r events.SQSMessage) error) events.SQSEventResponse {
	if lc, ok := lambdacontext.FromContext(ctx); ok && logging.RequestID(ctx) == "" {
		ctx = logging.WithRequestID(ctx, lc.AwsRequestID)
	}
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
