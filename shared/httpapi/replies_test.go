package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

type tenantAuth struct{}

func (tenantAuth) Authenticate(r *http.Request) (auth.Claims, error) {
	tenant, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tenant == "" {
		return auth.Claims{}, marketplace.ErrUnauthorized
	}
	return auth.Claims{TenantID: tenant, Subject: "agent-" + tenant}, nil
}

type fakeQueue struct {
	got  []reply.Request
	err  error
	list []reply.Outbound
}

func (f *fakeQueue) Reply(_ context.Context, req reply.Request) (reply.Queued, error) {
	f.got = append(f.got, req)
	if f.err != nil {
		return reply.Queued{}, f.err
	}
	if _, err := reply.DefaultRules().Check(req.Text); err != nil {
		return reply.Queued{}, err
	}
	return reply.Queued{ReplyID: "c-reply-1", Status: "PENDING"}, nil
}

func (f *fakeQueue) Outbound(_ context.Context, tenant, ticket string) ([]reply.Outbound, *time.Time, error) {
	if tenant != "t1" {
		return nil, nil, fmt.Errorf("ticket %s: %w", ticket, marketplace.ErrNotFound)
	}
	due := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	return f.list, &due, nil
}

func TestReplyRoutes(t *testing.T) {
	q := &fakeQueue{}
	mux := httpapi.Mux(httpapi.SendReplyRoute(q, tenantAuth{}, nil), httpapi.OutboundRoute(q, tenantAuth{}, nil))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(method, path, tenant, body string, hdr ...string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if tenant != "" {
			req.Header.Set("Authorization", "Bearer "+tenant)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 405 {
			openapicheck.ValidateResponse(t, method, path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	const send = "/api/v1/marketplaces/amazon/tickets/tk1/send-reply"
	st, m := do("POST", send, "t1", `{"message":"Bonjour"}`, "Idempotency-Key", "k-1")
	if st != 202 || m["success"] != true || m["jobId"] != "c-reply-1" || m["message"] != "Reply queued for sending" || m["status"] != "PENDING" {
		t.Fatalf("202: %d %v", st, m)
	}
	if g := q.got[0]; g.TenantID != "t1" || g.TicketID != "tk1" || g.AgentID != "agent-t1" || g.IdempotencyKey != "k-1" || g.Text != "Bonjour" {
		t.Fatalf("request %+v", g)
	}
	code := func(m map[string]any) string {
		e, _ := m["error"].(map[string]any)
		c, _ := e["code"].(string)
		return c
	}
	tests := []struct {
		name, method, path, tenant, body string
		err                              error
		hdr                              []string
		status                           int
		code                             string
	}{
		{"no token", "POST", send, "", `{"message":"x"}`, nil, nil, 401, "unauthorized"},
		{"GET on send", "GET", send, "t1", "", nil, nil, 405, "method_not_allowed"},
		{"empty", "POST", send, "t1", `{"message":"  "}`, nil, nil, 400, reply.CodeEmpty},
		{"no body", "POST", send, "t1", ``, nil, nil, 400, reply.CodeEmpty},
		{"link", "POST", send, "t1", `{"message":"https://shop.example/x"}`, nil, nil, 400, reply.CodeLink},
		{"phone", "POST", send, "t1", `{"message":"+33 6 12 34 56 78"}`, nil, nil, 400, reply.CodePhoneNumber},
		{"not json", "POST", send, "t1", `message`, nil, nil, 400, "invalid_request"},
		{"bad key", "POST", send, "t1", `{"message":"x"}`, nil, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "invalid_request"},
		{"other tenant", "POST", send, "t2", `{"message":"x"}`, fmt.Errorf("x: %w", marketplace.ErrNotFound), nil, 404, "not_found"},
		{"no alias", "POST", send, "t1", `{"message":"x"}`, fmt.Errorf("x: %w", marketplace.ErrNoBuyerAddress), nil, 409, "no_buyer_address"},
		{"not connected", "POST", send, "t1", `{"message":"x"}`, marketplace.ErrOAuthNotConnected, nil, 409, "oauth_not_connected"},
		{"closed", "POST", send, "t1", `{"message":"x"}`, marketplace.ErrTicketClosed, nil, 409, "ticket_closed"},
		{"key reused", "POST", send, "t1", `{"message":"x"}`, marketplace.ErrIdempotencyReused, nil, 422, "idempotency_key_reused"},
		{"db down", "POST", send, "t1", `{"message":"x"}`, marketplace.ErrUnavailable, nil, 503, "service_unavailable"},
		{"outbound other tenant", "GET", "/api/v1/marketplaces/amazon/tickets/tk1/outbound", "t2", "", nil, nil, 404, "not_found"},
	}
	for _, tc := range tests {
		q.err = tc.err
		st, m := do(tc.method, tc.path, tc.tenant, tc.body, tc.hdr...)
		if st != tc.status || code(m) != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, st, m, tc.status, tc.code)
		}
	}
	// Lambda hands the handler the raw path, with no ServeMux before it.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/v1/marketplaces/amazon/tickets/a/b/send-reply", strings.NewReader(`{"message":"x"}`))
	req.Header.Set("Authorization", "Bearer t1")
	httpapi.SendReplyRoute(q, tenantAuth{}, nil).ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Fatalf("nested path: %d", rec.Code)
	}
	sent := time.Date(2026, 12, 7, 10, 0, 1, 0, time.UTC)
	id := "0102-ses"
	q.list = []reply.Outbound{{ID: "c2", Status: "SENT", Body: "b", ProviderMessageID: &id, Attempts: 1, CreatedAt: sent, SentAt: &sent}}
	st, m = do("GET", "/api/v1/marketplaces/amazon/tickets/tk1/outbound", "t1", "")
	msgs, _ := m["messages"].([]any)
	if st != 200 || len(msgs) != 1 || m["responseDueAt"] != "2026-12-08T10:00:00Z" {
		t.Fatalf("outbound: %d %v", st, m)
	}
	first := msgs[0].(map[string]any)
	for _, k := range []string{"id", "status", "body", "providerMessageId", "error", "attempts", "createdAt", "sentAt"} {
		if _, ok := first[k]; !ok {
			t.Fatalf("outbound message lacks %s: %v", k, first)
		}
	}
}
