package spapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Notifications API v1 operations, as in Amazon's usage plans. Every one of
// them allows 1 request per second with a burst of 5 (the model's default
// plan). createDestination, getDestinations and deleteSubscriptionById are
// grantless (an LWA client_credentials token with scope
// sellingpartnerapi::notifications); createSubscription and getSubscription
// take the seller's token.
const (
	OpCreateDestination      = "createDestination"
	OpGetDestinations        = "getDestinations"
	OpCreateSubscription     = "createSubscription"
	OpGetSubscription        = "getSubscription"
	OpDeleteSubscriptionByID = "deleteSubscriptionById"

	NotificationsRate  = 1.0
	NotificationsBurst = 5

	// NotificationsScope is the LWA scope of grantless notifications calls.
	NotificationsScope = "sellingpartnerapi::notifications"
	// NotificationTypeOrderChange is the notification type the connector subscribes to.
	NotificationTypeOrderChange = "ORDER_CHANGE"
)

// Order change types of the ORDER_CHANGE event filter (OrderChangeTypeEnum).
const (
	OrderChangeBuyerRequested = "BuyerRequestedChange"
	OrderChangeDeliveryTip    = "DeliveryTipChange"
	OrderChangeStatus         = "OrderStatusChange"
)

// Destination is a notifications destination (the model's Destination) of
// the SQS kind.
type Destination struct {
	ID       string
	Name     string
	QueueARN string // "" for an EventBridge destination
}

type destinationJSON struct {
	Name          string `json:"name"`
	DestinationID string `json:"destinationId"`
	Resource      struct {
		SQS *struct {
			ARN string `json:"arn"`
		} `json:"sqs"`
	} `json:"resource"`
}

func (d destinationJSON) destination() Destination {
	out := Destination{ID: d.DestinationID, Name: d.Name}
	if d.Resource.SQS != nil {
		out.QueueARN = d.Resource.SQS.ARN
	}
	return out
}

// CreateDestination calls POST /notifications/v1/destinations for the SQS
// queue queueARN, with a grantless token. Amazon answers 409 (ErrConflict)
// when a destination for that queue exists: find it with GetDestinations.
func (c *Client) CreateDestination(ctx context.Context, endpoint string, tokens Tokens, name, queueARN string) (Destination, error) {
	body, _ := json.Marshal(map[string]any{
		"name":                  name,
		"resourceSpecification": map[string]any{"sqs": map[string]string{"arn": queueARN}},
	})
	var out struct {
		Payload *destinationJSON `json:"payload"`
	}
	if _, err := c.do(ctx, http.MethodPost, notificationsURL(endpoint, "destinations"), body, tokens, &out); err != nil {
		return Destination{}, fmt.Errorf("createDestination: %w", err)
	}
	if out.Payload == nil || out.Payload.DestinationID == "" {
		return Destination{}, errors.New("createDestination: answer has no destinationId")
	}
	return out.Payload.destination(), nil
}

// GetDestinations calls GET /notifications/v1/destinations with a
// grantless token: every destination of the application.
func (c *Client) GetDestinations(ctx context.Context, endpoint string, tokens Tokens) ([]Destination, error) {
	var out struct {
		Payload []destinationJSON `json:"payload"`
	}
	if _, err := c.do(ctx, http.MethodGet, notificationsURL(endpoint, "destinations"), nil, tokens, &out); err != nil {
		return nil, fmt.Errorf("getDestinations: %w", err)
	}
	list := make([]Destination, 0, len(out.Payload))
	for _, d := range out.Payload {
		list = append(list, d.destination())
	}
	return list, nil
}

// Subscription is a notifications subscription (the model's Subscription).
type Subscription struct {
	ID               string
	PayloadVersion   string
	DestinationID    string
	OrderChangeTypes []string // the ORDER_CHANGE event filter; nil: every change type
}

// SubscriptionRequest is a createSubscription body. OrderChangeTypes, when
// set, becomes the ORDER_CHANGE event filter.
type SubscriptionRequest struct {
	PayloadVersion   string
	DestinationID    string
	OrderChangeTypes []string
}

