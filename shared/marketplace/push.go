package marketplace

import "time"

// Push: the values the ORDER_CHANGE intake (shared/push) and its store
// (shared/postgres) share.

// PushTarget is a connection as the push flow sees it: what routing a
// notification checks and what subscribing needs.
type PushTarget struct {
	SellerAccount  // its AppSource is also what names its destination
	Status         Status
	SubscriptionID string // "" when the connection has no ORDER_CHANGE subscription
}

// Outcome is what the intake did with one notification.
type Outcome string

const (
	OutcomeStored              Outcome = "STORED"               // its events are stored (new messages created)
	OutcomeDuplicate           Outcome = "DUPLICATE"            // its events were already stored (by push or poll)
	OutcomeNoEvent             Outcome = "NO_EVENT"             // the order holds no buyer event we ticket
	OutcomeIgnored             Outcome = "IGNORED"              // a type or change we do not ticket
	OutcomeUnknownSubscription Outcome = "UNKNOWN_SUBSCRIPTION" // no connection holds its SubscriptionId
	OutcomeSellerMismatch      Outcome = "SELLER_MISMATCH"      // its SellerId is not the connection's seller
	OutcomeNotConnected        Outcome = "NOT_CONNECTED"        // the connection is disconnected or needs re-authorization
	OutcomeOrderNotFound       Outcome = "ORDER_NOT_FOUND"      // getOrder kept answering 404
	OutcomeMalformed           Outcome = "MALFORMED"            // the body is not an ORDER_CHANGE notification
)

// NotificationRecord is what is kept of one received notification (never
// buyer data: ids, types and the outcome).
type NotificationRecord struct {
	NotificationID   string // NotificationMetadata.NotificationId, or "sqs:<messageId>" when absent
	NotificationType string
	SubscriptionID   string
	ConnectionID     string // "" when it could not be routed
	TenantID         string
	OrderID          string
	ChangeType       string
	Outcome          Outcome
	Detail           string
	EventTime        *time.Time
	MessagesCreated  int
	// Routed marks a notification that reached its connection (the seller
	// matched): it moves the connection's lastNotificationAt.
	Routed bool
}

// PushStatus is what the status route shows of push for a connection.
type PushStatus struct {
	Live               bool // the connection has an ORDER_CHANGE subscription
	SubscriptionID     string
	SubscribedAt       *time.Time
	LastNotificationAt *time.Time
	Error              string // the last subscription failure, "" after a success
}
