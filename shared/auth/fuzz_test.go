package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// FuzzVerify feeds arbitrary strings to Verify (and to Authenticate as a
// Bearer header): it must never panic, and whatever it accepts must be an
// HS256 token signed with the secret, for our issuer and audience, unexpired,
// naming a valid tenant — checked here without the jwt library.
func FuzzVerify(f *testing.F) {
	key := []byte(testSecret)
	f.Add(sign(f, jwt.SigningMethodHS256, key, "", claims(nil)))
	f.Add(sign(f, jwt.SigningMethodHS256, key, "", claims(map[string]any{"aud": []string{"x", testAudience}})))
	f.Add(sign(f, jwt.SigningMethodHS256, key, "", claims(map[string]any{"exp": testNow.Add(-time.Hour).Unix()})))
	f.Add(sign(f, jwt.SigningMethodHS256, key, "", claims(map[string]any{"iss": "evil"})))
	f.Add(sign(f, jwt.SigningMethodHS256, key, "", claims(map[string]any{"tenantId": "../x"})))
	f.Add(handMade(`{"alg":"none","typ":"JWT"}`, mustJSON(claims(nil)), nil))
	f.Add(handMade(`{"alg":"HS256","typ":"JWT"}`, mustJSON(claims(nil)), []byte("forged")))
	f.Add("garbage")
	f.Add("a.b.c")
	f.Add("")
	f.Add("\x00..\xff")

	cfg := hsConfig()
	v, err := NewVerifier(f.Context(), cfg, WithClock(func() time.Time { return testNow }))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := v.Verify(raw)
		if err == nil {
			if why := notGenuine(raw, key, got); why != "" {
				t.Fatalf("Verify accepted %q: %s", raw, why)
			}
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		viaHeader, herr := v.Authenticate(r)
		if herr == nil && (err != nil || viaHeader != got) {
			t.Fatalf("Authenticate accepted %q (%+v) but Verify said %+v, %v", raw, viaHeader, got, err)
		}
	})
}

// notGenuine explains why raw should not have been accepted ("" if it is a
// genuine token for got).
func notGenuine(raw string, key []byte, got Claims) string {
	dec := base64.RawURLEncoding.Strict()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "not three segments"
	}
	hdr, err1 := dec.DecodeString(parts[0])
	body, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return "segments are not base64url"
	}
	var h struct{ Alg string }
	if json.Unmarshal(hdr, &h) != nil || h.Alg != "HS256" {
		return "alg is not HS256"
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(mac.Sum(nil), sig) {
		return "not signed with the secret"
	}
	var c map[string]any
	if json.Unmarshal(body, &c) != nil {
		return "payload is not a JSON object"
	}
	if c["iss"] != testIssuer {
		return "wrong issuer"
	}
	switch aud := c["aud"].(type) {
	case string:
		if aud != testAudience {
			return "wrong audience"
		}
	case []any:
		if !slices.Contains(aud, any(testAudience)) {
			return "wrong audience"
		}
	default:
		return "no audience"
	}
	exp, ok := c["exp"].(float64)
	if !ok || testNow.After(time.Unix(int64(exp), 0).Add(Leeway+time.Second)) {
		return "expired or no exp"
	}
	if tenant, _ := c["tenantId"].(string); tenant != got.TenantID || !marketplace.ValidTenantID(tenant) {
		return "tenant claim differs or is invalid"
	}
	return ""
}
