package push_test

import (
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// Every ORDER_CHANGE shape the sandbox sends (both levels, each change
// type, full, minimal and null Summaries, several ChangeReasons) reaches
// the intake: buyers' cancellation requests are stored, status and tip
// changes recorded IGNORED, nothing fails or is retried.
func TestEveryOrderChangeVariantHandled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.connect(1)
	e.onConnected(s)
	e.poll(s)
	e.SB.SetOrderChangeFilter(s.ID, nil) // every change type, not only the connector's

	var plain, asked []string
	for i := 0; i < 6; i++ { // six in a row of each kind: each kind meets all six shapes
		if _, err := e.SB.AddOrder(s.ID, "", true); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(2 * time.Second)
	}
	for i := 0; i < 12; i++ {
		id, err := e.SB.AddOrder(s.ID, "", false) // no notification: nothing asked yet
		if err != nil {
			t.Fatal(err)
		}
		if i < 6 {
			asked = append(asked, id)
		} else {
			plain = append(plain, id)
		}
	}
	for _, id := range asked {
		if _, err := e.SB.AddCancellationRequest(s.ID, id, "Delivery too slow"); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(2 * time.Second)
	}
	for _, id := range plain {
		if err := e.SB.SetOrderStatus(s.ID, id, "SHIPPED"); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range plain {
		if err := e.SB.SetDeliveryTip(s.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	st := e.SB.NotificationStats()
	if st.Published != 24 {
		t.Fatalf("sandbox published %d, want 24", st.Published)
	}
	e.waitDelivered(st.Due())
	if records, failed := e.drain(1); records != 24 || failed != 0 {
		t.Fatalf("drained %d records, %d failed; want 24, none failed", records, failed)
	}
	e.CheckExactlyOnce(s, t0.Add(-2*24*time.Hour)) // the poll's look-back and every request since
	o := e.outcomes()
	if o[string(marketplace.OutcomeStored)] != 12 || o[string(marketplace.OutcomeIgnored)] != 12 || len(o) != 2 {
		t.Errorf("outcomes %v, want 12 STORED and 12 IGNORED", o)
	}
}
