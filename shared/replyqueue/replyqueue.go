// Package replyqueue adapts SQS for the outbound queue: a reply's job
// ({"replyId","tenantId"}: reply.EncodeJob) sent with SendMessage. The
// functions that consume the queues take their records through
// shared/sqsbatch, which hands each body to the replies flows.
package replyqueue

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

// API is the part of the SQS client the sender uses.
type API interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Jobs sends jobs to the outbound queue.
type Jobs struct {
	api      API
	queueURL string
}

// NewJobs builds the sender of the queue at queueURL.
func NewJobs(api API, queueURL string) *Jobs { return &Jobs{api: api, queueURL: queueURL} }

// Enqueue sends one job.
func (j *Jobs) Enqueue(ctx context.Context, job reply.Job) error {
	if _, err := j.api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(j.queueURL), MessageBody: aws.String(reply.EncodeJob(job))}); err != nil {
		return fmt.Errorf("send reply job %s: %w", job.ReplyID, err)
	}
	return nil
}
