// Package replyqueue adapts SQS for replies: the outbound queue's job
// message ({"replyId","tenantId"}), its sender (SendMessage), and the
// batch handlers that turn Lambda's SQS events into calls of the replies
// flows (replysender: one job each; sesevents: one SES event each) with
// batch item failures for what must come back.
package replyqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

// ErrMalformed is a body that is no reply job.
var ErrMalformed = errors.New("malformed reply job")

// Encode is a job's body.
func Encode(j reply.Job) string {
	b, _ := json.Marshal(j)
	return string(b)
}

// Decode reads a job's body.
func Decode(body string) (reply.Job, error) {
	var j reply.Job
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil || j.ReplyID == "" || dec.More() {
		return reply.Job{}, fmt.Errorf("%w: %q", ErrMalformed, truncate(body, 100))
	}
	return j, nil
}

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
	if _, err := j.api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(j.queueURL), MessageBody: aws.String(Encode(job))}); err != nil {
		return fmt.Errorf("send reply job %s: %w", job.ReplyID, err)
	}
	return nil
}

// SenderHandler is replysender's handler: each record's job goes to send
// (replies.Sender.Handle); a malformed body is dropped (logged), an error
// comes back as a batch item failure (SQS redelivers it after the
// visibility timeout: the sender's back-off).
func SenderHandler(send func(context.Context, reply.Job) error, parallel int, log *slog.Logger) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		return sqsbatch.Handle(ctx, ev, parallel, func(ctx context.Context, r events.SQSMessage) error {
			job, err := Decode(r.Body)
			if err != nil {
				log.WarnContext(ctx, "reply job dropped", "err", err)
				return nil
			}
			return send(ctx, job)
		}), nil
	}
}

// EventsHandler is sesevents' handler: each record's body goes to apply
// (replies.Events.Handle).
func EventsHandler(apply func(context.Context, string) error, parallel int) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		return sqsbatch.Handle(ctx, ev, parallel, func(ctx context.Context, r events.SQSMessage) error {
			return apply(ctx, r.Body)
		}), nil
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
