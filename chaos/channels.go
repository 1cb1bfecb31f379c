package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/mailbucket"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

// The push and mail channels under chaos, in-process like the soak's
// polltenant containers (their real bootstraps run under aws-lambda-rie in
// e2e/, not killed there):
//
//   - push: Connect subscribes each connection to ORDER_CHANGE (the
//     callback's hook); the sandbox publishes a notification for every
//     buyer cancellation request to an SQS queue of fauxqs, dropping,
//     duplicating, delaying and reordering some (sandbox.DeliveryFaults);
//     the harness adds forged notifications (another tenant's SellerId and
//     order on a tenant's subscription) and malformed bodies. ordernotify
//     containers (push.Intake) drain the queue and are killed at random.
//   - mail: Connect provisions each tenant's inbound address, set as the
//     seller's forwarding address; buyers write (the sandbox's relay) by
//     SMTP to a dev/smtpses receiver playing SES's receipt rule, whose S3
//     object is sometimes never written or written late and whose SNS
//     notification is sometimes published twice; malformed and oversized
//     mails are sent too. inboundmail containers (inboundmail.Flow) drain
//     the mail queue and are killed at random.
//
// The checker compares with the senders' own records: the sandbox's
// relayed mails, every notification body delivered, every forged or
// malformed one.

// mailWords marks each buyer mail's text, so that a stored message is
// traced to the mail it came from whatever its externalId.
var mailWords = regexp.MustCompile(`chaos-mail-[0-9]+`)

// sentMail is one buyer mail the sandbox relayed.
type sentMail struct {
	token, tenant, order, to string
	accepting                bool   // the tenant was CONNECTED when it was sent
	fault                    string // s3_missing, s3_late, sns_duplicate, or ""
}

// sentNotification is one notification body that reached the queue.
type sentNotification struct {
	id, seller, subscription, order string
	forged                          bool // another tenant's SellerId and order on a subscription
}

// channels is the state of the push and mail channels.
type channels struct {
	notifyURL, notifyDLQ string
	mailURL, mailDLQ     string
	smtp                 *smtpses.Server
	topicArn             string

	mu            sync.Mutex
	mails         []*sentMail
	pendingFault  []string // the fault the next mail's S3 put and SNS publish play (FIFO: mails are sent one at a time)
	notifications []sentNotification
	hostile       int // malformed and oversized mails sent
	malformed     int // malformed notification bodies sent
	nextMail      int
	sesFault      map[string]string   // SES message id -> injected fault
	sesSQS        map[string][]string // SES message id -> the SQS message ids that carried it
	bySES         map[string]string   // mail token -> SES message id
	throttled     map[string]bool     // tenant \x00 back-off end of a 429 on its getOrder
	late          sync.WaitGroup
}

// mailMaxBytes is the flow's INBOUND_MAIL_MAX_BYTES in the soak: small, so
// that an oversized mail is cheap to send.
const mailMaxBytes = 64 << 10

