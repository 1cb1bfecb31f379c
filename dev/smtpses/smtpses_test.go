package smtpses_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	smtp "github.com/emersion/go-smtp"

	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
)

type fakeAWS struct {
	mu      sync.Mutex
	objects map[string][]byte
	sent    []string
}

func (f *fakeAWS) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, _ := io.ReadAll(in.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[*in.Bucket+"/"+*in.Key] = b
	return &s3.PutObjectOutput{}, nil
}

func (f *fakeAWS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, *in.Message)
	return &sns.PublishOutput{}, nil
}

// The receiver stores the mail, then notifies with SES's shape; other
// domains are refused with 550; the local verdict header sets verdicts.
func TestReceiverPlaysTheReceiptRule(t *testing.T) {
	aws := &fakeAWS{objects: map[string][]byte{}}
	srv, err := smtpses.Start("127.0.0.1:0", smtpses.Config{Domain: "in.example", Bucket: "b", Prefix: "raw/", TopicArn: "arn:t", S3: aws, SNS: aws})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	raw := []byte("From: \"A - Amazon Marketplace\" <a@marketplace.amazon.fr>\r\nTo: x@in.example\r\nSubject: s\r\nMessage-ID: <m1@x>\r\n" +
		smtpses.VerdictHeader + ": dmarc=FAIL, spam=fail\r\n\r\nhello\r\n")
	if err := smtpses.Send(srv.Addr(), "bounce@x", []string{"X@In.Example"}, raw); err != nil {
		t.Fatal(err)
	}
	var se *smtp.SMTPError
	if err := smtpses.Send(srv.Addr(), "bounce@x", []string{"y@other.example"}, raw); !errors.As(err, &se) || se.Code != 550 {
		t.Errorf("other domain: %v, want 550", err)
	}
	if len(aws.sent) != 1 || len(aws.objects) != 1 {
		t.Fatalf("sent %d, objects %d", len(aws.sent), len(aws.objects))
	}
	var n sesmail.Notification
	if err := json.Unmarshal([]byte(aws.sent[0]), &n); err != nil {
		t.Fatal(err)
	}
	key := n.Receipt.Action.BucketName + "/" + n.Receipt.Action.ObjectKey
	if _, ok := aws.objects[key]; !ok || n.Receipt.Action.ObjectKey != "raw/"+n.Mail.MessageID || n.Receipt.Action.Type != "S3" {
		t.Errorf("action %+v, objects %v", n.Receipt.Action, aws.objects)
	}
	if n.Receipt.DMARCVerdict.Status != "FAIL" || n.Receipt.SpamVerdict.Status != "FAIL" || n.Receipt.SPFVerdict.Status != "PASS" ||
		n.Receipt.DMARCPolicy != "reject" || n.Receipt.Recipients[0] != "x@in.example" || n.Mail.CommonHeaders.MessageID != "<m1@x>" {
		t.Errorf("notification %+v", n)
	}
}
