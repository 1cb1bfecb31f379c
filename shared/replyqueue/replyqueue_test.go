package replyqueue_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/replyqueue"
)

func TestDecode(t *testing.T) {
	j := reply.Job{ReplyID: "c1", TenantID: "t"}
	got, err := replyqueue.Decode(replyqueue.Encode(j))
	if err != nil || got != j {
		t.Fatalf("round trip %v %v", got, err)
	}
	for _, bad := range []string{"", "{}", `{"tenantId":"t"}`, `{"replyId":"c","x":1}`, `{"replyId":"c"} {}`, "null", "[]"} {
		if _, err := replyqueue.Decode(bad); !errors.Is(err, replyqueue.ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestSenderHandler(t *testing.T) {
	h := replyqueue.SenderHandler(func(_ context.Context, j reply.Job) error {
		if j.ReplyID == "retry" {
			return errors.New("later")
		}
		return nil
	}, 2, slog.Default())
	resp, err := h(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "1", Body: `{"replyId":"ok"}`}, {MessageId: "2", Body: `{"replyId":"retry"}`}, {MessageId: "3", Body: `junk`},
	}})
	if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "2" {
		t.Fatalf("%+v %v", resp, err)
	}
}
