package replies_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/replies"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

// downQueue is an outbound queue that refuses every job (SQS unavailable).
type downQueue struct{}

func (downQueue) Enqueue(context.Context, reply.Job) error { return errors.New("sqs: 503") }

// TestSweepStrandedReplies: a reply stored but never enqueued (the route
// answered 503 and the agent did not retry), and one whose sender died
// holding its claim with its job gone, are each enqueued again once they
// are past StrandedAfter, never before, and sent once; a settled reply is
// never swept.
func TestSweepStrandedReplies(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	sweep := replies.NewSweep(w.store, w.jobs, 0, nil)
	swept := func(want ...string) {
		t.Helper()
		before := len(w.jobs.list)
		n, err := sweep.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, j := range w.jobs.list[before:] {
			got = append(got, j.ReplyID)
			if j.TenantID != w.tenant {
				t.Fatalf("job %+v for another tenant", j)
			}
		}
		if n != len(want) || len(got) != len(want) {
			t.Fatalf("swept %d %v, want %v", n, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("swept %v, want %v", got, want)
			}
		}
	}

	// Stored, not enqueued.
	_, err := replies.NewQueue(w.store, downQueue{}, reply.DefaultRules(), nil).
		Reply(ctx, reply.Request{TenantID: w.tenant, TicketID: w.ticket, AgentID: "agent-1", Text: "Jamais mis en file"})
	if !errors.Is(err, marketplace.ErrUnavailable) {
		t.Fatalf("enqueue down: %v", err)
	}
	lost := w.outbound()[0].ID
	// A claim whose sender died, its job gone.
	w.clock.Advance(time.Second)
	dead := w.send("Expéditeur mort", "")
	if _, ok, _, err := w.store.ClaimReply(ctx, dead.ReplyID, "dead-sender", time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	w.jobs.list = nil
	// Settled: sent once, nothing to sweep.
	done := w.send("Envoyée", "")
	if err := w.sender.Handle(ctx, w.jobs.list[0]); err != nil {
		t.Fatal(err)
	}
	w.jobs.list = nil

	swept() // live jobs may still bring them back
	w.clock.Advance(replies.StrandedAfter - 2*time.Minute)
	swept()
	w.clock.Advance(3 * time.Minute)
	swept(lost, dead.ReplyID)

	for _, job := range w.jobs.list {
		if err := w.sender.Handle(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{lost, dead.ReplyID, done.ReplyID} {
		if n := w.mailsTo(id); n != 1 {
			t.Fatalf("reply %s: %d mails", id, n)
		}
	}
	w.clock.Advance(time.Hour)
	swept()
}
