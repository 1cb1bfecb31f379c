package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/golang-jwt/jwt/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

func TestAuthenticateHeader(t *testing.T) {
	v := newTestVerifier(t, hsConfig())
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(nil))
	ok := Claims{TenantID: testTenant, Subject: "user-1"}
	tests := []struct {
		name    string
		headers []string // Authorization values
		want    Claims
	}{
		{name: "Bearer", headers: []string{"Bearer " + tok}, want: ok},
		{name: "lower-case scheme", headers: []string{"bearer " + tok}, want: ok},
		{name: "upper-case scheme", headers: []string{"BEARER " + tok}, want: ok},
		{name: "extra spaces", headers: []string{"  Bearer   " + tok + " "}, want: ok},
		{name: "no header", headers: nil},
		{name: "empty header", headers: []string{""}},
		{name: "scheme only", headers: []string{"Bearer"}},
		{name: "scheme and space", headers: []string{"Bearer "}},
		{name: "Basic", headers: []string{"Basic dXNlcjpwYXNz"}},
		{name: "token without scheme", headers: []string{tok}},
		{name: "Bearer glued", headers: []string{"Bearer" + tok}},
		{name: "two headers", headers: []string{"Bearer " + tok, "Bearer " + tok}},
		{name: "two tokens comma", headers: []string{"Bearer " + tok + ", Bearer " + tok}},
		{name: "two tokens space", headers: []string{"Bearer " + tok + " " + tok}},
		{name: "tab inside", headers: []string{"Bearer " + tok + "\t" + tok}},
		{name: "over 8 KiB", headers: []string{"Bearer " + tok + strings.Repeat(" ", 8<<10)}},
		{name: "garbage token", headers: []string{"Bearer abc.def.ghi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/api/v1/marketplaces/amazon/oauth/start", nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := v.Authenticate(r)
			if tt.want != (Claims{}) {
				if err != nil || got != tt.want {
					t.Fatalf("Authenticate = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !errors.Is(err, marketplace.ErrUnauthorized) {
				t.Errorf("error %v does not wrap ErrUnauthorized", err)
			}
		})
	}
}

// TestAuthenticateAuthorizer runs requests through httpadapter.NewV2, as the
// Lambda functions do, and checks what the handler saw.
func TestAuthenticateAuthorizer(t *testing.T) {
	v := newTestVerifier(t, hsConfig())
	type seen struct {
		Claims Claims
		Err    string
	}
	adapter := httpadapter.NewV2(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.Authenticate(r)
		s := seen{Claims: c}
		if err != nil {
			if !errors.Is(err, marketplace.ErrUnauthorized) {
				t.Errorf("error %v does not wrap ErrUnauthorized", err)
			}
			s.Err = err.Error()
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	}))
	good := map[string]string{
		"iss": testIssuer, "aud": testAudience, "sub": "user-0001", "tenantId": "tenant-demo-0001",
		"iat": "1764201600", "exp": strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10),
	}
	with := func(edits map[string]string) map[string]string {
		c := map[string]string{}
		for k, v := range good {
			c[k] = v
		}
		for k, v := range edits {
			if v == "" {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	validBearer := "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(nil))
	authorizerClaims := Claims{TenantID: "tenant-demo-0001", Subject: "user-0001"}
	tests := []struct {
		name   string
		claims map[string]string // nil: no authorizer (route without one, or sam local)
		header string
		want   Claims
	}{
		{name: "authorizer claims", claims: good, want: authorizerClaims},
		{name: "authorizer claims win over the header", claims: good, header: validBearer, want: authorizerClaims},
		{name: "authorizer aud list", claims: with(map[string]string{"aud": "[other " + testAudience + "]"}), want: authorizerClaims},
		{name: "authorizer without iss, aud, exp", claims: with(map[string]string{"iss": "", "aud": "", "exp": ""}), want: authorizerClaims},
		{name: "authorizer wrong issuer", claims: with(map[string]string{"iss": "evil"})},
		{name: "authorizer wrong audience", claims: with(map[string]string{"aud": "other"})},
		{name: "authorizer aud list without ours", claims: with(map[string]string{"aud": "[a b]"})},
		{name: "authorizer expired", claims: with(map[string]string{"exp": strconv.FormatInt(testNow.Add(-time.Hour).Unix(), 10)})},
		{name: "authorizer exp garbage", claims: with(map[string]string{"exp": "soon"})},
		{name: "authorizer no tenant", claims: with(map[string]string{"tenantId": ""})},
		{name: "authorizer bad tenant", claims: with(map[string]string{"tenantId": "../x"})},
		{name: "authorizer long tenant", claims: with(map[string]string{"tenantId": strings.Repeat("t", 300)})},
		{name: "no authorizer, valid Bearer (sam local)", header: validBearer, want: Claims{TenantID: testTenant, Subject: "user-1"}},
		{name: "no authorizer, no header"},
		{name: "no authorizer, bad Bearer", header: "Bearer x.y.z"},
		{name: "no authorizer, two tokens", header: validBearer + "," + validBearer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := events.APIGatewayV2HTTPRequest{
				Version: "2.0", RouteKey: "$default", RawPath: "/api/v1/marketplaces/amazon/status",
				Headers: map[string]string{},
				RequestContext: events.APIGatewayV2HTTPRequestContext{
					RequestID: "req-1", Stage: "$default",
					HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodGet, Path: "/api/v1/marketplaces/amazon/status"},
				},
			}
			if tt.header != "" {
				ev.Headers["authorization"] = tt.header
			}
			if tt.claims != nil {
				ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
					JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: tt.claims},
				}
			}
			resp, err := adapter.ProxyWithContext(t.Context(), ev)
			if err != nil {
				t.Fatal(err)
			}
			var s seen
			if err := json.Unmarshal([]byte(resp.Body), &s); err != nil {
				t.Fatalf("handler answer %q: %v", resp.Body, err)
			}
			if tt.want != (Claims{}) {
				if s.Err != "" || s.Claims != tt.want {
					t.Fatalf("handler saw %+v, want %+v", s, tt.want)
				}
				return
			}
			if s.Err == "" {
				t.Fatalf("accepted: %+v", s.Claims)
			}
		})
	}
}
