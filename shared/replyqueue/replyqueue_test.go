package replyqueue_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/replyqueue"
)

type fakeSQS struct{ in *sqs.SendMessageInput }

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.in = in
	return &sqs.SendMessageOutput{}, nil
}

func TestEnqueue(t *testing.T) {
	f := &fakeSQS{}
	if err := replyqueue.NewJobs(f, "http://q/replies").Enqueue(context.Background(), reply.Job{ReplyID: "c1", TenantID: "t"}); err != nil {
		t.Fatal(err)
	}
	j, err := reply.DecodeJob(*f.in.MessageBody)
	if err != nil || j.ReplyID != "c1" || j.TenantID != "t" || *f.in.QueueUrl != "http://q/replies" {
		t.Fatalf("%v %v %v", f.in, j, err)
	}
}
