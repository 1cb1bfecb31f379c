// Package localpoll runs the poll pipeline on one machine the way AWS runs
// it: a timer stands for the EventBridge schedule and calls the pollfanout
// handler with a real scheduled event, and a consumer stands for Lambda's
// SQS event source mapping: it long-polls the queue (the fauxqs emulator),
// hands real events.SQSEvent batches to the polltenant handler and deletes
// only the records that did not come back as batch item failures.
package localpoll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
)

// SQSAPI is the part of the SQS client the consumer uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// Config wires the two handlers to a queue.
type Config struct {
	Fanout   func(context.Context, events.EventBridgeEvent) (poll.FanoutResult, error)
	Tenant   func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)
	SQS      SQSAPI
	QueueURL string
	Interval time.Duration // schedule period (MARKETPLACE_POLL_INTERVAL_SECONDS)
	Region   string        // for the events' region fields; "" = eu-west-1
	Log      *slog.Logger  // nil: slog.Default()
	// BatchSize is the records per polltenant invocation (10, SQS's maximum).
	BatchSize int32
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.Region == "" {
		c.Region = "eu-west-1"
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.BatchSize <= 0 || c.BatchSize > 10 {
		c.BatchSize = 10
	}
	return c
}

// Run runs the schedule (a first fan-out at once, then every Interval) and
// the consumer until ctx ends; it returns nil then.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if cfg.Fanout == nil || cfg.Tenant == nil || cfg.SQS == nil || cfg.QueueURL == "" {
		return errors.New("localpoll: Fanout, Tenant, SQS and QueueURL are required")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		consume(ctx, cfg)
	}()
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		fanout(ctx, cfg)
		select {
		case <-ctx.Done():
			<-done
			return nil
		case <-t.C:
		}
	}
}

// Summary is what PollOnce did.
type Summary struct {
	Fanout  poll.FanoutResult
	Batches int
	Records int
	Failed  int // records reported as batch item failures (left in the queue)
}

// PollOnce does one fan-out and drains the queue: it hands batches to the
// polltenant handler until a receive comes back empty. Failed records stay
// in the queue (invisible until their visibility timeout), as in AWS.
func PollOnce(ctx context.Context, cfg Config) (Summary, error) {
	cfg = cfg.withDefaults()
	var s Summary
	res, err := cfg.Fanout(ctx, scheduledEvent(cfg.Region))
	s.Fanout = res
	if err != nil {
		return s, fmt.Errorf("fan-out: %w", err)
	}
	for {
		n, failed, err := receiveBatch(ctx, cfg, 1)
		if err != nil {
			return s, err
		}
		if n == 0 {
			return s, nil
		}
		s.Batches++
		s.Records += n
		s.Failed += failed
	}
}

func fanout(ctx context.Context, cfg Config) {
	res, err := cfg.Fanout(ctx, scheduledEvent(cfg.Region))
	if err != nil && ctx.Err() == nil {
		cfg.Log.ErrorContext(ctx, "local schedule: fan-out failed", "err", err)
		return
	}
	cfg.Log.DebugContext(ctx, "local schedule: fan-out", "claimed", res.Claimed, "sent", res.Sent, "failed", res.Failed)
}

func consume(ctx context.Context, cfg Config) {
	Consumer{SQS: cfg.SQS, QueueURL: cfg.QueueURL, Handler: cfg.Tenant, Region: cfg.Region, Log: cfg.Log, BatchSize: cfg.BatchSize, Name: "polltenant"}.Run(ctx)
}

// Consumer stands for one Lambda SQS event source mapping: it long-polls
// QueueURL and hands real events.SQSEvent batches to Handler, deleting the
// records that did not come back as batch item failures (the others become
// visible again after the queue's visibility timeout, as in AWS).
type Consumer struct {
	SQS       SQSAPI
	QueueURL  string
	Handler   func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)
	Region    string       // "" = eu-west-1
	Log       *slog.Logger // nil: slog.Default()
	BatchSize int32        // 1..10; 0 = 10
	Name      string       // the function's name, for logs
}