// setupChannels creates the queues, the SES receipt rule's stand-in and
// wires the sandbox's notification delivery and relay; it runs before the
// sandbox is built (cfg is its configuration).
func (w *world) setupChannels(ctx context.Context, cfg *sandbox.Config) error {
	ch := &channels{sesFault: map[string]string{}, sesSQS: map[string][]string{}, bySES: map[string]string{}, throttled: map[string]bool{}}
	w.ch = ch
	var err error
	if ch.notifyURL, ch.notifyDLQ, err = w.createQueuePair(ctx, "chaos-notify", w.set.Visibility); err != nil {
		return err
	}
	deliver := sandbox.SQSDelivery(w.stack.Get("AWS_ENDPOINT_URL_SQS"))
	cfg.Deliver = func(ctx context.Context, arn, body string) error {
		if err := deliver(ctx, arn, body); err != nil {
			return err
		}
		w.recordNotification(body, false)
		return nil
	}
	if ch.mailURL, ch.mailDLQ, err = w.createQueuePair(ctx, "chaos-mail", w.set.Visibility); err != nil {
		return err
	}
	snsc := sns.New(sns.Options{Region: devstack.Region, BaseEndpoint: aws.String(w.stack.Get("AWS_ENDPOINT_URL_SQS")), Credentials: w.awsCreds})
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("chaos-mail")})
	if err != nil {
		return fmt.Errorf("mail topic: %w", err)
	}
	ch.topicArn = aws.ToString(topic.TopicArn)
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(fmt.Sprintf("arn:aws:sqs:%s:000000000000:chaos-mail", devstack.Region))}); err != nil {
		return fmt.Errorf("subscribe the mail queue: %w", err)
	}
	if _, err := w.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(devstack.MailBucket)}); err != nil {
		if _, herr := w.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(devstack.MailBucket)}); herr != nil {
			return fmt.Errorf("mail bucket: %w", err)
		}
	}
	ch.smtp, err = smtpses.Start("127.0.0.1:0", smtpses.Config{Domain: devstack.InboundDomain, Bucket: devstack.MailBucket, Prefix: devstack.MailPrefix,
		TopicArn: ch.topicArn, S3: faultyS3{w}, SNS: faultySNS{w, snsc}, Log: w.log})
	if err != nil {
		return err
	}
	cfg.RelaySMTP = ch.smtp.Addr()
	return nil
}

// recordNotification keeps a body that reached the notifications queue.
func (w *world) recordNotification(body string, forged bool) {
	n, err := push.Decode(body)
	if err != nil {
		return
	}
	w.ch.mu.Lock()
	w.ch.notifications = append(w.ch.notifications, sentNotification{id: n.NotificationID, seller: n.SellerID,
		subscription: n.SubscriptionID, order: n.AmazonOrderID, forged: forged})
	w.ch.mu.Unlock()
	w.payloads.keep("notify-sent", n.NotificationID, body)
}

// faultyS3 is the receipt rule's S3 action: the object of a mail chosen
// for it is never written (s3_missing) or written a few seconds after the
// notification (s3_late).
type faultyS3 struct{ w *world }

func (f faultyS3) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	ch := f.w.ch
	ses := strings.TrimPrefix(aws.ToString(in.Key), devstack.MailPrefix)
	ch.mu.Lock()
	fault := ""
	if len(ch.pendingFault) > 0 {
		fault, ch.pendingFault = ch.pendingFault[0], ch.pendingFault[1:]
	}
	if fault != "" {
		ch.sesFault[ses] = fault
	}
	ch.mu.Unlock()
	// Which mail this object is (its token; quoted-printable soft breaks
	// removed), so that a dead-lettered mail is traced to its deliveries.
	raw, err := readAllSeeker(in)
	if err != nil {
		return nil, err
	}
	in.Body = strings.NewReader(raw)
	if tok := mailWords.FindString(strings.ReplaceAll(raw, "=\r\n", "")); tok != "" {
		ch.mu.Lock()
		ch.bySES[tok] = ses
		ch.mu.Unlock()
	}
	switch fault {
	case "s3_missing":
		f.w.stats.fault("mail_s3_object_missing")
		return &s3.PutObjectOutput{}, nil
	case "s3_late":
		f.w.stats.fault("mail_s3_object_late")
		body := raw
		ch.late.Add(1)
		delay := time.Duration(1500+f.w.intN(3000)) * time.Millisecond
		end := f.w.trace.begin("s3_late:" + ses) // from now until the object is there
		time.AfterFunc(delay, func() {
			defer ch.late.Done()
			defer end()
			cp := *in
			cp.Body = strings.NewReader(body)
			if _, err := f.w.s3.PutObject(context.Background(), &cp); err != nil {
				f.w.print("late S3 put of %s: %v", ses, err)
			}
		})
		return &s3.PutObjectOutput{}, nil
	}
	return f.w.s3.PutObject(ctx, in, opts...)
}

// faultySNS is the receipt rule's SNS action: a mail chosen for it is
// published twice (an SNS duplicate).
type faultySNS struct {
	w   *world
	sns *sns.Client
}

