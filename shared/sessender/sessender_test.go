package sessender

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/smithy-go"

	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func TestClassify(t *testing.T) {
	tests := []struct {
		err       error
		permanent bool
		code      string
	}{
		{&smithy.GenericAPIError{Code: "MessageRejected", Message: "Email address is not verified."}, true, "MessageRejected"},
		{&smithy.GenericAPIError{Code: "MailFromDomainNotVerifiedException"}, true, "MailFromDomainNotVerifiedException"},
		{&smithy.GenericAPIError{Code: "AccountSuspendedException"}, true, "AccountSuspendedException"},
		{&smithy.GenericAPIError{Code: "TooManyRequestsException", Message: "Maximum sending rate exceeded."}, false, "TooManyRequestsException"},
		{&smithy.GenericAPIError{Code: "ThrottlingException"}, false, "ThrottlingException"},
		{&smithy.GenericAPIError{Code: "InternalFailure"}, false, "InternalFailure"},
		{fmt.Errorf("op: %w", context.DeadlineExceeded), false, "timeout"},
		{fmt.Errorf("dial: %w", timeoutErr{}), false, "timeout"},
		{errors.New("connection reset by peer"), false, "unknown"},
	}
	for _, tc := range tests {
		err := Classify(tc.err)
		var se *reply.SendError
		if !errors.As(err, &se) || se.Permanent != tc.permanent || se.Code != tc.code || se.Reason == "" || !errors.Is(err, tc.err) {
			t.Errorf("Classify(%v) = %+v", tc.err, se)
		}
	}
}

type fakeAPI struct {
	in  *sesv2.SendEmailInput
	out *sesv2.SendEmailOutput
}

func (f *fakeAPI) SendEmail(_ context.Context, in *sesv2.SendEmailInput, _ ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error) {
	f.in = in
	return f.out, nil
}

func TestSendInput(t *testing.T) {
	id := "0102-x"
	api := &fakeAPI{out: &sesv2.SendEmailOutput{MessageId: &id}}
	got, err := New(api, "replies").Send(context.Background(), reply.Outgoing{ReplyID: "cm1", TenantID: "acme.fr/1", From: "a@in.test", To: "b@marketplace.amazon.fr", Raw: []byte("x")})
	if err != nil || got != id {
		t.Fatalf("Send = %q, %v", got, err)
	}
	in := api.in
	if *in.FromEmailAddress != "a@in.test" || in.Destination.ToAddresses[0] != "b@marketplace.amazon.fr" || string(in.Content.Raw.Data) != "x" ||
		*in.ConfigurationSetName != "replies" || *in.EmailTags[0].Name != reply.TagReply || *in.EmailTags[0].Value != "cm1" ||
		*in.EmailTags[1].Name != reply.TagTenant || *in.EmailTags[1].Value != "acme_fr_1" {
		t.Fatalf("input %+v", in)
	}
	api.out = &sesv2.SendEmailOutput{}
	if _, err := New(api, "").Send(context.Background(), reply.Outgoing{Raw: []byte("x")}); err == nil || api.in.ConfigurationSetName != nil {
		t.Fatalf("no MessageId: %v; set %v", err, api.in.ConfigurationSetName)
	}
}
