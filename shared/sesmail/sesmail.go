// Package sesmail reads the notification SES publishes when a receipt rule
// with an S3 action has stored a mail ("notificationType": "Received"), as
// it reaches SQS: wrapped in SNS's envelope, or bare when the subscription
// delivers raw messages. The field names are SES's; testdata/ses holds an
// example. It also reads SES's sending events (events.go: Send, Delivery,
// Bounce… as a configuration set publishes them through SNS). It depends on
// the standard library only.
package sesmail

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotReceived is an SQS body that is valid but not a "Received"
// notification (SNS's subscription confirmation, SES's set-up test
// notification): nothing to do.
var ErrNotReceived = errors.New("not an SES Received notification")

// ErrMalformed is a body that is neither SNS's envelope nor SES's
// notification.
var ErrMalformed = errors.New("malformed SES notification")

// Verdict statuses.
const (
	Pass             = "PASS"
	Fail             = "FAIL"
	Gray             = "GRAY"
	ProcessingFailed = "PROCESSING_FAILED"
)

// Verdict is one of SES's checks.
type Verdict struct {
	Status string `json:"status"`
}

// Header is one header of the mail as SES saw it.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CommonHeaders are the headers SES parses for every mail.
type CommonHeaders struct {
	ReturnPath string   `json:"returnPath,omitempty"`
	From       []string `json:"from,omitempty"`
	Date       string   `json:"date,omitempty"`
	To         []string `json:"to,omitempty"`
	MessageID  string   `json:"messageId,omitempty"`
	Subject    string   `json:"subject,omitempty"`
}

// Mail is the notification's "mail" object.
type Mail struct {
	Timestamp        time.Time     `json:"timestamp"`
	Source           string        `json:"source"`
	MessageID        string        `json:"messageId"` // SES's id: the S3 object's name
	Destination      []string      `json:"destination"`
	HeadersTruncated bool          `json:"headersTruncated"`
	Headers          []Header      `json:"headers,omitempty"`
	CommonHeaders    CommonHeaders `json:"commonHeaders"`
}

// Action is the receipt rule action that produced the notification.
type Action struct {
	Type            string `json:"type"` // "S3"
	TopicArn        string `json:"topicArn,omitempty"`
	BucketName      string `json:"bucketName,omitempty"`
	ObjectKeyPrefix string `json:"objectKeyPrefix,omitempty"`
	ObjectKey       string `json:"objectKey,omitempty"`
}

// Receipt is the notification's "receipt" object.
type Receipt struct {
	Timestamp            time.Time `json:"timestamp"`
	ProcessingTimeMillis int       `json:"processingTimeMillis"`
	Recipients           []string  `json:"recipients"` // the envelope recipients this rule matched
	SpamVerdict          Verdict   `json:"spamVerdict"`
	VirusVerdict         Verdict   `json:"virusVerdict"`
	SPFVerdict           Verdict   `json:"spfVerdict"`
	DKIMVerdict          Verdict   `json:"dkimVerdict"`
	DMARCVerdict         Verdict   `json:"dmarcVerdict"`
	DMARCPolicy          string    `json:"dmarcPolicy,omitempty"` // when DMARC failed: none, quarantine, reject
	Action               Action    `json:"action"`
}

// Notification is SES's "Received" notification.
type Notification struct {
	NotificationType string  `json:"notificationType"`
	Mail             Mail    `json:"mail"`
	Receipt          Receipt `json:"receipt"`
	// Content is the mail itself when the SNS action carries it (under
	// 150 KB); the S3 action leaves it empty.
	Content string `json:"content,omitempty"`
}

// Envelope is what SNS delivers to SQS without raw message delivery.
type Envelope struct {
	Type      string `json:"Type"`
	MessageID string `json:"MessageId"`
	TopicArn  string `json:"TopicArn"`
	Subject   string `json:"Subject,omitempty"`
	Message   string `json:"Message"`
	Timestamp string `json:"Timestamp"`
}

// Decode reads an SQS body: SNS's envelope around SES's notification, or
// the notification itself. ErrNotReceived for other valid notifications,
// ErrMalformed for anything else.
func Decode(body string) (Notification, error) {
	var probe struct {
		Type             string `json:"Type"`
		Message          string `json:"Message"`
		NotificationType string `json:"notificationType"`
		EventType        string `json:"eventType"`
	}
	if err := json.Unmarshal([]byte(body), &probe); err != nil {
		return Notification{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	inner := body
	switch {
	case probe.Type == "Notification":
		inner = probe.Message
	case probe.Type != "":
		return Notification{}, fmt.Errorf("%w: SNS %s", ErrNotReceived, probe.Type)
	}
	var n Notification
	if err := json.Unmarshal([]byte(inner), &n); err != nil {
		return Notification{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch n.NotificationType {
	case "Received":
	case "":
		if strings.Contains(inner, `"AMAZON_SES_SETUP_NOTIFICATION"`) || probe.EventType != "" {
			return Notification{}, fmt.Errorf("%w: set-up or event notification", ErrNotReceived)
		}
		return Notification{}, fmt.Errorf("%w: no notificationType", ErrMalformed)
	default:
		return Notification{}, fmt.Errorf("%w: %s", ErrNotReceived, n.NotificationType)
	}
	if n.Mail.MessageID == "" {
		return Notification{}, fmt.Errorf("%w: no mail.messageId", ErrMalformed)
	}
	if n.Receipt.Action.Type == "S3" && (n.Receipt.Action.BucketName == "" || n.Receipt.Action.ObjectKey == "") {
		return Notification{}, fmt.Errorf("%w: S3 action without bucket or key", ErrMalformed)
	}
	return n, nil
}
