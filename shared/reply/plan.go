package reply

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// Request is an agent's reply as the send-reply route takes it.
type Request struct {
	TenantID       string
	TicketID       string
	AgentID        string // the JWT's subject
	IdempotencyKey string // "" when the caller sent none
	Text           string
}

// Hash identifies the request's content for its Idempotency-Key: the same
// key with another ticket or text is refused, not answered with the first.
func (r Request) Hash() string {
	h := sha256.Sum256([]byte(r.TicketID + "\x00" + strings.TrimSpace(r.Text)))
	return hex.EncodeToString(h[:])
}

// Thread is what the store knows about a ticket when a reply is written,
// read in the reply's transaction.
type Thread struct {
	TicketID     string
	TenantID     string
	Status       string // TicketStatus
	Channel      string // TicketChannel
	ConnectionID string // the tenant's AMAZON connection ("" when none)
	Connected    bool   // it is CONNECTED
	// The buyer's latest relay mail on the ticket, or the order's
	// buyerEmail when no mail came.
	Alias          string
	BuyerSubject   string
	BuyerMessageID string
	References     []string
	OrderID        string
	// Senders are the tenant's inbound addresses by country code.
	Senders map[string]string
}

// Draft is a reply ready to be stored and queued.
type Draft struct {
	ID         string
	Text       string
	BodyHash   string
	From       string
	To         string
	Subject    string
	InReplyTo  string
	References []string
	OrderID    string
}

// Plan checks a reply against the ticket it answers, in KeyBuzz's order
// (ticket open, AMAZON channel, CONNECTED connection) and then the
// connector's (a buyer alias, a sender address of its country); text is
// the already checked text and id the new reply's id.
func Plan(t Thread, id, text string) (Draft, error) {
	switch {
	case t.Status == "CLOSED" || t.Status == "RESOLVED":
		return Draft{}, fmt.Errorf("ticket %s is %s: %w", t.TicketID, t.Status, marketplace.ErrTicketClosed)
	case t.Channel != "AMAZON":
		return Draft{}, fmt.Errorf("ticket %s is on %s: %w", t.TicketID, t.Channel, marketplace.ErrNotAmazonTicket)
	case t.ConnectionID == "" || !t.Connected:
		return Draft{}, fmt.Errorf("tenant %s: %w", t.TenantID, marketplace.ErrOAuthNotConnected)
	case t.Alias == "":
		return Draft{}, fmt.Errorf("ticket %s: %w", t.TicketID, marketplace.ErrNoBuyerAddress)
	}
	from, err := SenderFor(t.Alias, t.Senders)
	switch {
	case errors.Is(err, ErrNotRelayAlias):
		return Draft{}, fmt.Errorf("ticket %s: %v: %w", t.TicketID, err, marketplace.ErrNoBuyerAddress)
	case err != nil:
		return Draft{}, fmt.Errorf("ticket %s: %v: %w", t.TicketID, err, marketplace.ErrNoSenderAddress)
	}
	subject := t.BuyerSubject
	if subject == "" && t.OrderID != "" {
		subject = "Order " + t.OrderID
	}
	return Draft{ID: id, Text: text, BodyHash: BodyHash(id, text), From: from, To: t.Alias, Subject: Subject(subject),
		InReplyTo: t.BuyerMessageID, References: t.References, OrderID: t.OrderID}, nil
}

// Queued is the send-reply route's answer.
type Queued struct {
	ReplyID string
	Status  string
	// Replayed: the Idempotency-Key named an earlier reply, answered again.
	Replayed bool
}

// Outbound is one reply as the outbound route lists it (KeyBuzz's fields).
type Outbound struct {
	ID                string     `json:"id"`
	Status            string     `json:"status"`
	Body              string     `json:"body"`
	ProviderMessageID *string    `json:"providerMessageId"`
	Error             *string    `json:"error"`
	Attempts          int        `json:"attempts"`
	CreatedAt         time.Time  `json:"createdAt"`
	SentAt            *time.Time `json:"sentAt"`
}

// Pending is a reply as the sender claims it.
type Pending struct {
	ID, TenantID, TicketID string
	From, To, Subject      string
	InReplyTo              string
	References             []string
	Text                   string
	Attempts               int // attempts before this one
	// Uncertain: an earlier attempt may have reached SES (its claim went
	// stale, or SES's answer was an error that does not prove it refused):
	// look for SES's Send event before sending.
	Uncertain bool
}

// The connector's states of a reply (its own table), finer than KeyBuzz's.
const (
	StateQueued    = "QUEUED"
	StateSending   = "SENDING"
	StateAccepted  = "ACCEPTED"
	StateDelivered = "DELIVERED"
	StateFailed    = "FAILED"
)
