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
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
)

// The mail intake on one machine, as template.yaml builds it on AWS: a
// bucket for raw mails, an SNS topic SES notifies, a mail queue (with a
// DLQ) subscribed to it, and the SMTP receiver playing SES's receipt rule.
const (
	MailQueueName  = "keybuzz-amazon-mail"
	MailDLQName    = "keybuzz-amazon-mail-dlq"
	MailTopicName  = "keybuzz-amazon-inbound-mail"
	MailBucket     = "keybuzz-amazon-inbound-mail"
	MailPrefix     = "raw/"
	InboundDomain  = "inbound.keybuzz.test" // .test never resolves outside this machine
	mailVisibility = "120"
	mailMaxReceive = 5
)

// mail creates the mail resources on the emulator (idempotent, so an
// adopted emulator works too) and starts the SMTP receiver.
func (s *Stack) mail(ctx context.Context) error {
	start := time.Now()
	endpoint := s.Get("AWS_ENDPOINT_URL_SQS")
	q := sqs.New(sqs.Options{Region: Region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, AccessKeyID, "")})
	n := sns.New(sns.Options{Region: Region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, AccessKeyID, "")})
	b := s3.New(s3.Options{Region: Region, BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, AccessKeyID, "")})

	dlq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(MailDLQName)})
	if err != nil {
		return fmt.Errorf("create queue %s: %w", MailDLQName, err)
	}
	dlqArn, err := queueArn(ctx, q, *dlq.QueueUrl)
	if err != nil {
		return err
	}
	redrive, _ := json.Marshal(map[string]string{"deadLetterTargetArn": dlqArn, "maxReceiveCount": strconv.Itoa(mailMaxReceive)})
	mq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(MailQueueName),
		Attributes: map[string]string{"VisibilityTimeout": mailVisibility, "RedrivePolicy": string(redrive)}})
	if err != nil {
		return fmt.Errorf("create queue %s: %w", MailQueueName, err)
	}
	mqArn, err := queueArn(ctx, q, *mq.QueueUrl)
	if err != nil {
		return err
	}
	topicArn, err := topicToQueue(ctx, n, MailTopicName, mqArn)
	if err != nil {
		return err
	}
	if _, err := b.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(MailBucket)}); err != nil {
		if _, herr := b.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(MailBucket)}); herr != nil {
			return fmt.Errorf("create bucket %s: %w", MailBucket, err)
		}
	}

	logFile, err := os.OpenFile(filepath.Join(s.logDir, "smtpses.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	srv, err := smtpses.Start(s.smtpAddr, smtpses.Config{
		Domain: InboundDomain, Bucket: MailBucket, Prefix: MailPrefix, TopicArn: topicArn, S3: b, SNS: n,
		Log: slog.New(slog.NewJSONHandler(logFile, nil)),
	})
	if err != nil {
		logFile.Close()
		return err
	}
	s.mu.Lock()
	s.closers = append(s.closers, func() error { err := srv.Close(); logFile.Close(); return err })
	s.mu.Unlock()
	s.set(
		"INBOUND_SMTP_ADDR", srv.Addr(),
		"INBOUND_MAIL_DOMAIN", InboundDomain,
		"INBOUND_MAIL_BUCKET", MailBucket,
		"INBOUND_S3_PATH_STYLE", "true",
		"MAIL_QUEUE_URL", *mq.QueueUrl,
		"MAIL_DLQ_URL", *dlq.QueueUrl,
		"MAIL_TOPIC_ARN", topicArn,
		"AWS_ENDPOINT_URL_S3", endpoint,
		"AWS_ENDPOINT_URL_SNS", endpoint,
	)
	s.progress(fmt.Sprintf("smtp       %s for @%s -> s3://%s/%s + SNS -> %s (%s)", srv.Addr(), InboundDomain, MailBucket, MailPrefix,
		MailQueueName, time.Since(start).Round(time.Millisecond)))
	return nil
}

func queueArn(ctx context.Context, q *sqs.Client, url string) (string, error) {
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"QueueArn"}})
	if err != nil {
		return "", fmt.Errorf("get arn of %s: %w", url, err)
	}
	return attrs.Attributes["QueueArn"], nil
}

// topicToQueue creates the SNS topic (idempotent) and subscribes the queue
// queueArn to it unless it already is (the stack may start against an
// emulator that has both), and returns the topic's ARN.
func topicToQueue(ctx context.Context, n *sns.Client, topicName, queueArn string) (string, error) {
	topic, err := n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(topicName)})
	if err != nil {
		return "", fmt.Errorf("create topic %s: %w", topicName, err)
	}
	subs, err := n.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: topic.TopicArn})
	if err != nil {
		return "", fmt.Errorf("list subscriptions of %s: %w", topicName, err)
	}
	for _, sub := range subs.Subscriptions {
		if aws.ToString(sub.Endpoint) == queueArn {
			return aws.ToString(topic.TopicArn), nil
		}
	}
	if _, err := n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(queueArn)}); err != nil {
		return "", fmt.Errorf("subscribe %s to %s: %w", queueArn, topicName, err)
	}
	return aws.ToString(topic.TopicArn), nil
}
