// Package pollsender sends the poll queue's messages (shared/pollqueue):
// batches of 10 per SendMessageBatch call with a bounded number of calls in
// flight, each entry tried up to 3 times.
package pollsender

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keybuzz/keybuzz-amazon/shared/awsenv"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
)

// BatchAPI is the part of the SQS client the sender uses.
type BatchAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Sender sends messages to one queue.
type Sender struct {
	api      BatchAPI
	queueURL string
	parallel int
	attempts int
	backoff  func(attempt int) time.Duration
}

// Option configures a Sender.
type Option func(*Sender)

// WithParallel sets how many SendMessageBatch calls are in flight at once
// (default 12; n <= 0 keeps it).
func WithParallel(n int) Option {
	return func(s *Sender) {
		if n > 0 {
			s.parallel = n
		}
	}
}

// NewSender returns a sender to queueURL that tries each entry up to 3
// times.
func NewSender(api BatchAPI, queueURL string, opts ...Option) *Sender {
	s := &Sender{api: api, queueURL: queueURL, parallel: 12, attempts: 3,
		backoff: func(a int) time.Duration { return time.Duration(a) * 100 * time.Millisecond }}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Send reads msgs until it is closed, sends them in batches of 10 (a batch
// leaves early when no message is waiting) and returns once all are done.
func (s *Sender) Send(ctx context.Context, msgs <-chan pollqueue.Message) pollqueue.Result {
	batches := make(chan []pollqueue.Message, s.parallel)
	var (
		mu  sync.Mutex
		res pollqueue.Result
		wg  sync.WaitGroup
	)
	for range s.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				sent, failed, err := s.sendBatch(ctx, b)
				mu.Lock()
				res.Sent += sent
				res.Failed = append(res.Failed, failed...)
				if err != nil {
					res.Err = err
				}
				mu.Unlock()
			}
		}()
	}
	var batch []pollqueue.Message
	flush := func() {
		if len(batch) > 0 {
			batches <- batch
			batch = nil
		}
	}
	for open := true; open; {
		var m pollqueue.Message
		if len(batch) == 0 {
			m, open = <-msgs
		} else {
			select {
			case m, open = <-msgs:
			default:
				flush()
				continue
			}
		}
		if !open {
			break
		}
		batch = append(batch, m)
		if len(batch) == 10 {
			flush()
		}
	}
	flush()
	close(batches)
	wg.Wait()
	return res
}

// sendBatch sends up to 10 messages, retrying the entries SQS refused.
func (s *Sender) sendBatch(ctx context.Context, batch []pollqueue.Message) (sent int, failed []pollqueue.Message, lastErr error) {
	pending := batch
	for attempt := 1; len(pending) > 0 && attempt <= s.attempts; attempt++ {
		if attempt > 1 {
			t := time.NewTimer(s.backoff(attempt - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return sent, pending, ctx.Err()
			case <-t.C:
			}
		}
		entries := make([]types.SendMessageBatchRequestEntry, len(pending))
		for i, m := range pending {
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(m.Encode())}
		}
		out, err := s.api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.queueURL), Entries: entries})
		if err != nil {
			lastErr = fmt.Errorf("send message batch: %w", err)
			continue // the whole batch again
		}
		sent += len(out.Successful)
		var retry []pollqueue.Message
		for _, f := range out.Failed {
			i, err := strconv.Atoi(aws.ToString(f.Id))
			if err != nil || i < 0 || i >= len(pending) {
				continue
			}
			lastErr = fmt.Errorf("send message batch entry: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			retry = append(retry, pending[i])
		}
		pending = retry
	}
	return sent, pending, lastErr
}

// NewClient returns an SQS client configured from the function's
// environment (shared/awsenv: AWS_REGION, the execution role's credentials,
// AWS_ENDPOINT_URL_SQS for the emulator).
func NewClient(ctx context.Context) (*sqs.Client, error) {
	cfg, err := awsenv.Config(nil)
	if err != nil {
		return nil, err
	}
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = awsenv.Endpoint(nil, "SQS") }), nil
}
