package pollqueue_test

import (
	"errors"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
)

func TestDecode(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	good := pollqueue.Message{TenantID: "t-1", ConnectionID: "c-1", EnqueuedAt: at}
	cases := []struct {
		body string
		ok   bool
	}{
		{good.Encode(), true},
		{`{"tenantId":"t-1","connectionId":"c-1","enqueuedAt":"2026-11-27T10:00:00Z"}`, true},
		{`{"tenantId":"t-1"}`, false},
		{`not json`, false},
		{``, false},
	}
	for _, c := range cases {
		m, err := pollqueue.Decode(c.body)
		if (err == nil) != c.ok || (!c.ok && !errors.Is(err, pollqueue.ErrMalformed)) {
			t.Errorf("Decode(%q) = %v", c.body, err)
		}
		if c.ok && m != good {
			t.Errorf("Decode(%q) = %+v", c.body, m)
		}
	}
}
