// Package sqsvisibility sets how long a received SQS message stays
// invisible (ChangeMessageVisibility): the queue adapter's Delayer
// (sqsbatch.WithDelayer), for consumers that want a message back after a
// delay of their own rather than the queue's visibility timeout.
package sqsvisibility

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// API is the part of the SQS client Visibility calls.
type API interface {
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Visibility changes messages' visibility with an SQS client.
type Visibility struct {
	sqs      API
	endpoint string // the client's endpoint override (an emulator's), "" for SQS
}

// New returns a Visibility calling c (pollsender.NewClient builds it from
// Lambda's environment). A client configured with an endpoint of its own
// (AWS_ENDPOINT_URL_SQS: the local emulator) names queues by URLs on that
// endpoint, as the emulator does.
func New(c API) *Visibility {
	v := &Visibility{sqs: c}
	if o, ok := c.(interface{ Options() sqs.Options }); ok && o.Options().BaseEndpoint != nil {
		v.endpoint = strings.TrimRight(*o.Options().BaseEndpoint, "/")
	}
	return v
}

// maxVisibility is SQS's limit (12 hours).
const maxVisibility = 12 * time.Hour

// Delay makes the message of receiptHandle, received from the queue
// queueARN, invisible for after (whole seconds, rounded up, at most 12 h).
func (v *Visibility) Delay(ctx context.Context, queueARN, receiptHandle string, after time.Duration) error {
	u, err := QueueURL(queueARN)
	if err != nil {
		return err
	}
	if v.endpoint != "" {
		p := strings.Split(queueARN, ":")
		u = v.endpoint + "/" + p[4] + "/" + p[5]
	}
	secs := int32(math.Ceil(min(max(after, 0), maxVisibility).Seconds()))
	_, err = v.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(u), ReceiptHandle: aws.String(receiptHandle), VisibilityTimeout: secs,
	})
	if err != nil {
		return fmt.Errorf("change message visibility: %w", err)
	}
	return nil
}

// QueueURL is the URL of the queue an event source ARN names
// (arn:aws:sqs:<region>:<account>:<name>): SQS's own form, which SQS and
// the endpoint the client is configured with (an emulator's) both take,
// since the client sends the request to its endpoint and the queue is
// named by the URL's path.
func QueueURL(arn string) (string, error) {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[0] != "arn" || p[2] != "sqs" || p[3] == "" || p[4] == "" || p[5] == "" {
		return "", fmt.Errorf("not an SQS queue ARN: %q", arn)
	}
	return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", p[3], p[4], p[5]), nil
}
