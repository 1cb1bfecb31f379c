package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Notifications API v1: destinations (grantless), subscriptions (the
// seller's token to create and read, grantless to delete), with Amazon's
// 409s, error bodies and usage plan (1/s, burst 5 per operation), and the
// delivery of ORDER_CHANGE notifications to the subscribed SQS queue
// whenever a buyer asks to cancel (AddCancellationRequest, AddOrder with a
// cancellation) or an order's status changes (SetOrderStatus).

// Operation names of the Notifications API (SetRatePlan, Stats).
const (
	OpCreateDestination      = "createDestination"
	OpGetDestinations        = "getDestinations"
	OpCreateSubscription     = "createSubscription"
	OpGetSubscription        = "getSubscription"
	OpDeleteSubscriptionByID = "deleteSubscriptionById"
)

// Deliver sends one notification body to the SQS queue queueARN.
type Deliver func(ctx context.Context, queueARN, body string) error

// SQSDelivery delivers to the SQS API at endpoint (fauxqs locally): the
// queue is looked up by the ARN's name and account.
func SQSDelivery(endpoint string) Deliver {
	var mu sync.Mutex
	urls := map[string]string{}
	clients := map[string]*sqs.Client{}
	return func(ctx context.Context, queueARN, body string) error {
		parts := strings.Split(queueARN, ":")
		if len(parts) != 6 {
			return fmt.Errorf("not an SQS ARN: %q", queueARN)
		}
		region, account, name := parts[3], parts[4], parts[5]
		mu.Lock()
		c := clients[region]
		if c == nil {
			c = sqs.New(sqs.Options{Region: region, BaseEndpoint: aws.String(endpoint),
				Credentials: credentials.NewStaticCredentialsProvider("sandbox", "sandbox", "")})
			clients[region] = c
		}
		u := urls[queueARN]
		mu.Unlock()
		if u == "" {
			out, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name), QueueOwnerAWSAccountId: aws.String(account)})
			if err != nil {
				return fmt.Errorf("queue %s: %w", queueARN, err)
			}
			u = aws.ToString(out.QueueUrl)
			mu.Lock()
			urls[queueARN] = u
			mu.Unlock()
		}
		_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(u), MessageBody: aws.String(body)})
		return err
	}
}

// DeliveryFaults make the sandbox misdeliver notifications, counting every
// notification it publishes (1, 2, 3, …): every DropEvery-th is never
// sent, every DuplicateEvery-th is sent twice, every DelayEvery-th is sent
// after Delay (real time), every ReorderEvery-th is held back and sent
// after the next one. Zero turns a fault off.
type DeliveryFaults struct {
	DropEvery      int           `json:"dropEvery"`
	DuplicateEvery int           `json:"duplicateEvery"`
	DelayEvery     int           `json:"delayEvery"`
	Delay          time.Duration `json:"-"`
	ReorderEvery   int           `json:"reorderEvery"`
	// GetOrderLag makes getOrder lag behind what notifications announce, as
	// Amazon's eventually consistent read APIs do: for this long after a
	// change, getOrder answers 404 for an order placed then and shows an
	// older order without its new cancellation request.
	GetOrderLag time.Duration `json:"-"`
}

// NotificationStats counts what the sandbox published and delivered.
type NotificationStats struct {
	Published  int `json:"published"`  // notifications due to a subscriber
	Sent       int `json:"sent"`       // SendMessage calls that succeeded (a duplicate counts twice)
	Dropped    int `json:"dropped"`    // dropped by DeliveryFaults
	Duplicated int `json:"duplicated"` // sent twice by DeliveryFaults
	Delayed    int `json:"delayed"`
	Reordered  int `json:"reordered"`
	Failed     int `json:"failed"` // SendMessage errors (no queue, emulator down)
	Held       int `json:"held"`   // held back for reordering, not sent yet (0 or 1)
	// InFlight is how many SendMessage calls are still to come for the
	// notifications handed to delivery (queued behind others or waiting
	// out a delay; a duplicate counts twice), the held one excluded: while
	// it is not 0, the subscriber's queue is not final.
	InFlight int `json:"inFlight"`
}

