// Package pollqueue is the SQS poll queue between pollfanout and polltenant:
// the message body, and a sender that batches messages 10 per
// SendMessageBatch call with a bounded number of calls in flight.
//
// Body (JSON, documented in docs/polling.md):
//
//	{"tenantId":"t-1","connectionId":"c-1","enqueuedAt":"2026-11-27T10:00:00Z"}
package pollqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Message asks polltenant to poll one connection.
type Message struct {
	TenantID     string    `json:"tenantId"`
	ConnectionID string    `json:"connectionId"`
	EnqueuedAt   time.Time `json:"enqueuedAt"`
}

// Encode returns the message body.
func (m Message) Encode() string {
	b, _ := json.Marshal(m) // cannot fail: strings and a time
	return string(b)
}

// ErrMalformed marks a body that is not a valid Message.
var ErrMalformed = errors.New("malformed poll message")

// Decode parses a body; ErrMalformed when it is not JSON or lacks an id.
func Decode(body string) (Message, error) {
	var m Message
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.TenantID == "" || m.ConnectionID == "" {
		return Message{}, fmt.Errorf("%w: tenantId and connectionId are required", ErrMalformed)
	}
	return m, nil
}

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

// Result is what Send did.
type Result struct {
	Sent   int
	Failed []Message // not sent after every attempt
	Err    error     // the last error seen, if any
}

// Send reads msgs until it is closed, sends them in batches of 10 (a batch
// leaves early when no message is waiting) and returns once all are done.
func (s *Sender) Send(ctx context.Context, msgs <-chan Message) Result {
	batches := make(chan []Message, s.parallel)
	var (
		mu  sync.Mutex
		res Result
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
	var batch []Message
	flush := func() {
		if len(batch) > 0 {
			batches <- batch
			batch = nil
		}
	}
	for open := true; open; {
		var m Message
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
func (s *Sender) sendBatch(ctx context.Context, batch []Message) (sent int, failed []Message, lastErr error) {
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
		var retry []Message
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

// NewClient returns an SQS client from the standard AWS configuration
// (AWS_REGION, credentials, AWS_ENDPOINT_URL_SQS for the emulator).
func NewClient(ctx context.Context) (*sqs.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return sqs.NewFromConfig(cfg), nil
}
