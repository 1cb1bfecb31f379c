package sqsvisibility

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

type fake struct {
	in *sqs.ChangeMessageVisibilityInput
}

func (f *fake) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	f.in = in
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func TestDelay(t *testing.T) {
	f := &fake{}
	v := New(f)
	if err := v.Delay(context.Background(), "arn:aws:sqs:eu-west-1:123456789012:keybuzz-notifications", "rh", 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(f.in.QueueUrl) != "https://sqs.eu-west-1.amazonaws.com/123456789012/keybuzz-notifications" || f.in.VisibilityTimeout != 3 || aws.ToString(f.in.ReceiptHandle) != "rh" {
		t.Errorf("request %+v", f.in)
	}
	if err := v.Delay(context.Background(), "arn:aws:sqs:eu-west-1:1:q", "rh", 48*time.Hour); err != nil || f.in.VisibilityTimeout != 43200 {
		t.Errorf("a delay past SQS's 12 h: %v %d", err, f.in.VisibilityTimeout)
	}
	if err := v.Delay(context.Background(), "not-an-arn", "rh", time.Second); err == nil {
		t.Error("a malformed ARN was accepted")
	}
	// An emulator's endpoint names the queue by a URL on it.
	c := sqs.New(sqs.Options{Region: "eu-west-1", BaseEndpoint: aws.String("http://127.0.0.1:4566/")})
	if got := New(c).endpoint; got != "http://127.0.0.1:4566" {
		t.Errorf("endpoint %q", got)
	}
}