type destination struct {
	id, name, arn string
}

type subscription struct {
	id, sellerID, notificationType, payloadVersion, destinationID string
	changeTypes                                                   []string // nil: every change type
}

// notifier is the sandbox's Notifications state; guarded by Server.mu
// except where noted.
type notifier struct {
	destinations map[string]*destination  // by id
	subs         map[string]*subscription // by id
	faults       DeliveryFaults
	seq          int
	variant      int // notifications rendered: picks each one's shape (orderchange.go)
	held         *outgoing
	stats        NotificationStats
	outbox       chan outgoing // delivery order, drained by one goroutine
	start        sync.Once
}

type outgoing struct {
	arn, body string
	delay     time.Duration
	copies    int
}

var notificationTypes = map[string]bool{"ORDER_CHANGE": true, "ANY_OFFER_CHANGED": true, "FEED_PROCESSING_FINISHED": true, "REPORT_PROCESSING_FINISHED": true}

var orderChangeTypes = map[string]bool{"BuyerRequestedChange": true, "DeliveryTipChange": true, "OrderStatusChange": true}

var sqsARN = regexp.MustCompile(`^arn:aws:sqs:\S+:\S+:\S+`)

func (s *Server) notifierLocked() *notifier {
	if s.notes == nil {
		s.notes = &notifier{destinations: map[string]*destination{}, subs: map[string]*subscription{}, outbox: make(chan outgoing, 4096)}
	}
	return s.notes
}

func (s *Server) notificationRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /notifications/v1/destinations", s.notificationsAPI(OpCreateDestination, true, s.handleCreateDestination))
	m.HandleFunc("GET /notifications/v1/destinations", s.notificationsAPI(OpGetDestinations, true, s.handleGetDestinations))
	m.HandleFunc("POST /notifications/v1/subscriptions/{notificationType}", s.notificationsAPI(OpCreateSubscription, false, s.handleCreateSubscription))
	m.HandleFunc("GET /notifications/v1/subscriptions/{notificationType}", s.notificationsAPI(OpGetSubscription, false, s.handleGetSubscription))
	m.HandleFunc("DELETE /notifications/v1/subscriptions/{notificationType}/{subscriptionId}", s.notificationsAPI(OpDeleteSubscriptionByID, true, s.handleDeleteSubscription))

	m.HandleFunc("PUT /_sandbox/notifications/faults", func(w http.ResponseWriter, r *http.Request) {
		var in faultsJSON
		if !decode(w, r, &in) {
			return
		}
		f := in.DeliveryFaults
		f.Delay = time.Duration(in.DelayMs) * time.Millisecond
		f.GetOrderLag = time.Duration(in.GetOrderLagMs) * time.Millisecond
		if f.DropEvery < 0 || f.DuplicateEvery < 0 || f.DelayEvery < 0 || f.ReorderEvery < 0 || f.Delay < 0 || f.GetOrderLag < 0 {
			adminError(w, http.StatusBadRequest, "every field must be >= 0")
			return
		}
		s.SetDeliveryFaults(f)
		// The settings in force, as the sandbox reads them back.
		writeJSON(w, http.StatusOK, jsonType, toFaultsJSON(s.DeliveryFaults()))
	})
	m.HandleFunc("GET /_sandbox/notifications/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, jsonType, toFaultsJSON(s.DeliveryFaults()))
	})
	s.orderChangeRoutes(m)
	m.HandleFunc("GET /_sandbox/notifications/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, jsonType, s.NotificationStats())
	})
	m.HandleFunc("PUT /_sandbox/sellers/{id}/orders/{orderId}/status", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		var in struct {
			Status string `json:"status"`
		}
		if !decode(w, r, &in) {
			return
		}
		if err := s.SetOrderStatus(id, r.PathValue("orderId"), in.Status); err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"orderId": r.PathValue("orderId"), "status": in.Status})
	}))
}

