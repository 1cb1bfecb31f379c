package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Queue names and settings of the poll pipeline. The deployed queue's
// visibility timeout comes from template.yaml; locally 60 s is enough.
const (
	PollQueueName       = "keybuzz-amazon-poll"
	PollDLQName         = "keybuzz-amazon-poll-dlq"
	pollVisibility      = "60"
	pollMaxReceiveCount = 5
	localAccountID      = "000000000000" // fauxqs's account
)

// The notifications queue Amazon (the sandbox) delivers ORDER_CHANGE
// notifications to, and its DLQ.
const (
	NotificationsQueueName = "keybuzz-amazon-notifications"
	NotificationsDLQName   = "keybuzz-amazon-notifications-dlq"
	// NotificationsQueueARN is the queue's ARN in the emulator.
	NotificationsQueueARN   = "arn:aws:sqs:" + Region + ":" + localAccountID + ":" + NotificationsQueueName
	notificationsVisibility = "30"
)

// NotificationQueues are the notifications queue and its DLQ.
type NotificationQueues struct {
	URL, ARN, DLQURL string
}

// ensureNotificationQueues creates the notifications queue and its DLQ
// (standard queues, as Amazon requires) when missing.
func ensureNotificationQueues(ctx context.Context, endpoint string) (NotificationQueues, error) {
	c := sqsClient(endpoint)
	dlq, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(NotificationsDLQName)})
	if err != nil {
		return NotificationQueues{}, fmt.Errorf("create queue %s: %w", NotificationsDLQName, err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []types.QueueAttributeName{"QueueArn"}})
	if err != nil {
		return NotificationQueues{}, fmt.Errorf("get %s arn: %w", NotificationsDLQName, err)
	}
	redrive, _ := json.Marshal(map[string]string{"deadLetterTargetArn": attrs.Attributes["QueueArn"], "maxReceiveCount": strconv.Itoa(pollMaxReceiveCount)})
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(NotificationsQueueName),
		Attributes: map[string]string{"VisibilityTimeout": notificationsVisibility, "RedrivePolicy": string(redrive)}})
	if err != nil {
		return NotificationQueues{}, fmt.Errorf("create queue %s: %w", NotificationsQueueName, err)
	}
	qa, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []types.QueueAttributeName{"QueueArn"}})
	if err != nil {
		return NotificationQueues{}, fmt.Errorf("get %s arn: %w", NotificationsQueueName, err)
	}
	return NotificationQueues{URL: aws.ToString(q.QueueUrl), ARN: qa.Attributes["QueueArn"], DLQURL: aws.ToString(dlq.QueueUrl)}, nil
}

// fauxqsDir holds package.json and the package-lock.json that pin fauxqs.
const fauxqsDir = "tools/fauxqs"

// queueAttributes returns the attributes of the poll queue and its DLQ.
func queueAttributes(dlqArn string) (poll, dlq map[string]string) {
	redrive, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": dlqArn,
		"maxReceiveCount":     strconv.Itoa(pollMaxReceiveCount),
	})
	return map[string]string{"VisibilityTimeout": pollVisibility, "RedrivePolicy": string(redrive)}, map[string]string{}
}

// startFauxqs runs the SQS emulator with both queues created from an init
// file and returns its endpoint.
func (s *Stack) startFauxqs(ctx context.Context, port int) (string, error) {
	launcher := filepath.Join(s.repo, fauxqsDir, "serve.mjs")
	if _, err := os.Stat(filepath.Join(s.repo, fauxqsDir, "node_modules", "fauxqs", "package.json")); err != nil {
		return "", fmt.Errorf("fauxqs is not installed (run `make setup`, or set AWS_ENDPOINT_URL_SQS to use an existing SQS)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("fauxqs needs node on PATH: %w", err)
	}
	pollAttrs, dlqAttrs := queueAttributes(fmt.Sprintf("arn:aws:sqs:%s:%s:%s", Region, localAccountID, PollDLQName))
	type queue struct {
		Name       string            `json:"name"`
		Attributes map[string]string `json:"attributes,omitempty"`
	}
	init, _ := json.MarshalIndent(map[string]any{
		"region": Region,
		"queues": []queue{{PollDLQName, dlqAttrs}, {PollQueueName, pollAttrs}},
	}, "", "  ")
	initPath := filepath.Join(s.stateDir, "fauxqs-init.json")
	if err := os.WriteFile(initPath, init, 0o644); err != nil {
		return "", err
	}
	cmd := exec.Command(node, launcher)
	cmd.Dir = filepath.Join(s.repo, fauxqsDir)
	cmd.Env = append(os.Environ(),
		"FAUXQS_PORT="+strconv.Itoa(port),
		"FAUXQS_LISTEN=127.0.0.1",
		"FAUXQS_DEFAULT_REGION="+Region,
		"FAUXQS_LOGGER=false",
		"FAUXQS_INIT="+initPath,
	)
	_, endpoint, err := s.startService(ctx, "fauxqs", cmd, syscall.SIGTERM, "listening on ")
	if err != nil {
		return "", err
	}
	return endpoint, nil
}

// sqsClient talks to the emulator (or an existing SQS endpoint).
func sqsClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, AccessKeyID, ""),
	})
}

// ensureQueues creates the poll queue and its DLQ when missing (an existing
// emulator or account) and returns their URLs.
func ensureQueues(ctx context.Context, endpoint string) (pollURL, dlqURL string, err error) {
	c := sqsClient(endpoint)
	deadline := time.Now().Add(10 * time.Second)
	var dlq *sqs.CreateQueueOutput
	for {
		dlq, err = c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(PollDLQName)})
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return "", "", fmt.Errorf("create queue %s at %s: %w", PollDLQName, endpoint, err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []types.QueueAttributeName{"QueueArn"}})
	if err != nil {
		return "", "", fmt.Errorf("get %s arn: %w", PollDLQName, err)
	}
	pollAttrs, _ := queueAttributes(attrs.Attributes["QueueArn"])
	poll, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(PollQueueName), Attributes: pollAttrs})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s at %s: %w", PollQueueName, endpoint, err)
	}
	return *poll.QueueUrl, *dlq.QueueUrl, nil
}

// queueURLs looks both queues up, which also proves the emulator answers.
func queueURLs(ctx context.Context, endpoint string) (pollURL, dlqURL string, err error) {
	c := sqsClient(endpoint)
	p, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(PollQueueName)})
	if err != nil {
		return "", "", fmt.Errorf("get queue url %s: %w", PollQueueName, err)
	}
	d, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(PollDLQName)})
	if err != nil {
		return "", "", fmt.Errorf("get queue url %s: %w", PollDLQName, err)
	}
	return *p.QueueUrl, *d.QueueUrl, nil
}