func (f faultySNS) Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error) {
	out, err := f.sns.Publish(ctx, in, opts...)
	if err != nil {
		return out, err
	}
	var n sesmail.Notification
	if json.Unmarshal([]byte(aws.ToString(in.Message)), &n) == nil {
		f.w.ch.mu.Lock()
		fault := f.w.ch.sesFault[n.Mail.MessageID]
		f.w.ch.mu.Unlock()
		if fault == "sns_duplicate" {
			f.w.stats.fault("mail_sns_duplicate")
			return f.sns.Publish(ctx, in, opts...)
		}
	}
	return out, nil
}

func readAllSeeker(in *s3.PutObjectInput) (string, error) {
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			if err.Error() == "EOF" {
				return b.String(), nil
			}
			return "", err
		}
	}
}

// forwardMail sets each tenant's inbound address as its seller's
// forwarding address (Seller Central's step), after Connect provisioned it.
func (w *world) forwardMail(ctx context.Context) error {
	for _, t := range w.tenants {
		addrs, err := w.store.InboundAddresses(ctx, t.id)
		if err != nil {
			return fmt.Errorf("addresses of %s: %w", t.id, err)
		}
		if len(addrs) == 0 {
			return fmt.Errorf("tenant %s has no inbound address after Connect", t.id)
		}
		t.address = addrs[0].EmailAddress
		w.sb.SetForwarding(t.seller, t.address)
		w.addrTenant[strings.ToLower(t.address)] = t.id
	}
	return nil
}

// buyerMail: a buyer of tenant t writes about one of its orders (its
// latest), sometimes with an S3 or SNS fault on the way.
func (w *world) buyerMail(t *tenant, withFault bool) {
	ch := w.ch
	ch.mu.Lock()
	ch.nextMail++
	token := fmt.Sprintf("chaos-mail-%d", ch.nextMail)
	fault := ""
	if withFault {
		fault = []string{"s3_missing", "s3_late", "sns_duplicate"}[w.intN(3)]
	}
	ch.pendingFault = append(ch.pendingFault, fault)
	ch.mu.Unlock()
	accepting := t.revokedAt == nil && t.emptiedAt == nil
	m, err := w.sb.SendBuyerMessage(t.seller, sandbox.BuyerMessage{Text: "Where is my parcel? " + token, Language: "en"})
	if err != nil {
		ch.mu.Lock()
		ch.pendingFault = ch.pendingFault[:len(ch.pendingFault)-1]
		ch.mu.Unlock()
		w.print("buyer mail for %s: %v", t.id, err)
		return
	}
	ch.mu.Lock()
	ch.mails = append(ch.mails, &sentMail{token: token, tenant: t.id, order: m.OrderID, to: m.To, accepting: accepting, fault: fault})
	ch.mu.Unlock()
	w.stats.add("mails_relayed", 1)
}

// hostileMail sends a malformed (no From, no structure) or an oversized
// mail to tenant t's address: neither may become a ticket.
func (w *world) hostileMail(t *tenant) {
	var raw []byte
	kind := "mail_malformed"
	if w.intN(2) == 0 {
		raw = []byte("\x00\x01 not a mail at all " + strings.Repeat("\xff", 64) + "\r\n\r\nchaos-hostile")
	} else {
		kind = "mail_oversized"
		raw = []byte("From: \"A - Amazon Marketplace\" <abc@marketplace.amazon.com>\r\nTo: " + t.address +
			"\r\nSubject: big (Order: 111-2223334-5556667)\r\nMessage-ID: <big-" + strconv.Itoa(w.intN(1<<30)) + "@x>\r\n\r\n" +
			strings.Repeat("chaos-hostile oversized line of text\r\n", mailMaxBytes/36+200))
	}
	w.ch.mu.Lock()
	w.ch.pendingFault = append(w.ch.pendingFault, "")
	w.ch.mu.Unlock()
	if err := smtpses.Send(w.ch.smtp.Addr(), "bounce@marketplace.amazon.com", []string{t.address}, raw); err != nil {
		w.ch.mu.Lock()
		w.ch.pendingFault = w.ch.pendingFault[:len(w.ch.pendingFault)-1]
		w.ch.mu.Unlock()
		w.print("hostile mail: %v", err)
		return
	}
	w.ch.mu.Lock()
	w.ch.hostile++
	w.ch.mu.Unlock()
	w.stats.fault(kind)
}