// notificationsAPI wraps a Notifications operation: request id, token
// (grantless or the seller's, as the operation requires), rate limit.
func (s *Server) notificationsAPI(op string, grantless bool, h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-amzn-RequestId", newRequestID())
		sellerID, isGrantless, detail := s.authenticateAny(r.Header.Get("x-amz-access-token"))
		if detail == "" && isGrantless != grantless { // a valid token of the wrong kind
			writeAPIError(w, http.StatusForbidden, apiError{"Unauthorized", "Access to requested resource is denied.", ""})
			return
		}
		if detail != "" {
			writeAPIError(w, http.StatusForbidden, apiError{"Unauthorized", "Access to requested resource is denied.", detail})
			return
		}
		if seller, ok := s.seller(sellerID); ok && wrongRegion(r, seller) {
			writeAPIError(w, http.StatusForbidden, apiError{"Unauthorized", "Access to requested resource is denied.", ""})
			return
		}
		// Calls are counted per seller (grantless ones under ""); the
		// injectable SP-API faults stay with the Orders and Sellers calls.
		s.mu.Lock()
		s.statsLocked(sellerID).Calls[op]++
		s.mu.Unlock()
		rate, ok := s.take(sellerID, op)
		if !ok {
			writeQuotaExceeded(w)
			return
		}
		w.Header().Set("x-amzn-RateLimit-Limit", fmt.Sprint(rate))
		if v := s.checkContract(r, op); v != nil { // notifications.json, as for the other SP-API calls
			writeAPIError(w, http.StatusBadRequest, *invalidInput("Invalid Input: " + strings.Join(v.Problems, "; ")))
			return
		}
		h(w, r, sellerID)
	}
}

// authenticateAny maps an access token to its seller ("" and grantless for
// a client_credentials token), or returns Amazon's 403 details string.
func (s *Server) authenticateAny(token string) (sellerID string, grantless bool, detail string) {
	if token == "" {
		return "", false, detailMissing
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.accessTokens[token]
	switch {
	case at == nil:
		return "", false, detailInvalid
	case at.expired || !s.now().Before(at.expires):
		return "", false, detailExpired
	}
	return at.sellerID, at.sellerID == "", ""
}

func readJSON(r *http.Request, v any) *apiError {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil || json.Unmarshal(b, v) != nil {
		return invalidInput("The request body is not valid JSON.")
	}
	return nil
}

func (s *Server) handleCreateDestination(w http.ResponseWriter, r *http.Request, _ string) {
	var in struct {
		Name                  string `json:"name"`
		ResourceSpecification *struct {
			SQS *struct {
				ARN string `json:"arn"`
			} `json:"sqs"`
		} `json:"resourceSpecification"`
	}
	if e := readJSON(r, &in); e != nil {
		writeAPIError(w, http.StatusBadRequest, *e)
		return
	}
	if in.Name == "" || in.ResourceSpecification == nil || in.ResourceSpecification.SQS == nil {
		writeAPIError(w, http.StatusBadRequest, *invalidInput("name and resourceSpecification.sqs.arn are required."))
		return
	}
	arn := in.ResourceSpecification.SQS.ARN
	if !sqsARN.MatchString(arn) || len(arn) > 1000 {
		writeAPIError(w, http.StatusBadRequest, *invalidInput("Invalid SQS ARN."))
		return
	}
	s.mu.Lock()
	n := s.notifierLocked()
	for _, d := range n.destinations {
		if d.arn == arn {
			s.mu.Unlock()
			writeAPIError(w, http.StatusConflict, apiError{"Conflict", "A destination with the same resource already exists.", ""})
			return
		}
	}
	d := &destination{id: newRequestID(), name: in.Name, arn: arn}
	n.destinations[d.id] = d
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, jsonType, map[string]any{"payload": destinationJSON(d)})
}