// Run consumes until ctx ends.
func (c Consumer) Run(ctx context.Context) {
	cfg := Config{SQS: c.SQS, QueueURL: c.QueueURL, Tenant: c.Handler, Region: c.Region, Log: c.Log, BatchSize: c.BatchSize}.withDefaults()
	for ctx.Err() == nil {
		if _, _, err := receiveBatch(ctx, cfg, 20); err != nil && ctx.Err() == nil {
			cfg.Log.ErrorContext(ctx, "local SQS consumer: receive failed; retrying", "consumer", c.Name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// Drain hands batches to the handler until a receive (waiting wait
// seconds) comes back empty, and returns the records handed and failed.
func (c Consumer) Drain(ctx context.Context, wait int32) (records, failed int, err error) {
	cfg := Config{SQS: c.SQS, QueueURL: c.QueueURL, Tenant: c.Handler, Region: c.Region, Log: c.Log, BatchSize: c.BatchSize}.withDefaults()
	for {
		n, f, err := receiveBatch(ctx, cfg, wait)
		records, failed = records+n, failed+f
		if err != nil || n == 0 {
			return records, failed, err
		}
	}
}

// receiveBatch receives up to BatchSize messages, invokes the polltenant
// handler once with them and deletes the ones that succeeded.
func receiveBatch(ctx context.Context, cfg Config, wait int32) (n, failed int, err error) {
	out, err := cfg.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(cfg.QueueURL),
		MaxNumberOfMessages:         cfg.BatchSize,
		WaitTimeSeconds:             wait,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("receive: %w", err)
	}
	if len(out.Messages) == 0 {
		return 0, 0, nil
	}
	ev := sqsEvent(cfg, out.Messages)
	resp, err := cfg.Tenant(ctx, ev)
	failedIDs := map[string]bool{}
	if err != nil {
		// A handler error fails the whole batch, as in Lambda.
		cfg.Log.ErrorContext(ctx, "local SQS consumer: polltenant failed the whole batch", "err", err)
		for _, m := range out.Messages {
			failedIDs[aws.ToString(m.MessageId)] = true
		}
	}
	for _, f := range resp.BatchItemFailures {
		failedIDs[f.ItemIdentifier] = true
	}
	var del []types.DeleteMessageBatchRequestEntry
	for i, m := range out.Messages {
		if failedIDs[aws.ToString(m.MessageId)] {
			continue
		}
		del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
	}
	if len(del) > 0 {
		dout, err := cfg.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(cfg.QueueURL), Entries: del})
		if err != nil {
			return len(out.Messages), len(failedIDs), fmt.Errorf("delete: %w", err)
		}
		for _, f := range dout.Failed {
			cfg.Log.WarnContext(ctx, "local SQS consumer: delete failed; the message will be redelivered", "code", aws.ToString(f.Code))
		}
	}
	return len(out.Messages), len(failedIDs), nil
}

// sqsEvent builds the event Lambda's SQS event source mapping would send.
func sqsEvent(cfg Config, msgs []types.Message) events.SQSEvent {
	arn := queueARN(cfg.Region, cfg.QueueURL)
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, m := range msgs {
		ev.Records[i] = events.SQSMessage{
			MessageId:      aws.ToString(m.MessageId),
			ReceiptHandle:  aws.ToString(m.ReceiptHandle),
			Body:           aws.ToString(m.Body),
			Md5OfBody:      aws.ToString(m.MD5OfBody),
			Attributes:     m.Attributes,
			EventSource:    "aws:sqs",
			EventSourceARN: arn,
			AWSRegion:      cfg.Region,
		}
	}
	return ev
}

// queueARN derives arn:aws:sqs:<region>:<account>:<name> from a queue URL
// (http://host/<account>/<name>).
func queueARN(region, queueURL string) string {
	parts := strings.Split(strings.TrimRight(queueURL, "/"), "/")
	if len(parts) < 2 {
		return ""
	}
	return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", region, parts[len(parts)-2], parts[len(parts)-1])
}

// QueueURL looks a queue up by its ARN (arn:aws:sqs:<region>:<account>:<name>).
func QueueURL(ctx context.Context, client *sqs.Client, arn string) (string, error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 {
		return "", fmt.Errorf("not an SQS queue ARN: %q", arn)
	}
	out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(parts[5]), QueueOwnerAWSAccountId: aws.String(parts[4])})
	if err != nil {
		return "", fmt.Errorf("queue %s: %w", arn, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// scheduledEvent is what EventBridge sends a scheduled rule's target.
func scheduledEvent(region string) events.EventBridgeEvent {
	return events.EventBridgeEvent{
		Version:    "0",
		ID:         devrand.Hex(16),
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		AccountID:  "000000000000",
		Time:       time.Now().UTC(),
		Region:     region,
		Resources:  []string{"arn:aws:events:" + region + ":000000000000:rule/keybuzz-amazon-poll-local"},
		Detail:     json.RawMessage(`{}`),
	}
}
