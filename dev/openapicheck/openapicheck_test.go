package openapicheck

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

const (
	startPath    = "/api/v1/marketplaces/amazon/oauth/start"
	callbackPath = "/api/v1/marketplaces/amazon/oauth/callback"
	statusPath   = "/api/v1/marketplaces/amazon/status"
	jsonType     = "application/json; charset=utf-8"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, a...))
}
func (r *recorder) Error(a ...any)                 { r.errors = append(r.errors, fmt.Sprint(a...)) }
func (r *recorder) Fatalf(format string, a ...any) { r.Errorf(format, a...) }
func (r *recorder) Fatal(a ...any)                 { r.Error(a...) }
func (r *recorder) Failed() bool                   { return len(r.errors) > 0 }

func TestSpecParses(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct{ method, path string }{
		{"post", startPath}, {"get", callbackPath}, {"get", statusPath},
	} {
		item, ok := s.doc["paths"].(map[string]any)[op.path].(map[string]any)
		if !ok || item[op.method] == nil {
			t.Errorf("%s %s is not documented", op.method, op.path)
		}
	}
	// Every documented JSON response schema compiles.
	for p, item := range s.doc["paths"].(map[string]any) {
		for m, op := range item.(map[string]any) {
			for code := range op.(map[string]any)["responses"].(map[string]any) {
				if err := s.Check(m, p, atoi(t, code), "application/json", []byte(`null`)); err != nil &&
					!strings.Contains(err.Error(), "does not match the schema") {
					t.Errorf("%s %s %s: %v", m, p, code, err)
				}
			}
		}
	}
	// The codes of the support errors are all in the spec's enum.
	enum := s.doc["components"].(map[string]any)["schemas"].(map[string]any)["ErrorCode"].(map[string]any)["enum"].([]any)
	for _, c := range []string{"invalid_state", "token_exchange_failed", "connection_not_connected", "no_credentials",
		"unauthorized", "invalid_request", "service_unavailable", "not_found", "needs_reauthorization",
		"app_misconfigured", "internal_error"} {
		found := false
		for _, e := range enum {
			found = found || e == c
		}
		if !found {
			t.Errorf("error code %s missing from ErrorCode", c)
		}
	}
}

func atoi(t *testing.T, s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("response code %q", s)
	}
	return n
}