func destinationJSON(d *destination) map[string]any {
	return map[string]any{"name": d.name, "destinationId": d.id, "resource": map[string]any{"sqs": map[string]string{"arn": d.arn}}}
}

func (s *Server) handleGetDestinations(w http.ResponseWriter, r *http.Request, _ string) {
	s.mu.Lock()
	list := []map[string]any{}
	for _, d := range s.notifierLocked().destinations {
		list = append(list, destinationJSON(d))
	}
	s.mu.Unlock()
	slices.SortFunc(list, func(a, b map[string]any) int {
		return strings.Compare(a["destinationId"].(string), b["destinationId"].(string))
	})
	writeJSON(w, http.StatusOK, jsonType, map[string]any{"payload": list})
}

func subscriptionJSON(sub *subscription) map[string]any {
	out := map[string]any{"subscriptionId": sub.id, "payloadVersion": sub.payloadVersion, "destinationId": sub.destinationID}
	if sub.changeTypes != nil {
		out["processingDirective"] = map[string]any{"eventFilter": map[string]any{"eventFilterType": "ORDER_CHANGE", "orderChangeTypes": sub.changeTypes}}
	}
	return out
}

func (s *Server) handleCreateSubscription(w http.ResponseWriter, r *http.Request, sellerID string) {
	typ := r.PathValue("notificationType")
	if !notificationTypes[typ] {
		writeAPIError(w, http.StatusBadRequest, *invalidInput("Invalid notification type: " + typ))
		return
	}
	var in struct {
		PayloadVersion      string `json:"payloadVersion"`
		DestinationID       string `json:"destinationId"`
		ProcessingDirective *struct {
			EventFilter *struct {
				EventFilterType  string   `json:"eventFilterType"`
				OrderChangeTypes []string `json:"orderChangeTypes"`
			} `json:"eventFilter"`
		} `json:"processingDirective"`
	}
	if e := readJSON(r, &in); e != nil {
		writeAPIError(w, http.StatusBadRequest, *e)
		return
	}
	if in.PayloadVersion == "" || in.DestinationID == "" {
		writeAPIError(w, http.StatusBadRequest, *invalidInput("payloadVersion and destinationId are required."))
		return
	}
	if typ == "ORDER_CHANGE" && in.PayloadVersion != "1.0" {
		writeAPIError(w, http.StatusBadRequest, *invalidInput("Invalid payloadVersion for ORDER_CHANGE: " + in.PayloadVersion))
		return
	}
	var changeTypes []string
	if pd := in.ProcessingDirective; pd != nil && pd.EventFilter != nil {
		if pd.EventFilter.EventFilterType != typ {
			writeAPIError(w, http.StatusBadRequest, *invalidInput("eventFilterType must be " + typ + "."))
			return
		}
		for _, c := range pd.EventFilter.OrderChangeTypes {
			if !orderChangeTypes[c] {
				writeAPIError(w, http.StatusBadRequest, *invalidInput("Invalid orderChangeTypes value: " + c))
				return
			}
		}
		if len(pd.EventFilter.OrderChangeTypes) > 0 {
			changeTypes = slices.Clone(pd.EventFilter.OrderChangeTypes)
		}
	}
	s.mu.Lock()
	n := s.notifierLocked()
	if n.destinations[in.DestinationID] == nil {
		s.mu.Unlock()
		writeAPIError(w, http.StatusBadRequest, *invalidInput("Invalid destinationId."))
		return
	}
	for _, sub := range n.subs {
		if sub.sellerID == sellerID && sub.notificationType == typ && sub.payloadVersion == in.PayloadVersion {
			s.mu.Unlock()
			writeAPIError(w, http.StatusConflict, apiError{"Conflict", "Subscription already exists for this notification type.", ""})
			return
		}
	}
	sub := &subscription{id: newRequestID(), sellerID: sellerID, notificationType: typ, payloadVersion: in.PayloadVersion,
		destinationID: in.DestinationID, changeTypes: changeTypes}
	n.subs[sub.id] = sub
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, jsonType, map[string]any{"payload": subscriptionJSON(sub)})
}

