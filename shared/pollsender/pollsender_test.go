package pollsender_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
)

// fakeSQS fails the entries whose body is in failOnce the first time.
type fakeSQS struct {
	mu       sync.Mutex
	calls    int
	inFlight int
	maxIn    int
	bodies   map[string]int
	failOnce map[string]bool
	down     bool
}

func (f *fakeSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	f.calls++
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	f.mu.Unlock()
	time.Sleep(time.Millisecond) // overlap calls, to observe the bound
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight--
	if f.down {
		return nil, errors.New("connection refused")
	}
	if len(in.Entries) > 10 {
		return nil, fmt.Errorf("%d entries", len(in.Entries))
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		b := aws.ToString(e.MessageBody)
		if f.failOnce[b] {
			delete(f.failOnce, b)
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again")})
			continue
		}
		f.bodies[b]++
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func TestSenderBatchesRetriesAndBounds(t *testing.T) {
	cases := []struct {
		name       string
		n          int
		failOnce   int
		down       bool
		wantSent   int
		wantFailed int
	}{
		{"1000 messages", 1000, 0, false, 1000, 0},
		{"failed entries retried", 95, 13, false, 95, 0},
		{"queue down", 25, 0, true, 0, 25},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api := &fakeSQS{bodies: map[string]int{}, failOnce: map[string]bool{}, down: c.down}
			var msgs []pollqueue.Message
			for i := 0; i < c.n; i++ {
				m := pollqueue.Message{TenantID: fmt.Sprint("t", i), ConnectionID: fmt.Sprint("c", i)}
				msgs = append(msgs, m)
				if i < c.failOnce {
					api.failOnce[m.Encode()] = true
				}
			}
			ch := make(chan pollqueue.Message)
			go func() {
				for _, m := range msgs {
					ch <- m
				}
				close(ch)
			}()
			res := pollsender.NewSender(api, "q", pollsender.WithParallel(4)).Send(context.Background(), ch)
			if res.Sent != c.wantSent || len(res.Failed) != c.wantFailed {
				t.Fatalf("sent %d failed %d, want %d and %d (err %v)", res.Sent, len(res.Failed), c.wantSent, c.wantFailed, res.Err)
			}
			for b, k := range api.bodies {
				if k != 1 {
					t.Fatalf("%s sent %d times", b, k)
				}
			}
			if api.maxIn > 4 {
				t.Fatalf("%d calls in flight, bound is 4", api.maxIn)
			}
		})
	}
}
