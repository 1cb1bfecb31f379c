package reply

import (
	"fmt"
	"strings"
	"time"
)

// Event is what SES (or Amazon, by its notice mail) says about a sent
// reply, as the consumer hands it to the store.
type Event struct {
	SESMessageID string // SendEmail's MessageId ("" for Amazon's notice)
	Type         string // sesmail's event types, or EventAmazonNotice
	Key          string // tells two events of one type and message apart (a bounce's feedback id)
	ReplyID      string // the reply's tag ("" when absent)
	TenantID     string // the tenant's tag
	At           time.Time
	ReasonCode   string // for failures: "bounce_permanent_general", "amazon_sender_not_approved"…
	Reason       string // what an agent reads
	Payload      []byte // the event as received (JSON)
}

// EventAmazonNotice is Amazon's notice mail about a reply it did not deliver.
const EventAmazonNotice = "AmazonNotice"

// Fate is a reply's state in both tables after an event.
type Fate struct {
	State  string // the connector's (StateQueued…)
	Status string // KeyBuzz's (StatusPending…)
}

// Transition is what an event changes.
type Transition struct {
	Next Fate
	// TicketEvent is KeyBuzz's event to write ("OUTBOUND_SENT",
	// "OUTBOUND_FAILED", "" for none): only when KeyBuzz's status changes.
	TicketEvent string
	Delivered   bool // set the delivery time
	Failed      bool // set the reason
}

// Apply decides what an event does to a reply, whatever order events come
// in: Send and Delivery make a pending reply SENT (Delivery also DELIVERED
// in the connector's state); Bounce, Complaint, Reject, Rendering Failure
// and Amazon's notices make it FAILED, even after SENT (Amazon accepting a
// mail is not the buyer receiving it); a FAILED reply stays FAILED; a
// Send arriving after the Delivery changes nothing; DeliveryDelay and
// other types change nothing.
func Apply(cur Fate, eventType string) Transition {
	t := Transition{Next: cur}
	switch eventType {
	case "Send", "Delivery":
		if cur.Status == StatusFailed {
			return t
		}
		if cur.Status != StatusSent {
			t.Next.Status, t.TicketEvent = StatusSent, "OUTBOUND_SENT"
		}
		if eventType == "Delivery" {
			t.Next.State, t.Delivered = StateDelivered, true
		} else if cur.State != StateDelivered {
			t.Next.State = StateAccepted
		}
	case "Bounce", "Complaint", "Reject", "Rendering Failure", EventAmazonNotice:
		if cur.Status == StatusFailed {
			return t
		}
		t.Next = Fate{State: StateFailed, Status: StatusFailed}
		t.TicketEvent, t.Failed = "OUTBOUND_FAILED", true
	}
	return t
}

// BounceReason words a bounce for an agent.
func BounceReason(bounceType, subType, diagnostic string) (code, reason string) {
	code = "bounce_" + strings.ToLower(bounceType) + "_" + strings.ToLower(subType)
	reason = fmt.Sprintf("Amazon's mail server refused the reply (%s bounce, %s)", strings.ToLower(bounceType), subType)
	if diagnostic != "" {
		reason += ": " + diagnostic
	}
	return code, reason
}

// NoticeReason words Amazon's notice about a reply (shared/relaymail's
// notice reasons) for an agent, with what to do.
func NoticeReason(notice string) (code, reason string) {
	switch notice {
	case "SENDER_NOT_APPROVED":
		return "amazon_sender_not_approved", "Amazon refused the reply: the sending address is not approved for this marketplace. " +
			"Add it in Seller Central > Settings > Messaging Permissions, then send the reply again."
	case "CONTENT_REFUSED":
		return "amazon_content_refused", "Amazon refused the reply: it did not meet the Buyer-Seller Messaging guidelines " +
			"(no links except Amazon's, no e-mail addresses or phone numbers, no marketing). Rewrite it and send again."
	case "BUYER_OPTED_OUT":
		return "amazon_buyer_opted_out", "Amazon did not deliver the reply: the buyer opted out of unsolicited messages."
	default:
		return "amazon_delivery_failed", "Amazon could not deliver the reply to the buyer."
	}
}

// Unanswered counts open Amazon tickets by the age of their oldest
// unanswered buyer message (Amazon's 24-hour response clock).
type Unanswered struct {
	Under12h, From12To20h, From20To24h, Late int
}