func (s *Server) handleGetSubscription(w http.ResponseWriter, r *http.Request, sellerID string) {
	typ := r.PathValue("notificationType")
	version := r.URL.Query().Get("payloadVersion")
	s.mu.Lock()
	var found *subscription
	for _, sub := range s.notifierLocked().subs {
		if sub.sellerID == sellerID && sub.notificationType == typ && (version == "" || sub.payloadVersion == version) {
			found = sub
		}
	}
	s.mu.Unlock()
	if found == nil {
		writeAPIError(w, http.StatusNotFound, apiError{"NotFound", "The subscription was not found.", ""})
		return
	}
	writeJSON(w, http.StatusOK, jsonType, map[string]any{"payload": subscriptionJSON(found)})
}

func (s *Server) handleDeleteSubscription(w http.ResponseWriter, r *http.Request, _ string) {
	id := r.PathValue("subscriptionId")
	s.mu.Lock()
	n := s.notifierLocked()
	sub := n.subs[id]
	if sub != nil && sub.notificationType == r.PathValue("notificationType") {
		delete(n.subs, id)
	} else {
		sub = nil
	}
	s.mu.Unlock()
	if sub == nil {
		writeAPIError(w, http.StatusNotFound, apiError{"NotFound", "The subscription was not found.", ""})
		return
	}
	writeJSON(w, http.StatusOK, jsonType, map[string]any{})
}

// SetDeliveryFaults replaces the delivery faults; the count restarts at 1.
func (s *Server) SetDeliveryFaults(f DeliveryFaults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.notifierLocked()
	n.faults, n.seq = f, 0
}

// DeliveryFaults returns the faults in force.
func (s *Server) DeliveryFaults() DeliveryFaults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notifierLocked().faults
}

// faultsJSON is DeliveryFaults on the admin API, durations in milliseconds.
type faultsJSON struct {
	DeliveryFaults
	DelayMs       int64 `json:"delayMs"`
	GetOrderLagMs int64 `json:"getOrderLagMs"`
}

func toFaultsJSON(f DeliveryFaults) faultsJSON {
	return faultsJSON{DeliveryFaults: f, DelayMs: f.Delay.Milliseconds(), GetOrderLagMs: f.GetOrderLag.Milliseconds()}
}

// getOrderLagLocked is how far behind the present getOrder reads. Caller
// holds s.mu.
func (s *Server) getOrderLagLocked() time.Duration {
	if s.notes == nil {
		return 0
	}
	return s.notes.faults.GetOrderLag
}

// NotificationStats returns a copy of the delivery counters.
func (s *Server) NotificationStats() NotificationStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.notifierLocked()
	st := n.stats
	if n.held != nil {
		st.Held = 1
	}
	return st
}

// Due is how many SendMessage calls the published notifications make once
// the delayed ones are sent (the held one excluded).
func (st NotificationStats) Due() int { return st.Published - st.Dropped + st.Duplicated - st.Held }

// Subscriptions lists the seller's subscription ids by notification type.
func (s *Server) Subscriptions(sellerID string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, sub := range s.notifierLocked().subs {
		if sub.sellerID == sellerID {
			out[sub.notificationType] = sub.id
		}
	}
	return out
}

