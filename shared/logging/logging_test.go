package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

func TestContextIDsAreLogged(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "info").With("fn", "oauthstart")
	ctx := WithTenantID(WithRequestID(context.Background(), "req-1"), "tenant-1")
	log.InfoContext(ctx, "hello")
	log.DebugContext(ctx, "hidden")
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil {
		t.Fatalf("one JSON line expected, got %q: %v", buf.String(), err)
	}
	for k, want := range map[string]string{"request_id": "req-1", "tenant_id": "tenant-1", "fn": "oauthstart", "msg": "hello"} {
		if rec[k] != want {
			t.Errorf("%s = %v, want %s", k, rec[k], want)
		}
	}
}
