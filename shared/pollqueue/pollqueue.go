// Package pollqueue is the SQS poll queue's message between pollfanout and
// polltenant: its body and what sending a run's messages did. The sender
// (SendMessageBatch) is shared/pollsender, apart so that the functions that
// only read the body do not link the SQS client.
//
// Body (JSON, documented in docs/polling.md):
//
//	{"tenantId":"t-1","connectionId":"c-1","enqueuedAt":"2026-11-27T10:00:00Z"}
package pollqueue

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Message asks polltenant to poll one connection.
type Message struct {
	TenantID     string    `json:"tenantId"`
	ConnectionID string    `json:"connectionId"`
	EnqueuedAt   time.Time `json:"enqueuedAt"`
}

// Encode returns the message body.
func (m Message) Encode() string {
	b, _ := json.Marshal(m) // cannot fail: strings and a time
	return string(b)
}

// ErrMalformed marks a body that is not a valid Message.
var ErrMalformed = errors.New("malformed poll message")

// Decode parses a body; ErrMalformed when it is not JSON or lacks an id.
func Decode(body string) (Message, error) {
	var m Message
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.TenantID == "" || m.ConnectionID == "" {
		return Message{}, fmt.Errorf("%w: tenantId and connectionId are required", ErrMalformed)
	}
	return m, nil
}

// Result is what Send did.
type Result struct {
	Sent   int
	Failed []Message // not sent after every attempt
	Err    error     // the last error seen, if any
}
