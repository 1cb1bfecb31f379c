package push_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsvisibility"
)

// The measured run of docs/push.md: 100 buyer cancellation requests while
// getOrder lags 0 to 30 s behind the notifications (half on new orders,
// which getOrder answers 404, half on older orders, which it shows without
// the request). The notifications go through the SQS emulator to the
// intake as Lambda hands them (sqsbatch.Handler with the visibility
// Delayer); every event is stored by push, none is left to the fallback
// poll, and the fallback poll then finds nothing new.
//
// Time is scaled: the sandbox's and the store's clock run ten times real
// time, and the back-off is the default one divided by ten (1, 3, 9, 27 s
// of real visibility for 10, 30, 90, 270 s), so the run lasts about a
// minute of real time for ten of Amazon's.
func TestPushStoresEveryEventWithGetOrderLag(t *testing.T) {
	t.Parallel()
	const (
		scale = 10
		total = 100
	)
	e := newEnv(t)
	s := e.pushing(3)
	stop := make(chan struct{})
	var ticker sync.WaitGroup
	ticker.Add(1)
	go func() { // the scaled clock
		defer ticker.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				e.Clock.Advance(scale * 20 * time.Millisecond)
			}
		}
	}()
	var stopOnce sync.Once
	stopClock := func() { stopOnce.Do(func() { close(stop); ticker.Wait() }) }
	defer stopClock()

	intake := push.NewIntake(e.Store, e.gateway(), push.WithClock(e.Clock.Now), push.WithLogger(quiet()),
		push.WithBackoff(push.Backoff{First: time.Second, Factor: 3, Max: 30 * time.Second, Deliveries: 5}))
	var deliveries, retried atomic.Int64
	handler := sqsbatch.Handler(intake, sqsbatch.WithDelayer(sqsvisibility.New(e.sqs)))
	counted := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		resp, err := handler(ctx, ev)
		deliveries.Add(int64(len(ev.Records)))
		retried.Add(int64(len(resp.BatchItemFailures)))
		return resp, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		localpoll.Consumer{SQS: e.sqs, QueueURL: e.queueURL, Handler: counted, Log: quiet(), Name: "ordernotify", BatchSize: 10}.Run(ctx)
	}()

	// Older orders for the requests on existing orders, past any lag.
	var old []string
	for i := 0; i < total/2; i++ {
		id, err := e.SB.AddOrder(s.ID, "", false)
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, id)
	}
	time.Sleep(31 * time.Second / scale)

	lags := []time.Duration{0, 3, 7, 10, 13, 17, 20, 23, 27, 30} // seconds, one per ten events
	start := time.Now()
	for b, lag := range lags {
		e.SB.SetDeliveryFaults(sandbox.DeliveryFaults{GetOrderLag: lag * time.Second})
		for i := 0; i < total/len(lags); i++ {
			if i%2 == 0 {
				if _, err := e.SB.AddOrder(s.ID, "", true); err != nil {
					t.Fatal(err)
				}
			} else if _, err := e.SB.AddCancellationRequest(s.ID, old[b*5+i/2], "Ordered by mistake"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second / scale) // a request every 2 s of sandbox time
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for recorded(e) < total && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	<-done
	elapsed := time.Since(start)

	o := e.outcomes()
	calls := e.SB.Stats(s.ID).Calls[sandbox.OpGetOrder]
	t.Logf("%d events, getOrder lag 0-30 s: outcomes %v; %d deliveries (%d handed back), %d getOrder calls; %s real (%s sandbox)",
		total, o, deliveries.Load(), retried.Load(), calls, elapsed.Round(time.Second), (elapsed * scale).Round(time.Second))
	if o[string(marketplace.OutcomeStored)] != total || len(o) != 1 {
		t.Fatalf("outcomes %v, want every one of %d STORED by push", o, total)
	}
	if retried.Load() == 0 {
		t.Error("no notification was ahead of getOrder: the run proves nothing")
	}
	pushed := e.stored(s).messages
	e.SB.SetDeliveryFaults(sandbox.DeliveryFaults{})
	stopClock()
	e.Clock.Advance(16 * time.Minute)
	res := e.poll(s)
	if res.MessagesCreated != 0 {
		t.Errorf("the fallback poll stored %d events push had not", res.MessagesCreated)
	}
	e.CheckExactlyOnce(s, t0.Add(-2*24*time.Hour))
	t.Logf("stored by push %d (with the first poll's), by the fallback poll %d", pushed, res.MessagesCreated)
}

func recorded(e *env) int {
	n := 0
	for _, c := range e.outcomes() {
		n += c
	}
	return n
}
