package sandbox_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

func TestAdminHTTP(t *testing.T) {
	e := start(t)
	s1 := seller1()
	rt, access := e.authorize(t, s1)
	p := "/_sandbox/sellers/" + s1

	tests := []struct {
		name, method, path string
		body               any
		status             int
		contains           string
	}{
		{"sellers", "GET", "/_sandbox/sellers", nil, 200, sandbox.SellerID(3)},
		{"rate plan", "PUT", p + "/rate-plan", map[string]any{"operation": "getOrder", "rate": 2, "burst": 7}, 200, `"burst":7`},
		{"sellers rate plan", "PUT", p + "/rate-plan", map[string]any{"operation": "getMarketplaceParticipations", "rate": 1, "burst": 2}, 200, `"burst":2`},
		{"bad rate plan", "PUT", p + "/rate-plan", map[string]any{"operation": "listOrders", "rate": 2, "burst": 7}, 400, "unknown operation"},
		{"fault", "POST", p + "/faults", map[string]any{"kind": "503", "count": 1}, 200, `"kind":"503"`},
		{"bad fault", "POST", p + "/faults", map[string]any{"kind": "teapot"}, 400, "kind"},
		{"order", "POST", p + "/orders", map[string]any{"marketplaceId": sandbox.MarketplaceFR, "withCancellation": true}, 201, "orderId"},
		{"events", "GET", p + "/events", nil, 200, `"events":[`},
		{"stats", "GET", p + "/stats", nil, 200, `"calls"`},
		{"clock", "GET", "/_sandbox/clock", nil, 200, `"manual":true`},
		{"clock advance", "POST", "/_sandbox/clock/advance", map[string]any{"seconds": 60}, 200, "2026-03-02T09:31:00Z"},
		{"expire access tokens", "POST", p + "/expire-access-tokens", nil, 200, "true"},
		{"revoke", "POST", p + "/revoke", nil, 200, "true"},
		{"unknown seller", "POST", "/_sandbox/sellers/ANOPE/revoke", nil, 404, "unknown seller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.postJSON(t, tt.method, tt.path, tt.body)
			if tt.body == nil {
				req, _ := http.NewRequest(tt.method, e.base+tt.path, nil)
				a = do(t, req)
			}
			if a.status != tt.status || !strings.Contains(string(a.body), tt.contains) {
				t.Fatalf("%d %s, want %d with %q", a.status, a.body, tt.status, tt.contains)
			}
		})
	}
	if a := e.get(t, "/orders/2026-01-01/orders/x", access); a.status != 403 || !strings.Contains(string(a.body), "expired") {
		t.Errorf("after expire-access-tokens: %d %s", a.status, a.body)
	}
	if a := e.postForm(t, "/auth/o2/token", e.clientForm("refresh_token", "refresh_token", rt)); a.status != 400 {
		t.Errorf("after revoke: %d", a.status)
	}

	live := start(t, func(c *sandbox.Config) { c.Clock = nil })
	if a := live.postJSON(t, "POST", "/_sandbox/clock/advance", map[string]any{"seconds": 1}); a.status != http.StatusConflict {
		t.Errorf("advancing a real clock: %d", a.status)
	}
}
