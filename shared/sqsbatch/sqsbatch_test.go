package sqsbatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keybuzz/keybuzz-amazon/shared/logging"
)

func TestHandle(t *testing.T) {
	records := func(n int) events.SQSEvent {
		var ev events.SQSEvent
		for i := range n {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: "m" + strconv.Itoa(i), Body: strconv.Itoa(i)})
		}
		return ev
	}
	cases := []struct {
		name     string
		n        int
		parallel int
		fail     func(body string) bool
		want     []string
	}{
		{"all succeed", 5, 4, func(string) bool { return false }, nil},
		{"only the failed records are reported", 6, 2, func(b string) bool { return b == "1" || b == "4" }, []string{"m1", "m4"}},
		{"every record fails", 3, 1, func(string) bool { return true }, []string{"m0", "m1", "m2"}},
		{"no records", 0, 4, func(string) bool { return true }, nil},
		{"parallel below one still runs", 2, 0, func(b string) bool { return b == "0" }, []string{"m0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var running, peak atomic.Int32
			res := run(context.Background(), records(c.n), c.parallel, func(ctx context.Context, r events.SQSMessage) error {
				if got := logging.RequestID(ctx); got != r.MessageId {
					t.Errorf("request id %q, want the record's %q", got, r.MessageId)
				}
				n := running.Add(1)
				defer running.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				if c.fail(r.Body) {
					return errors.New("transient")
				}
				return nil
			})
			var got []string
			for _, f := range res.BatchItemFailures {
				got = append(got, f.ItemIdentifier)
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Fatalf("failures %v, want %v", got, c.want)
			}
			if p := int(peak.Load()); p > max(c.parallel, 1) {
				t.Fatalf("%d records at once, want at most %d", p, max(c.parallel, 1))
			}
			if b, _ := json.Marshal(res); string(b) == `{"batchItemFailures":null}` {
				t.Fatal("the failures marshal as null; want an explicit list")
			}
		})
	}
}

// consumer records what Handler fed it.
type consumer struct {
	mu       sync.Mutex
	got      []string // id/body/receives
	batches  int
	done     int
	batchful bool
}

func (c *consumer) Consume(_ context.Context, id, body string, receives int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, fmt.Sprintf("%s/%s/%d", id, body, receives))
	if body == "fail" {
		return errors.New("transient")
	}
	return nil
}

type batchConsumer struct{ *consumer }

func (b batchConsumer) ConsumeBatch(context.Context) (func(context.Context, string, string, int) error, func(context.Context)) {
	b.mu.Lock()
	b.batches++
	b.mu.Unlock()
	return b.Consume, func(context.Context) { b.mu.Lock(); b.done++; b.mu.Unlock() }
}

// TestHandler: each record reaches the consumer with its id, body and
// receive count; the failed ones are reported; a BatchConsumer is asked
// once per event and told once when the event is handled.
func TestHandler(t *testing.T) {
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "a", Body: "ok", Attributes: map[string]string{"ApproximateReceiveCount": "3"}},
		{MessageId: "b", Body: "fail"},
	}}
	for _, batch := range []bool{false, true} {
		c := &consumer{}
		var h LambdaHandler
		if batch {
			h = Handler(batchConsumer{c}, WithParallel(1))
		} else {
			h = Handler(c, WithParallel(1))
		}
		res, err := h(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.BatchItemFailures) != 1 || res.BatchItemFailures[0].ItemIdentifier != "b" {
			t.Fatalf("batch %v: failures %+v, want b only", batch, res.BatchItemFailures)
		}
		slices.Sort(c.got)
		if want := []string{"a/ok/3", "b/fail/0"}; !slices.Equal(c.got, want) {
			t.Fatalf("batch %v: consumed %v, want %v", batch, c.got, want)
		}
		if want := map[bool]int{false: 0, true: 1}[batch]; c.batches != want || c.done != want {
			t.Fatalf("batch %v: %d batches begun, %d done; want %d", batch, c.batches, c.done, want)
		}
	}
}
