package replies_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/replies"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

// TestNoticeAppliedOnce: Amazon's notice comes back by mail, and SQS may
// hand the same mail over twice, one after the other or at once. A copy of
// a notice must not fail a second reply to the same buyer: each notice
// (its receipt id) fails one reply, and another notice fails the next.
func TestNoticeAppliedOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var ids []string
	for _, text := range []string{"Première", "Deuxième", "Troisième", "Quatrième"} {
		q := w.send(text, "")
		if err := w.sender.Handle(ctx, reply.Job{ReplyID: q.ReplyID, TenantID: w.tenant}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, q.ReplyID)
	}
	notice := func(id string) replies.Notice {
		return replies.Notice{ID: id, TenantID: w.tenant, Reason: "BUYER_OPTED_OUT", OrderID: "171-1234567-1234567", Alias: w.alias, Text: "opted out"}
	}
	failed := func() map[string]bool {
		t.Helper()
		out := map[string]bool{}
		for _, o := range w.outbound() {
			if o.Status == "FAILED" {
				out[o.ID] = true
			}
		}
		return out
	}

	// One after the other: the copy finds its notice applied.
	for i := 0; i < 2; i++ {
		if found, err := w.events.ApplyNotice(ctx, notice("notice-1")); err != nil || !found {
			t.Fatal(found, err)
		}
	}
	if f := failed(); len(f) != 1 || !f[ids[3]] {
		t.Fatalf("after one notice delivered twice: failed %v, want only the latest reply %s", f, ids[3])
	}
	// Another notice fails the next reply.
	w.clock.Advance(time.Second)
	if _, err := w.events.ApplyNotice(ctx, notice("notice-2")); err != nil {
		t.Fatal(err)
	}
	if f := failed(); len(f) != 2 || !f[ids[2]] {
		t.Fatalf("after a second notice: failed %v", f)
	}
	// Four copies at once: one reply more, not four.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = w.events.ApplyNotice(ctx, notice("notice-3"))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f := failed(); len(f) != 3 || !f[ids[1]] || f[ids[0]] {
		t.Fatalf("after four copies at once: failed %v, want %s too and not %s", f, ids[1], ids[0])
	}
	if n := w.count(`SELECT count(*) FROM "TicketEvent" WHERE "ticketId" = $1 AND "type" = 'OUTBOUND_FAILED'`, w.ticket); n != 3 {
		t.Fatalf("%d OUTBOUND_FAILED events, want 3", n)
	}
}
