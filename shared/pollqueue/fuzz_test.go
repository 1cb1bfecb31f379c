package pollqueue_test

import (
	"errors"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
)

// FuzzDecode: any SQS body either decodes to a message with both ids (which
// encodes and decodes back to itself) or is ErrMalformed with a zero
// message; never a panic, never half a message.
func FuzzDecode(f *testing.F) {
	f.Add(pollqueue.Message{TenantID: "tenant-1", ConnectionID: "0b6c", EnqueuedAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}.Encode())
	f.Add(`{"tenantId":"t","connectionId":"c"}`)
	f.Add(`{"tenantId":"t"}`)
	f.Add(`{"tenantId":"","connectionId":"c"}`)
	f.Add(`{"tenantId":1,"connectionId":"c"}`)
	f.Add(`{"tenantId":"t","connectionId":"c","enqueuedAt":"yesterday"}`)
	f.Add(`{"tenantId":"t","connectionId":"c","tenantId":"u"}`)
	f.Add(`{"TENANTID":"t","ConnectionId":"c"}`)
	f.Add(`{"tenantId":"t\u0000","connectionId":"c\ud800"}`)
	f.Add(`[]`)
	f.Add(`null`)
	f.Add(``)
	f.Add(`{"tenantId":"t","connectionId":"c"} trailing`)
	f.Fuzz(func(t *testing.T, body string) {
		m, err := pollqueue.Decode(body)
		if err != nil {
			if !errors.Is(err, pollqueue.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			if m != (pollqueue.Message{}) {
				t.Fatalf("error %v with a message %+v", err, m)
			}
			return
		}
		if m.TenantID == "" || m.ConnectionID == "" {
			t.Fatalf("decoded without an id: %+v", m)
		}
		again, err := pollqueue.Decode(m.Encode())
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", m, err)
		}
		if again.TenantID != m.TenantID || again.ConnectionID != m.ConnectionID || !again.EnqueuedAt.Equal(m.EnqueuedAt) {
			t.Fatalf("round trip %+v -> %+v", m, again)
		}
	})
}