// forgeNotifications puts on the notifications queue, for a few tenants,
// a copy of one of their real notifications with another tenant's
// SellerId and order (routed by the subscription, it must be dropped),
// and a malformed body.
func (w *world) forgeNotifications(ctx context.Context) {
	w.ch.mu.Lock()
	var real []sentNotification
	for _, n := range w.ch.notifications {
		if !n.forged {
			real = append(real, n)
		}
	}
	w.ch.mu.Unlock()
	if len(real) < 2 {
		return
	}
	for range 3 {
		a, b := real[w.intN(len(real))], real[w.intN(len(real))]
		if a.seller == b.seller {
			continue
		}
		body, ok := w.payloads.body("notify-sent", a.id)
		if !ok {
			continue
		}
		id := fmt.Sprintf("chaos-forged-%016x", w.rng64())
		body = strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(body, a.id, id), a.seller, b.seller), a.order, b.order)
		if _, err := w.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(w.ch.notifyURL), MessageBody: aws.String(body)}); err == nil {
			w.recordNotification(body, true)
			w.stats.fault("notification_forged_seller_id")
		}
	}
	if _, err := w.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(w.ch.notifyURL),
		MessageBody: aws.String(`{"NotificationType":"ORDER_CHANGE","Payload":{"OrderChangeNotification":"chaos-malformed`)}); err == nil {
		w.ch.mu.Lock()
		w.ch.malformed++
		w.ch.mu.Unlock()
		w.stats.fault("notification_malformed")
	}
}

// chanContainer is one ordernotify or inboundmail container: its handler
// on kill-aware dependencies.
type chanContainer struct {
	dead   atomic.Bool
	amazon *container // its SP-API, LWA and Vault side (nil: none)
	handle func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)
}

// kill stops the container at once, wherever it is.
func (c *chanContainer) kill() {
	c.dead.Store(true)
	if c.amazon != nil {
		c.amazon.dead.Store(true)
	}
}

// deadPush is the ordernotify container's store.
type deadPush struct {
	c *chanContainer
	s push.IntakeStore
}

func (d deadPush) ConnectionBySubscription(ctx context.Context, sub string) (marketplace.PushTarget, bool, error) {
	if d.c.dead.Load() {
		return marketplace.PushTarget{}, false, errKilled
	}
	return d.s.ConnectionBySubscription(ctx, sub)
}

func (d deadPush) IngestNotification(ctx context.Context, tenantID, connectionID string, msgs []marketplace.InboundMessage, rec marketplace.NotificationRecord) (marketplace.PageResult, marketplace.NotificationRecord, error) {
	if d.c.dead.Load() {
		return marketplace.PageResult{}, rec, errKilled
	}
	return d.s.IngestNotification(ctx, tenantID, connectionID, msgs, rec)
}

func (d deadPush) RecordNotification(ctx context.Context, r marketplace.NotificationRecord) error {
	if d.c.dead.Load() {
		return errKilled
	}
	return d.s.RecordNotification(ctx, r)
}

// deadMail is the inboundmail container's store and bucket.
type deadMail struct {
	c *chanContainer
	s inboundmail.Store
}

func (d deadMail) InboundAddressByEmail(ctx context.Context, email string) (marketplace.InboundAddress, error) {
	if d.c.dead.Load() {
		return marketplace.InboundAddress{}, errKilled
	}
	return d.s.InboundAddressByEmail(ctx, email)
}

func (d deadMail) RecordMail(ctx context.Context, rec marketplace.ReceivedMail) error {
	if d.c.dead.Load() {
		return errKilled
	}
	return d.s.RecordMail(ctx, rec)
}