func TestValidateResponse(t *testing.T) {
	nulls := `{"connected":false,"status":"DISCONNECTED","displayName":null,"region":null,"lastSyncAt":null,"lastError":null,"appSource":null,"reauthReason":null,"authorizationExpiresAt":null,"push":false,"lastNotificationAt":null}`
	tests := []struct {
		name        string
		method      string
		path        string
		status      int
		contentType string
		body        string
		wantFail    string // "" = must pass
	}{
		{name: "start 200", method: http.MethodPost, path: startPath, status: 200, contentType: jsonType,
			body: `{"success":true,"authUrl":"https://sellercentral-europe.amazon.com/apps/authorize/consent?application_id=a&state=s","state":"s","expiresAt":"2026-11-27T12:15:00Z","message":"Redirect the seller"}`},
		{name: "start 401", method: http.MethodPost, path: startPath, status: 401, contentType: "application/json",
			body: `{"error":{"code":"unauthorized","message":"Missing or invalid bearer token"}}`},
		{name: "start 503", method: http.MethodPost, path: startPath, status: 503, contentType: jsonType,
			body: `{"error":{"code":"service_unavailable","message":"retry"}}`},
		{name: "callback 200 with query", method: http.MethodGet, path: callbackPath + "?state=x&spapi_oauth_code=y", status: 200, contentType: jsonType,
			body: `{"success":true,"message":"Amazon account connected","sellingPartnerId":"A1B2C3"}`},
		{name: "callback 303 HTML body", method: http.MethodGet, path: callbackPath, status: 303, contentType: "text/html; charset=utf-8",
			body: `<a href="https://app.example/x?status=connected">See Other</a>.`},
		{name: "callback 400", method: http.MethodGet, path: callbackPath, status: 400, contentType: jsonType,
			body: `{"error":{"code":"invalid_state","message":"Invalid state"}}`},
		{name: "callback 502", method: http.MethodGet, path: callbackPath, status: 502, contentType: jsonType,
			body: `{"error":{"code":"token_exchange_failed","message":"Token exchange failed"}}`},
		{name: "status no connection (nulls)", method: http.MethodGet, path: statusPath, status: 200, contentType: jsonType, body: nulls},
		{name: "status connected", method: http.MethodGet, path: statusPath, status: 200, contentType: jsonType,
			body: `{"connected":true,"status":"CONNECTED","displayName":"Amazon Seller A1","region":"EU","lastSyncAt":"2026-11-27T12:00:00.123Z","lastError":null,"appSource":"keybuzz","reauthReason":"renewal_due","authorizationExpiresAt":"2027-11-27T12:00:00Z","push":true,"lastNotificationAt":"2027-11-27T12:00:00Z"}`},

		{name: "start missing authUrl", method: http.MethodPost, path: startPath, status: 200, contentType: jsonType,
			body: `{"expiresAt":"2026-11-27T12:15:00Z","message":"m"}`, wantFail: "authUrl"},
		{name: "start expiresAt not a date-time", method: http.MethodPost, path: startPath, status: 200, contentType: jsonType,
			body: `{"authUrl":"https://x.example/a","expiresAt":"tomorrow","message":"m"}`, wantFail: "date-time"},
		{name: "start authUrl not a URI", method: http.MethodPost, path: startPath, status: 200, contentType: jsonType,
			body: `{"authUrl":"not a uri","expiresAt":"2026-11-27T12:15:00Z","message":"m"}`, wantFail: "uri"},
		{name: "start undocumented 404", method: http.MethodPost, path: startPath, status: 404, contentType: jsonType,
			body: `{"error":{"code":"not_found","message":"x"}}`, wantFail: "not documented"},
		{name: "start as GET", method: http.MethodGet, path: startPath, status: 200, contentType: jsonType, body: `{}`, wantFail: "not documented"},
		{name: "unknown path", method: http.MethodGet, path: "/api/v1/nope", status: 200, contentType: jsonType, body: `{}`, wantFail: "not documented"},
		{name: "error code unknown", method: http.MethodPost, path: startPath, status: 401, contentType: jsonType,
			body: `{"error":{"code":"nope","message":"x"}}`, wantFail: "does not match"},
		{name: "error flat", method: http.MethodPost, path: startPath, status: 401, contentType: jsonType,
			body: `{"code":"unauthorized","message":"x"}`, wantFail: "does not match"},
		{name: "error as text/plain", method: http.MethodPost, path: startPath, status: 401, contentType: "text/plain; charset=utf-8",
			body: `{"error":{"code":"unauthorized","message":"x"}}`, wantFail: "content type"},
		{name: "body not JSON", method: http.MethodGet, path: statusPath, status: 200, contentType: jsonType, body: `connected`, wantFail: "not JSON"},
		{name: "status key missing", method: http.MethodGet, path: statusPath, status: 200, contentType: jsonType,
			body: `{"connected":false,"status":null,"displayName":null,"region":null,"lastSyncAt":null}`, wantFail: "lastError"},
		{name: "status unknown value", method: http.MethodGet, path: statusPath, status: 200, contentType: jsonType,
			body: strings.Replace(nulls, `"status":"DISCONNECTED"`, `"status":"ACTIVE"`, 1), wantFail: "does not match"},
		{name: "connected null", method: http.MethodGet, path: statusPath, status: 200, contentType: jsonType,
			body: strings.Replace(nulls, `"connected":false`, `"connected":null`, 1), wantFail: "does not match"},
		{name: "lastSyncAt not a date", method: http.MethodGet, path: statusPath, status: 200, contentType: jsonType,
			body: strings.Replace(nulls, `"lastSyncAt":null`, `"lastSyncAt":"yesterday"`, 1), wantFail: "date-time"},
		{name: "callback success a string", method: http.MethodGet, path: callbackPath, status: 200, contentType: jsonType,
			body: `{"success":"true","message":"m","sellingPartnerId":"A1"}`, wantFail: "does not match"},
		{name: "callback 500 undocumented 418", method: http.MethodGet, path: callbackPath, status: 418, contentType: jsonType,
			body: `{}`, wantFail: "not documented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			ValidateResponse(rec, tt.method, tt.path, tt.status, tt.contentType, []byte(tt.body))
			switch {
			case tt.wantFail == "" && rec.Failed():
				t.Errorf("good body refused: %v", rec.errors)
			case tt.wantFail != "" && !rec.Failed():
				t.Error("bad body accepted")
			case tt.wantFail != "" && !strings.Contains(strings.Join(rec.errors, "\n"), tt.wantFail):
				t.Errorf("failure %v, want mention of %q", rec.errors, tt.wantFail)
			}
		})
	}
}

func TestConvertNullable(t *testing.T) {
	spec := []byte(`
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /x:
    get:
      responses:
        200:
          description: ok
          content:
            application/json:
              schema:
                type: object
                required: [ref, plain, strict]
                properties:
                  ref: {nullable: true, allOf: [{$ref: '#/components/schemas/Name'}]}
                  plain: {type: integer, nullable: true}
                  strict: {type: string, nullable: false}
  /items/{id}:
    get:
      responses:
        2XX:
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Name'}
components:
  schemas:
    Name: {type: string, minLength: 2}
`)
	s, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	for body, ok := range map[string]bool{
		`{"ref":null,"plain":null,"strict":"s"}`:  true,
		`{"ref":"ab","plain":3,"strict":"s"}`:     true,
		`{"ref":"a","plain":3,"strict":"s"}`:      false,
		`{"ref":"ab","plain":"3","strict":"s"}`:   false,
		`{"ref":"ab","plain":null,"strict":null}`: false,
	} {
		err := s.Check("GET", "/x", 200, "application/json", []byte(body))
		if (err == nil) != ok {
			t.Errorf("%s: err %v, want ok=%v", body, err, ok)
		}
	}
	if err := s.Check("GET", "/items/42", 201, "application/json", []byte(`"ab"`)); err != nil {
		t.Errorf("templated path, 2XX: %v", err)
	}
	if err := s.Check("GET", "/items/42", 200, "application/json", []byte(`"a"`)); err == nil {
		t.Error("templated path: short name accepted")
	}
	if err := s.Check("GET", "/items/", 200, "application/json", []byte(`"ab"`)); err == nil {
		t.Error("empty path parameter matched")
	}
	if _, err := Parse([]byte("openapi: 3.1.0\npaths: {}\n")); err == nil {
		t.Error("3.1 accepted")
	}
	if _, err := Parse([]byte("openapi: [\n")); err == nil {
		t.Error("broken YAML accepted")
	}
}
