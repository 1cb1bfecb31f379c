// Package sessender adapts SESv2's SendEmail for replies: one raw MIME
// message, From the tenant's inbound address, through the configuration
// set whose events tell the reply's fate, tagged with the reply's and the
// tenant's ids; SES's MessageId comes back as the provider's id. It
// classifies SES's errors into reply.SendError: throttling, 5xx and
// timeouts are transient; a refused message, an unverified identity or a
// missing configuration set are permanent.
//
// The client it is given must not retry SendEmail by itself (NewClient's
// does not): SES has no idempotency token, so a retried call whose first
// answer was lost sends the mail twice. The reply sender decides retries,
// after looking for SES's Send event of the first call.
package sessender

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keybuzz/keybuzz-amazon/shared/awsenv"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

// API is the part of the SESv2 client the sender uses.
type API interface {
	SendEmail(ctx context.Context, in *sesv2.SendEmailInput, opts ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

// Sender sends raw replies through one configuration set.
type Sender struct {
	api              API
	configurationSet string
}

// New wraps an SESv2 client; configurationSet is the set whose event
// destination publishes the replies' events.
func New(api API, configurationSet string) *Sender {
	return &Sender{api: api, configurationSet: configurationSet}
}

// NewClient builds an SESv2 client from the function's environment
// (shared/awsenv; AWS_ENDPOINT_URL_SESV2 points it at the local stand-in),
// with the SDK's own retries off (see the package comment).
func NewClient(_ context.Context) (*sesv2.Client, error) {
	cfg, err := awsenv.Config(nil)
	if err != nil {
		return nil, err
	}
	return sesv2.NewFromConfig(cfg, func(o *sesv2.Options) {
		o.BaseEndpoint = awsenv.Endpoint(nil, "SESv2")
		o.Retryer = aws.NopRetryer{}
	}), nil
}

// Send hands the message to SES and returns SES's MessageId. Its errors are
// *reply.SendError.
func (s *Sender) Send(ctx context.Context, m reply.Outgoing) (string, error) {
	in := &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(m.From),
		Destination:      &types.Destination{ToAddresses: []string{m.To}},
		Content:          &types.EmailContent{Raw: &types.RawMessage{Data: m.Raw}},
		EmailTags: []types.MessageTag{
			{Name: aws.String(reply.TagReply), Value: aws.String(TagValue(m.ReplyID))},
			{Name: aws.String(reply.TagTenant), Value: aws.String(TagValue(m.TenantID))},
		},
	}
	if s.configurationSet != "" {
		in.ConfigurationSetName = aws.String(s.configurationSet)
	}
	out, err := s.api.SendEmail(ctx, in)
	if err != nil {
		return "", Classify(err)
	}
	if out.MessageId == nil || *out.MessageId == "" {
		return "", &reply.SendError{Code: "NoMessageId", Reason: "SES answered without a MessageId",
			Err: errors.New("sesv2 SendEmail: empty MessageId")}
	}
	return *out.MessageId, nil
}

// TagValue is v as an SES tag value: ASCII letters, digits, '_' and '-'
// only (others become '_'), at most 256 characters.
func TagValue(v string) string {
	b := []byte(v)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 256 {
		b = b[:256]
	}
	return string(b)
}

// permanentCodes are SES's errors that no retry cures.
var permanentCodes = map[string]string{
	"MessageRejected":                    "SES refused the message",
	"MailFromDomainNotVerifiedException": "the MAIL FROM domain is not verified in SES",
	"AccountSuspendedException":          "the SES account is suspended",
	"NotFoundException":                  "the SES configuration set or identity does not exist",
	"BadRequestException":                "SES refused the request",
}

// transientCodes are SES's errors that a later attempt may pass.
var transientCodes = map[string]string{
	"TooManyRequestsException":      "SES throttled the send (sending rate)",
	"ThrottlingException":           "SES throttled the send (sending rate)",
	"LimitExceededException":        "SES's sending quota is exceeded",
	"SendingPausedException":        "sending is paused for the SES account or configuration set",
	"InternalServiceErrorException": "SES had an internal error",
	"InternalFailure":               "SES had an internal error",
	"ServiceUnavailable":            "SES is unavailable",
}

// Classify turns an SESv2 error into a *reply.SendError.
func Classify(err error) error {
	var se *reply.SendError
	if errors.As(err, &se) {
		return err
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code, msg := apiErr.ErrorCode(), apiErr.ErrorMessage()
		if why, ok := permanentCodes[code]; ok {
			return &reply.SendError{Permanent: true, Code: code, Reason: reason(why, msg), Err: err}
		}
		if why, ok := transientCodes[code]; ok {
			return &reply.SendError{Code: code, Reason: reason(why, msg), Err: err}
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		st := re.HTTPStatusCode()
		code := fmt.Sprintf("HTTP%d", st)
		if apiErr != nil {
			code = apiErr.ErrorCode()
		}
		switch {
		case st == 429 || st >= 500:
			return &reply.SendError{Code: code, Reason: reason(fmt.Sprintf("SES answered HTTP %d", st), ""), Err: err}
		case st >= 400:
			return &reply.SendError{Permanent: true, Code: code, Reason: reason(fmt.Sprintf("SES refused the request (HTTP %d)", st), errMessage(apiErr)), Err: err}
		}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &reply.SendError{Code: "timeout", Reason: "SES did not answer in time", Err: err}
	}
	// Connection refused or reset, a cancelled context, an unknown code:
	// the mail may or may not have gone; the sender checks SES's events
	// before any new attempt.
	return &reply.SendError{Code: "unknown", Reason: "the call to SES failed: " + err.Error(), Err: err}
}

func errMessage(e smithy.APIError) string {
	if e == nil {
		return ""
	}
	return e.ErrorMessage()
}

func reason(why, msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return why
	}
	return why + ": " + msg
}