func (d deadMail) IngestMail(ctx context.Context, rec marketplace.ReceivedMail, msg marketplace.InboundMessage, atts []marketplace.MailAttachment) (marketplace.MailResult, error) {
	if d.c.dead.Load() {
		return marketplace.MailResult{}, errKilled
	}
	return d.s.IngestMail(ctx, rec, msg, atts)
}

type deadObjects struct {
	c *chanContainer
	o inboundmail.Objects
}

func (d deadObjects) Get(ctx context.Context, bucket, key string, max int64) ([]byte, error) {
	if d.c.dead.Load() {
		return nil, errKilled
	}
	return d.o.Get(ctx, bucket, key, max)
}

func (d deadObjects) Put(ctx context.Context, bucket, key, contentType string, body []byte) error {
	if d.c.dead.Load() {
		return errKilled
	}
	return d.o.Put(ctx, bucket, key, contentType, body)
}

func (w *world) newNotifyContainer() *chanContainer {
	c := &chanContainer{amazon: &container{}} // its Amazon side: getOrder within the budget, its own caches
	st := deadStore{c: c.amazon, s: w.store}
	hc := &http.Client{Transport: deadTransport{c.amazon}, Timeout: clientTimeout}
	gw := sellerapi.New(credcache.New(deadSecrets{c: c.amazon, s: w.secrets}, credcache.WithClock(w.clock.Now)),
		lwa.New(w.sbServer.URL+"/auth/o2/token", lwa.WithHTTPClient(hc)), spapi.New(spapi.WithHTTPClient(hc)), st,
		sellerapi.WithEndpoint(w.sbServer.URL), sellerapi.WithLogger(w.log))
	c.handle = sqsbatch.Handler(push.NewIntake(deadPush{c, w.store}, gw, push.WithClock(w.clock.Now), push.WithLogger(slog.New(w.errs.handler(w.log.Handler())))))
	return c
}

func (w *world) newMailContainer() *chanContainer {
	c := &chanContainer{}
	flow := inboundmail.New(deadMail{c, w.store}, deadObjects{c, mailbucket.New(w.s3)}, devstack.InboundDomain,
		inboundmail.WithBucket(devstack.MailBucket), inboundmail.WithMaxBytes(mailMaxBytes), inboundmail.WithLogger(slog.New(w.errs.handler(w.log.Handler()))))
	c.handle = sqsbatch.Handler(flow)
	return c
}

