package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keybuzz/keybuzz-amazon/dev/sesout"
)

// Replies on one machine, as template.yaml builds them on AWS: the
// outbound queue (with a DLQ) the send-reply route fills, the SESv2
// stand-in (dev/sesout) that relays each reply by SMTP to the sandbox (which
// plays Amazon's relay) and publishes SES's events to a topic, and the
// SES-events queue (with a DLQ) subscribed to it.
const (
	ReplyQueueName       = "keybuzz-amazon-replies"
	ReplyDLQName         = "keybuzz-amazon-replies-dlq"
	SESEventsQueueName   = "keybuzz-amazon-ses-events"
	SESEventsDLQName     = "keybuzz-amazon-ses-events-dlq"
	SESEventsTopicName   = "keybuzz-amazon-ses-events"
	SESConfigurationSet  = "keybuzz-amazon-replies"
	replyVisibility      = "30"
	replyMaxReceive      = 8
	sesEventsVisibility  = "30"
	sesEventsMaxReceives = 5
)

// replies creates the queues and topic (idempotent) and starts the stand-in.
func (s *Stack) replies(ctx context.Context) error {
	start := time.Now()
	endpoint := s.Get("AWS_ENDPOINT_URL_SQS")
	creds := credentials.NewStaticCredentialsProvider(AccessKeyID, AccessKeyID, "")
	q := sqs.New(sqs.Options{Region: Region, BaseEndpoint: aws.String(endpoint), Credentials: creds})
	n := sns.New(sns.Options{Region: Region, BaseEndpoint: aws.String(endpoint), Credentials: creds})
	queue := func(name, dlqName, visibility string, maxReceive int) (url, arn, dlqURL string, err error) {
		dlq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(dlqName)})
		if err != nil {
			return "", "", "", fmt.Errorf("create queue %s: %w", dlqName, err)
		}
		dlqArn, err := queueArn(ctx, q, *dlq.QueueUrl)
		if err != nil {
			return "", "", "", err
		}
		redrive, _ := json.Marshal(map[string]string{"deadLetterTargetArn": dlqArn, "maxReceiveCount": strconv.Itoa(maxReceive)})
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name),
			Attributes: map[string]string{"VisibilityTimeout": visibility, "RedrivePolicy": string(redrive)}})
		if err != nil {
			return "", "", "", fmt.Errorf("create queue %s: %w", name, err)
		}
		arn, err = queueArn(ctx, q, *out.QueueUrl)
		return *out.QueueUrl, arn, *dlq.QueueUrl, err
	}
	replyURL, _, replyDLQ, err := queue(ReplyQueueName, ReplyDLQName, replyVisibility, replyMaxReceive)
	if err != nil {
		return err
	}
	eventsURL, eventsArn, eventsDLQ, err := queue(SESEventsQueueName, SESEventsDLQName, sesEventsVisibility, sesEventsMaxReceives)
	if err != nil {
		return err
	}
	topicArn, err := topicToQueue(ctx, n, SESEventsTopicName, eventsArn)
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(s.logDir, "sesout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	srv, err := sesout.Start("127.0.0.1:0", sesout.Config{Region: Region, VerifiedDomains: []string{InboundDomain},
		ConfigurationSets: []string{SESConfigurationSet}, RelaySMTP: s.replyAddr, TopicArn: topicArn, SNS: n,
		Log: slog.New(slog.NewJSONHandler(logFile, nil))})
	if err != nil {
		logFile.Close()
		return err
	}
	s.mu.Lock()
	s.closers = append(s.closers, func() error { err := srv.Close(); logFile.Close(); return err })
	s.mu.Unlock()
	s.set(
		"AWS_ENDPOINT_URL_SESV2", srv.URL(),
		"SES_CONFIGURATION_SET", SESConfigurationSet,
		"REPLY_QUEUE_URL", replyURL,
		"REPLY_DLQ_URL", replyDLQ,
		"SES_EVENTS_QUEUE_URL", eventsURL,
		"SES_EVENTS_DLQ_URL", eventsDLQ,
		"SES_EVENTS_TOPIC_ARN", topicArn,
		"AMAZON_REPLY_SMTP_ADDR", s.replyAddr,
	)
	s.progress(fmt.Sprintf("sesv2      %s -> SMTP %s (the sandbox's relay); events -> %s (%s)", srv.URL(), s.replyAddr,
		SESEventsQueueName, time.Since(start).Round(time.Millisecond)))
	return nil
}