// SetOrderStatus changes an order's fulfillment status (PENDING, UNSHIPPED,
// PARTIALLY_SHIPPED, SHIPPED, CANCELLED, UNFULFILLABLE) and publishes an
// OrderStatusChange notification.
func (s *Server) SetOrderStatus(sellerID, orderID, status string) error {
	seller, ok := s.seller(sellerID)
	if !ok {
		return fmt.Errorf("set order status: unknown seller %q", sellerID)
	}
	if !fulfillmentStatusValues[status] {
		return fmt.Errorf("set order status: unknown status %q", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.storeLocked(seller).byID[orderID]
	if o == nil {
		return fmt.Errorf("set order status: seller %s has no order %q", sellerID, orderID)
	}
	now := s.now().Truncate(time.Second)
	o.status = status
	if o.updated.Before(now) {
		o.updated = now
	}
	s.publishLocked(seller, o, "OrderStatusChange", now)
	return nil
}

// notificationStatus maps a fulfillment status to the model's OrderStatus.
var notificationStatus = map[string]string{
	"PENDING_AVAILABILITY": "PendingAvailability", "PENDING": "Pending", "UNSHIPPED": "Unshipped",
	"PARTIALLY_SHIPPED": "PartiallyShipped", "SHIPPED": "Shipped", "CANCELLED": "Canceled", "UNFULFILLABLE": "Unfulfillable",
}

// publishLocked queues an ORDER_CHANGE notification of the order for the
// seller's subscription, if any and if its filter takes changeType.
// Caller holds s.mu.
func (s *Server) publishLocked(seller Seller, o *order, changeType string, at time.Time) {
	n := s.notifierLocked()
	var sub *subscription
	for _, x := range n.subs {
		if x.sellerID == seller.ID && x.notificationType == "ORDER_CHANGE" {
			sub = x
		}
	}
	if sub == nil || (sub.changeTypes != nil && !slices.Contains(sub.changeTypes, changeType)) {
		return
	}
	dest := n.destinations[sub.destinationID]
	if dest == nil {
		return
	}
	n.stats.Published++
	n.seq++
	n.variant++
	body := notificationBody(s.cfg.ApplicationID, sub.id, seller.ID, o, changeType, at, s.now(), n.variant-1)
	f := n.faults
	every := func(k int) bool { return k > 0 && n.seq%k == 0 }
	out := outgoing{arn: dest.arn, body: body, copies: 1}
	switch {
	case every(f.DropEvery):
		n.stats.Dropped++
		return
	case every(f.DuplicateEvery):
		out.copies = 2
		n.stats.Duplicated++
	case every(f.DelayEvery):
		out.delay = f.Delay
		n.stats.Delayed++
	}
	if every(f.ReorderEvery) && n.held == nil {
		n.stats.Reordered++
		n.held = &out
		return
	}
	n.start.Do(func() { go s.deliverLoop(n) })
	n.stats.InFlight += out.copies
	n.outbox <- out
	if n.held != nil {
		n.stats.InFlight += n.held.copies
		n.outbox <- *n.held
		n.held = nil
	}
}

// deliverLoop sends queued notifications in order (delayed ones on their
// own timer). It runs for the server's life.
func (s *Server) deliverLoop(n *notifier) {
	for out := range n.outbox {
		if out.delay > 0 {
			time.AfterFunc(out.delay, func() { s.send(n, out) })
			continue
		}
		s.send(n, out)
	}
}

func (s *Server) send(n *notifier, out outgoing) {
	for i := 0; i < out.copies; i++ {
		err := errNoDelivery
		if s.cfg.Deliver != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = s.cfg.Deliver(ctx, out.arn, out.body)
			cancel()
		}
		s.mu.Lock()
		if err != nil {
			n.stats.Failed++
			n.stats.InFlight--
		} else {
			n.stats.Sent++
			n.stats.InFlight--
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("notification not delivered", "queue_arn", out.arn, "err", err.Error())
		}
	}
}

var errNoDelivery = errors.New("no Deliver configured (start the sandbox with --sqs-endpoint)")

// DropSubscriptions deletes every subscription of the seller, as Amazon
// does when the seller removes the application (docs/push.md): no
// notification of the seller is published afterwards.
func (s *Server) DropSubscriptions(sellerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.notifierLocked()
	for id, sub := range n.subs {
		if sub.sellerID == sellerID {
			delete(n.subs, id)
		}
	}
}
