package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/mailbucket"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
)

// mailRig is the mail intake of one benchmark run, as `make test` and
// `make dev` run it (dev/devstack): dev/smtpses on loopback plays SES's
// receipt rule for the stack's inbound domain, writes each raw mail to the
// stack's mail bucket on the emulator (under a prefix of the run's own, in
// raw/ as the template's rule) and publishes SES's notification to an SNS
// topic of the run's own, to which a queue of the run's own is subscribed.
// close removes the topic, the queue and the objects.
type mailRig struct {
	smtp     *smtpses.Server
	domain   string
	bucket   string
	prefix   string
	topicARN string
	queueURL string
	s3       *s3.Client
	maxBytes int64
}

// newMailRig starts the receiver and its topic and queue. visibility is the
// queue's VisibilityTimeout in seconds (0: the emulator's default).
func (e *env) newMailRig(ctx context.Context, label string, visibility int) (*mailRig, error) {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	if err := cfg.RequireInboundMail(); err != nil {
		return nil, err
	}
	// The clients as mailbucket.NewClient makes them for
	// functions/inboundmail (the SDK's default configuration, which reads
	// AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_SNS), except that the S3
	// client does not log each GetObject whose answer has no checksum (the
	// emulator's never have one).
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	s3c := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.InboundS3PathStyle
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	snsc := sns.NewFromConfig(awsCfg)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("bench-" + label + "-" + devrand.Hex(4))})
	if err != nil {
		return nil, fmt.Errorf("create topic: %w", err)
	}
	e.cleanup = append(e.cleanup, func() {
		_, _ = snsc.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: topic.TopicArn})
	})
	qURL, qARN, err := e.freshQueueARN(ctx, label, visibility)
	if err != nil {
		return nil, err
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(qARN)}); err != nil {
		return nil, fmt.Errorf("subscribe the queue to the topic: %w", err)
	}
	r := &mailRig{domain: cfg.InboundMailDomain, bucket: os.Getenv("INBOUND_MAIL_BUCKET"), prefix: "raw/bench-" + label + "-" + devrand.Hex(4) + "/",
		topicARN: aws.ToString(topic.TopicArn), queueURL: qURL, s3: s3c, maxBytes: cfg.InboundMailMaxBytes}
	srv, err := smtpses.Start("127.0.0.1:0", smtpses.Config{Domain: r.domain, Bucket: r.bucket, Prefix: r.prefix, TopicArn: r.topicARN,
		S3: s3c, SNS: snsc, Log: e.quiet})
	if err != nil {
		return nil, err
	}
	r.smtp = srv
	e.cleanup = append(e.cleanup, func() { _ = srv.Close() }, func() { r.removeObjects(context.Background()) })
	return r, nil
}

// removeObjects deletes what the run wrote to the bucket: its raw mails
// and the attachments of its tenants (best effort).
func (r *mailRig) removeObjects(ctx context.Context) {
	p := s3.NewListObjectsV2Paginator(r.s3, &s3.ListObjectsV2Input{Bucket: aws.String(r.bucket), Prefix: aws.String(r.prefix)})
	var wg sync.WaitGroup
	keys := make(chan string)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				_, _ = r.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(k)})
			}
		}()
	}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			break
		}
		for _, o := range page.Contents {
			keys <- aws.ToString(o.Key)
		}
	}
	close(keys)
	wg.Wait()
}

// flow is the inboundmail handler as functions/inboundmail wires it with
// the sandbox as Amazon: the flow on store and the bucket, and the order
// context (getOrder with the seller's token, within its budget) through
// orders. wrap, when set, wraps what the flow is given of the store and
// the bucket (to count what it asks of them).
func (r *mailRig) flow(e *env, store *postgres.Store, orders sellerapi.Orders, wrap *mailWrap) *inboundmail.Flow {
	var objects inboundmail.Objects = mailbucket.New(r.s3)
	var flowStore inboundmail.Store = store
	if wrap != nil {
		objects, flowStore = wrap.objects(objects), wrap.store(store)
	}
	return inboundmail.New(flowStore, objects, r.domain, inboundmail.WithBucket(r.bucket), inboundmail.WithMaxBytes(r.maxBytes),
		inboundmail.WithLogger(e.quiet), inboundmail.WithOrderContext(inboundmail.NewOrderContexts(store, orders, inboundmail.WithLogger(e.quiet))))
}

// mailWrap wraps the flow's store and bucket.
type mailWrap struct {
	objects func(inboundmail.Objects) inboundmail.Objects
	store   func(inboundmail.Store) inboundmail.Store
}

// provision gives the tenant its inbound address for its primary
// marketplace, as Connect does when the connection becomes CONNECTED.
func (r *mailRig) provision(ctx context.Context, store *postgres.Store, tenant, marketplaceID string) (marketplace.InboundAddress, error) {
	addrs, err := mailaddress.NewAddresses(store, r.domain).Provision(ctx, tenant, []string{marketplaceID})
	if err != nil {
		return marketplace.InboundAddress{}, err
	}
	if len(addrs) == 0 {
		return marketplace.InboundAddress{}, fmt.Errorf("no inbound address provisioned for %s", tenant)
	}
	return addrs[0], nil
}

// what describes the rig for the report.
func (r *mailRig) what() string {
	return fmt.Sprintf("dev/smtpses on %s for @%s (SES's receipt rule: the raw mail to s3://%s/%s… on the emulator, then SES's notification through an SNS topic to the mail queue)",
		r.smtp.Addr(), r.domain, r.bucket, strings.TrimSuffix(r.prefix, "/"))
}