// chanWorker is an ordernotify or inboundmail container fed by its queue
// like Lambda's event source mapping, killed at random like polltenant's
// (in-process: its store, bucket, Amazon and Vault refuse it from the
// instant of the kill and its batch is not acknowledged).
func (w *world) chanWorker(ctx context.Context, name, queueURL string, newC func() *chanContainer, tenantOf func(body string) string) {
	c := newC()
	for ctx.Err() == nil {
		out, err := w.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: w.set.Batch, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil || len(out.Messages) == 0 {
			if err != nil && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		w.stats.add(name+"_receives", 1)
		calm := w.calm.Load()
		dupID := ""
		if !calm && w.float() < w.set.DupRate {
			m := out.Messages[w.intN(len(out.Messages))]
			if _, err := w.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(queueURL),
				ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err == nil {
				w.stats.fault(name + "_sqs_duplicate_delivery")
				dupID = aws.ToString(m.MessageId)
			}
		}
		ev := events.SQSEvent{}
		tenants := map[string]string{}
		for _, m := range out.Messages {
			id, body := aws.ToString(m.MessageId), aws.ToString(m.Body)
			w.payloads.keep(name, id, body)
			tenants[id] = tenantOf(body)
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: id, ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: body, EventSource: "aws:sqs", Attributes: m.Attributes})
		}
		ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
		var killed atomic.Bool
		var timer *time.Timer
		if !calm && w.float() < w.set.CrashRate {
			timer = time.AfterFunc(time.Duration(w.float()*float64(w.set.CrashWindow)), func() {
				c.kill()
				cancel()
				killed.Store(true)
			})
		}
		t0 := time.Now()
		resp, _ := c.handle(ictx, ev)
		if timer != nil && !timer.Stop() {
			for !killed.Load() {
				time.Sleep(time.Millisecond)
			}
		}
		cancel()
		t1 := time.Now()
		injected := func(id string) string {
			if id == dupID {
				return "duplicate"
			}
			return ""
		}
		if killed.Load() {
			w.stats.fault(name + "_crash")
			for id, tenant := range tenants {
				a := attempt{tenant: tenant, start: t0, end: t1, outcome: "killed", injected: injected(id), errs: w.errs.take(id)}
				w.noteThrottles(tenant, a.errs)
				w.trace.add(id, a)
			}
			c = newC()
			continue
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		notDeleted := !calm && w.float() < w.set.NoDeleteRate
		// A batch that outlasted the visibility timeout comes back whole
		// (sqsbatch waits for every record): what slowed it, if injected,
		// explains the redelivery of its handled records.
		slow := ""
		if t1.Sub(t0) >= time.Duration(w.set.Visibility)*time.Second {
			for _, m := range out.Messages {
				if c := w.chanCause(name, tenants[aws.ToString(m.MessageId)], aws.ToString(m.Body), t0, t1); c != "" {
					slow = "slow_batch_" + c
					break
				}
			}
		}
		var del []types.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			if name == "mail" {
				if n, err := sesmail.Decode(aws.ToString(m.Body)); err == nil {
					w.ch.mu.Lock()
					w.ch.sesSQS[n.Mail.MessageID] = appendOnce(w.ch.sesSQS[n.Mail.MessageID], id)
					w.ch.mu.Unlock()
				}
			}
			a := attempt{tenant: tenants[id], start: t0, end: t1, outcome: "ok", injected: injected(id), errs: w.errs.take(id), cause: slow}
			w.noteThrottles(a.tenant, a.errs)
			if failed[id] {
				a.outcome, a.cause = "failed", w.aftermath(w.chanCause(name, a.tenant, aws.ToString(m.Body), t0, t1), a)
				if a.cause == "" && w.budgetAfter429(a.tenant, a.errs) {
					// The getOrder budget an injected 429 on an earlier
					// delivery emptied (until Amazon's retry time, on the
					// soak's clock, which stands still while a cycle drains).
					a.cause = "budget_empty_after_injected_429"
				}
			}
			if notDeleted {
				a.injected = "not_deleted"
			}
			w.trace.add(id, a)
			if !failed[id] {
				del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
			}
		}
		if notDeleted {
			w.stats.fault(name + "_sqs_visibility_timeout_redelivery")
			continue
		}
		if len(del) > 0 {
			if _, err := w.sqs.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: del}); err != nil {
				w.stats.add("sqs_delete_errors", 1)
			}
		}
	}
}

// chanCause explains a failed delivery of a channel's message: for a
// notification, what explains a poll's failure (getOrder goes through
// LWA, Vault, SP-API and PostgreSQL); for a mail, which needs only
// PostgreSQL and S3 here, a PostgreSQL restart or the injected S3 fault of
// its own object (missing; late, until the late write ended).
func (w *world) chanCause(name, tenant, body string, from, to time.Time) string {
	if name == "mail" {
		if w.trace.outageOf("postgres_restart", from, to) {
			return "postgres_restart"
		}
		if n, err := sesmail.Decode(body); err == nil {
			w.ch.mu.Lock()
			fault := w.ch.sesFault[n.Mail.MessageID]
			w.ch.mu.Unlock()
			switch fault {
			case "s3_missing":
				return "mail_s3_object_missing"
			case "s3_late":
				if w.trace.objectLate(n.Mail.MessageID, from, to) {
					return "mail_s3_object_late"
				}
			}
		}
		return ""
	}
	return w.causeOf(tenant, from, to)
}