type subscriptionJSON struct {
	SubscriptionID      string `json:"subscriptionId"`
	PayloadVersion      string `json:"payloadVersion"`
	DestinationID       string `json:"destinationId"`
	ProcessingDirective *struct {
		EventFilter *struct {
			OrderChangeTypes []string `json:"orderChangeTypes"`
		} `json:"eventFilter"`
	} `json:"processingDirective"`
}

func (s subscriptionJSON) subscription() Subscription {
	out := Subscription{ID: s.SubscriptionID, PayloadVersion: s.PayloadVersion, DestinationID: s.DestinationID}
	if s.ProcessingDirective != nil && s.ProcessingDirective.EventFilter != nil {
		out.OrderChangeTypes = s.ProcessingDirective.EventFilter.OrderChangeTypes
	}
	return out
}

// CreateSubscription calls POST /notifications/v1/subscriptions/{notificationType}
// with the seller's token. Amazon answers 409 (ErrConflict) when the seller
// already has a subscription of that type and payload version: read it with
// GetSubscription.
func (c *Client) CreateSubscription(ctx context.Context, endpoint string, tokens Tokens, notificationType string, r SubscriptionRequest) (Subscription, error) {
	req := map[string]any{"payloadVersion": r.PayloadVersion, "destinationId": r.DestinationID}
	if len(r.OrderChangeTypes) > 0 && notificationType == NotificationTypeOrderChange {
		req["processingDirective"] = map[string]any{"eventFilter": map[string]any{
			"eventFilterType":  NotificationTypeOrderChange,
			"orderChangeTypes": r.OrderChangeTypes,
		}}
	}
	body, _ := json.Marshal(req)
	var out struct {
		Payload *subscriptionJSON `json:"payload"`
	}
	if _, err := c.do(ctx, http.MethodPost, notificationsURL(endpoint, "subscriptions", notificationType), body, tokens, &out); err != nil {
		return Subscription{}, fmt.Errorf("createSubscription: %w", err)
	}
	if out.Payload == nil || out.Payload.SubscriptionID == "" {
		return Subscription{}, errors.New("createSubscription: answer has no subscriptionId")
	}
	return out.Payload.subscription(), nil
}

// GetSubscription calls GET /notifications/v1/subscriptions/{notificationType}
// with the seller's token: the seller's subscription of that type (of
// payloadVersion when not ""). No subscription is ErrNotFound.
func (c *Client) GetSubscription(ctx context.Context, endpoint string, tokens Tokens, notificationType, payloadVersion string) (Subscription, error) {
	u := notificationsURL(endpoint, "subscriptions", notificationType)
	if payloadVersion != "" {
		u += "?" + url.Values{"payloadVersion": {payloadVersion}}.Encode()
	}
	var out struct {
		Payload *subscriptionJSON `json:"payload"`
	}
	if _, err := c.do(ctx, http.MethodGet, u, nil, tokens, &out); err != nil {
		return Subscription{}, fmt.Errorf("getSubscription: %w", err)
	}
	if out.Payload == nil || out.Payload.SubscriptionID == "" {
		return Subscription{}, errors.New("getSubscription: answer has no subscriptionId")
	}
	return out.Payload.subscription(), nil
}

// DeleteSubscriptionByID calls DELETE
// /notifications/v1/subscriptions/{notificationType}/{subscriptionId} with
// a grantless token (so it works after the seller revoked the app). An
// unknown subscription is ErrNotFound.
func (c *Client) DeleteSubscriptionByID(ctx context.Context, endpoint string, tokens Tokens, notificationType, subscriptionID string) error {
	if strings.TrimSpace(subscriptionID) == "" {
		return errors.New("deleteSubscriptionById: empty subscription id")
	}
	if _, err := c.do(ctx, http.MethodDelete, notificationsURL(endpoint, "subscriptions", notificationType, subscriptionID), nil, tokens, nil); err != nil {
		return fmt.Errorf("deleteSubscriptionById: %w", err)
	}
	return nil
}

func notificationsURL(endpoint string, segments ...string) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(endpoint, "/"))
	b.WriteString("/notifications/v1")
	for _, s := range segments {
		b.WriteString("/")
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}
