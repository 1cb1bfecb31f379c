package sesmail

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SES's sending events, as a configuration set's SNS event destination
// publishes them ("eventType": "Send", "Delivery", "Bounce"…), with the
// message's tags in mail.tags. The field names are SES's (SES developer
// guide, "Contents of event data that Amazon SES publishes to Amazon SNS").

// Event types.
const (
	EventSend             = "Send"
	EventDelivery         = "Delivery"
	EventBounce           = "Bounce"
	EventComplaint        = "Complaint"
	EventReject           = "Reject"
	EventRenderingFailure = "Rendering Failure"
	EventDeliveryDelay    = "DeliveryDelay"
	EventOpen             = "Open"
	EventClick            = "Click"
	EventSubscription     = "Subscription"
)

// ErrNotEvent is a valid body that is no sending event (SNS's subscription
// confirmation, a receipt notification): nothing to do.
var ErrNotEvent = errors.New("not an SES sending event")

// EventMail is an event's "mail" object: the message as SES sent it.
type EventMail struct {
	Timestamp        time.Time           `json:"timestamp"`
	Source           string              `json:"source"`
	SourceArn        string              `json:"sourceArn,omitempty"`
	SendingAccountID string              `json:"sendingAccountId,omitempty"`
	MessageID        string              `json:"messageId"` // SendEmail's MessageId
	Destination      []string            `json:"destination"`
	HeadersTruncated bool                `json:"headersTruncated"`
	Headers          []Header            `json:"headers,omitempty"`
	CommonHeaders    CommonHeaders       `json:"commonHeaders"`
	Tags             map[string][]string `json:"tags,omitempty"`
}

// Tag is the first value of a message tag ("" when absent).
func (m EventMail) Tag(name string) string {
	if v := m.Tags[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Recipient is one recipient named by a bounce, complaint or delay.
type Recipient struct {
	EmailAddress   string `json:"emailAddress"`
	Action         string `json:"action,omitempty"`
	Status         string `json:"status,omitempty"`
	DiagnosticCode string `json:"diagnosticCode,omitempty"`
}

// Delivery is a "Delivery" event's details: the receiving server accepted
// the message (not that the buyer saw it).
type Delivery struct {
	Timestamp            time.Time `json:"timestamp"`
	ProcessingTimeMillis int       `json:"processingTimeMillis"`
	Recipients           []string  `json:"recipients"`
	SMTPResponse         string    `json:"smtpResponse"`
	ReportingMTA         string    `json:"reportingMTA,omitempty"`
}

// Bounce is a "Bounce" event's details.
type Bounce struct {
	BounceType        string      `json:"bounceType"`    // Undetermined, Permanent, Transient
	BounceSubType     string      `json:"bounceSubType"` // General, NoEmail, Suppressed, MailboxFull…
	BouncedRecipients []Recipient `json:"bouncedRecipients"`
	Timestamp         time.Time   `json:"timestamp"`
	FeedbackID        string      `json:"feedbackId,omitempty"`
	ReportingMTA      string      `json:"reportingMTA,omitempty"`
}

// Complaint is a "Complaint" event's details.
type Complaint struct {
	ComplainedRecipients  []Recipient `json:"complainedRecipients"`
	Timestamp             time.Time   `json:"timestamp"`
	FeedbackID            string      `json:"feedbackId,omitempty"`
	ComplaintFeedbackType string      `json:"complaintFeedbackType,omitempty"`
}

// Reject is a "Reject" event's details (SES refused to send: a virus).
type Reject struct {
	Reason string `json:"reason"`
}

// Failure is a "Rendering Failure" event's details.
type Failure struct {
	ErrorMessage string `json:"errorMessage"`
	TemplateName string `json:"templateName,omitempty"`
}

// DeliveryDelay is a "DeliveryDelay" event's details.
type DeliveryDelay struct {
	Timestamp         time.Time   `json:"timestamp"`
	DelayType         string      `json:"delayType"`
	ExpirationTime    time.Time   `json:"expirationTime"`
	DelayedRecipients []Recipient `json:"delayedRecipients"`
}

// Event is one sending event.
type Event struct {
	EventType     string         `json:"eventType"`
	Mail          EventMail      `json:"mail"`
	Send          *struct{}      `json:"send,omitempty"`
	Delivery      *Delivery      `json:"delivery,omitempty"`
	Bounce        *Bounce        `json:"bounce,omitempty"`
	Complaint     *Complaint     `json:"complaint,omitempty"`
	Reject        *Reject        `json:"reject,omitempty"`
	Failure       *Failure       `json:"failure,omitempty"`
	DeliveryDelay *DeliveryDelay `json:"deliveryDelay,omitempty"`
}

// At is when the event happened: its details' timestamp, else the mail's.
func (e Event) At() time.Time {
	switch {
	case e.Delivery != nil && !e.Delivery.Timestamp.IsZero():
		return e.Delivery.Timestamp
	case e.Bounce != nil && !e.Bounce.Timestamp.IsZero():
		return e.Bounce.Timestamp
	case e.Complaint != nil && !e.Complaint.Timestamp.IsZero():
		return e.Complaint.Timestamp
	case e.DeliveryDelay != nil && !e.DeliveryDelay.Timestamp.IsZero():
		return e.DeliveryDelay.Timestamp
	}
	return e.Mail.Timestamp
}

// DecodeEvent reads an SQS body: SNS's envelope around SES's sending event,
// or the event itself. ErrNotEvent for other valid notifications,
// ErrMalformed for anything else.
func DecodeEvent(body string) (Event, error) {
	var probe struct {
		Type    string `json:"Type"`
		Message string `json:"Message"`
	}
	if err := json.Unmarshal([]byte(body), &probe); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	inner := body
	switch {
	case probe.Type == "Notification":
		inner = probe.Message
	case probe.Type != "":
		return Event{}, fmt.Errorf("%w: SNS %s", ErrNotEvent, probe.Type)
	}
	var e Event
	if err := json.Unmarshal([]byte(inner), &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if e.EventType == "" {
		var n struct {
			NotificationType string `json:"notificationType"`
		}
		_ = json.Unmarshal([]byte(inner), &n)
		if n.NotificationType != "" {
			return Event{}, fmt.Errorf("%w: notification %s", ErrNotEvent, n.NotificationType)
		}
		return Event{}, fmt.Errorf("%w: no eventType", ErrMalformed)
	}
	if e.Mail.MessageID == "" {
		return Event{}, fmt.Errorf("%w: no mail.messageId", ErrMalformed)
	}
	return e, nil
}