func appendOnce(ids []string, id string) []string {
	for _, x := range ids {
		if x == id {
			return ids
		}
	}
	return append(ids, id)
}

var (
	throttledRe = regexp.MustCompile(`throttled by Amazon until (\S+): .*HTTP 429`)
	emptyRe     = regexp.MustCompile(`rate budget empty until (\S+)`)
)

// noteThrottles records the back-off ends of the 429s Amazon answered a
// tenant's getOrder (every one logged, by any delivery, killed or not).
func (w *world) noteThrottles(tenant string, errs []string) {
	for _, e := range errs {
		if m := throttledRe.FindStringSubmatch(e); m != nil {
			w.ch.mu.Lock()
			w.ch.throttled[tenant+"\x00"+m[1]] = true
			w.ch.mu.Unlock()
		}
	}
}

// budgetAfter429 reports whether a delivery failed on a getOrder budget
// that a 429 emptied: its "rate budget empty until T" names the back-off
// end T of a 429 Amazon answered the same tenant (the connection's budget
// is shared by its notifications). The 429 that set T may have been read
// by a delivery crashed inside the process, whose log the harness did not
// keep: a 429 of the same tenant whose back-off ends within
// budgetAfter429Slack of T, in the same drain, counts too.
func (w *world) budgetAfter429(tenant string, errs []string) bool {
	for _, e := range errs {
		if m := emptyRe.FindStringSubmatch(e); m != nil {
			until, perr := time.Parse(time.RFC3339Nano, m[1])
			w.ch.mu.Lock()
			ok := w.ch.throttled[tenant+"\x00"+m[1]]
			for k := range w.ch.throttled {
				t, end, _ := strings.Cut(k, "\x00")
				if ok || perr != nil || t != tenant {
					continue
				}
				if at, err := time.Parse(time.RFC3339Nano, end); err == nil && at.Sub(until).Abs() <= budgetAfter429Slack {
					ok = true
				}
			}
			w.ch.mu.Unlock()
			if ok {
				return true
			}
		}
	}
	return false
}

// budgetAfter429Slack: how far apart two 429 back-offs of one tenant in one
// drain are (a few seconds of the soak's clock).
const budgetAfter429Slack = time.Minute

// notifyTenant is the tenant a notification body is for (by its
// SellerId; a forged one names another tenant's seller).
func (w *world) notifyTenant(body string) string {
	n, err := push.Decode(body)
	if err != nil {
		return ""
	}
	if t := w.bySeller[n.SellerID]; t != nil {
		return t.id
	}
	return ""
}

// mailTenant is the tenant a mail queue body is for (its recipient).
func (w *world) mailTenant(body string) string {
	n, err := sesmail.Decode(body)
	if err != nil || len(n.Receipt.Recipients) == 0 {
		return ""
	}
	return w.addrTenant[strings.ToLower(n.Receipt.Recipients[0])]
}

// startChannelWorkers starts two ordernotify and two inboundmail
// containers.
func (w *world) startChannelWorkers(ctx context.Context) (stop func()) {
	if w.ch == nil {
		return func() {}
	}
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			w.chanWorker(wctx, "notify", w.ch.notifyURL, w.newNotifyContainer, w.notifyTenant)
		}()
		go func() { defer wg.Done(); w.chanWorker(wctx, "mail", w.ch.mailURL, w.newMailContainer, w.mailTenant) }()
	}
	return func() { cancel(); wg.Wait() }
}

// channelsDrained reports whether both channel queues are empty and the
// sandbox has no notification still on its way to them (one delayed by a
// DeliveryFault lands in the queue up to Delay after it was published: a
// queue seen empty before then is not drained).
func (w *world) channelsDrained(ctx context.Context) bool {
	if w.ch == nil {
		return true
	}
	if w.sb.NotificationStats().InFlight != 0 {
		return false
	}
	for _, u := range []string{w.ch.notifyURL, w.ch.mailURL} {
		if d, err := w.queueDepth(ctx, u); err != nil || d != 0 {
			return false
		}
	}
	return true
}
