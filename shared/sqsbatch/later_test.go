package sqsbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

type laterErr struct{ d time.Duration }

func (e laterErr) Error() string             { return "later" }
func (e laterErr) RetryAfter() time.Duration { return e.d }

type delays struct {
	mu  sync.Mutex
	got map[string]time.Duration
}

func (d *delays) Delay(_ context.Context, arn, handle string, after time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got[arn+" "+handle] = after
	return nil
}

type consumeFunc func(ctx context.Context, id, body string, receives int) error

func (f consumeFunc) Consume(ctx context.Context, id, body string, receives int) error {
	return f(ctx, id, body, receives)
}

// A record whose error asks for a delay (wrapped or not) has its visibility
// set to it and is reported failed; other failures keep the queue's.
func TestDelayer(t *testing.T) {
	d := &delays{got: map[string]time.Duration{}}
	h := Handler(consumeFunc(func(_ context.Context, id, _ string, _ int) error {
		switch id {
		case "later":
			return fmt.Errorf("wrapped: %w", laterErr{7 * time.Second})
		case "fail":
			return errors.New("transient")
		}
		return nil
	}), WithDelayer(d))
	var ev events.SQSEvent
	for _, id := range []string{"ok", "later", "fail"} {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: id, ReceiptHandle: "rh-" + id, EventSourceARN: "arn:aws:sqs:eu-west-1:1:q"})
	}
	resp, _ := h(context.Background(), ev)
	if len(resp.BatchItemFailures) != 2 {
		t.Fatalf("failures %+v, want later and fail", resp.BatchItemFailures)
	}
	if len(d.got) != 1 || d.got["arn:aws:sqs:eu-west-1:1:q rh-later"] != 7*time.Second {
		t.Errorf("delays %v, want only the later record's 7s", d.got)
	}
	if _, ok := RetryAfter(errors.New("x")); ok {
		t.Error("RetryAfter of a plain error")
	}
}
