package replies_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sesout"
	"github.com/keybuzz/keybuzz-amazon/shared/replies"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
)

// TestSenderApprovalClears: an address Amazon refused as not approved
// stays flagged while no reply from it got through; a reply delivered
// after the refusal clears the flag once reply.NoticeWindow passes with
// no new refusal; a new refusal of that reply flags it again.
func TestSenderApprovalClears(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	addr := strings.ToLower(w.from)
	needed := func() bool {
		t.Helper()
		need, err := w.store.SendersNeedingApproval(ctx, w.tenant)
		if err != nil {
			t.Fatal(err)
		}
		return need[addr] != ""
	}
	// sent sends a reply and returns it with its SES id.
	sent := func(text string) (string, string) {
		t.Helper()
		q := w.send(text, "")
		if err := w.sender.Handle(ctx, reply.Job{ReplyID: q.ReplyID, TenantID: w.tenant}); err != nil {
			t.Fatal(err)
		}
		return q.ReplyID, *w.outbound()[0].ProviderMessageID
	}
	delivered := func(replyID, sesID string) {
		t.Helper()
		now := w.clock.Now()
		body, err := sesout.SNSBody(sesmail.Event{EventType: "Delivery", Mail: sesmail.EventMail{MessageID: sesID, Timestamp: now, Source: w.from,
			Tags: map[string][]string{reply.TagReply: {replyID}, reply.TagTenant: {w.tenant}}},
			Delivery: &sesmail.Delivery{Timestamp: now, SMTPResponse: "250 ok"}}, "sns-"+replyID, "arn", now)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.events.Handle(ctx, body); err != nil {
			t.Fatal(err)
		}
	}
	refused := func() {
		t.Helper()
		if found, err := w.events.ApplyNotice(ctx, replies.Notice{TenantID: w.tenant, Reason: "SENDER_NOT_APPROVED", Alias: w.alias,
			OrderID: "171-1234567-1234567", Text: "not an approved sender"}); err != nil || !found {
			t.Fatal(found, err)
		}
	}

	first, firstSES := sent("Première réponse")
	delivered(first, firstSES)
	w.clock.Advance(time.Minute)
	refused()
	if !needed() {
		t.Fatal("refused address not flagged")
	}
	// Time alone clears nothing: no reply got through since.
	w.clock.Advance(3 * reply.NoticeWindow)
	if !needed() {
		t.Fatal("flag cleared with no reply delivered after the refusal")
	}
	// Approved meanwhile: the next reply is delivered and never refused.
	second, secondSES := sent("Deuxième réponse")
	w.clock.Advance(time.Second)
	delivered(second, secondSES)
	w.clock.Advance(reply.NoticeWindow - time.Minute)
	if !needed() {
		t.Fatal("flag cleared before Amazon's notice could have come")
	}
	w.clock.Advance(2 * time.Minute)
	if needed() {
		t.Fatal("flag still set after a reply got through")
	}
	// Refused again (a third reply): flagged again, whatever came before.
	third, thirdSES := sent("Troisième réponse")
	w.clock.Advance(time.Second)
	delivered(third, thirdSES)
	w.clock.Advance(time.Minute)
	refused()
	if !needed() {
		t.Fatal("a new refusal did not flag the address again")
	}
}
