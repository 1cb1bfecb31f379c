package sqsbatch

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
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
			res := Handle(context.Background(), records(c.n), c.parallel, func(ctx context.Context, r events.SQSMessage) error {
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
