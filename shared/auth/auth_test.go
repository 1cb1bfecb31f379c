package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

const (
	testSecret   = "test-hs256-secret-0123456789abcdef"
	testIssuer   = "keybuzz-test"
	testAudience = "keybuzz-amazon"
	testTenant   = "tenant-0001"
)

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func hsConfig() config.Config {
	return config.Config{
		JWTIssuer: testIssuer, JWTAudience: testAudience,
		JWTHS256Secret: secret.Value(testSecret), TenantClaim: "tenantId",
	}
}

func newTestVerifier(t testing.TB, cfg config.Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(t.Context(), cfg, WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// claims returns valid claims for testNow, changed by edits (a nil value
// deletes the claim).
func claims(edits map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": "user-1", "tenantId": testTenant,
		"iat": testNow.Add(-time.Minute).Unix(), "exp": testNow.Add(time.Hour).Unix(),
	}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handMade builds a compact JWS from raw JSON, with sig as its signature.
func handMade(header, payload string, sig []byte) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc(sig)
}

// hs256WithKey signs header.payload with an arbitrary HMAC key, the way an
// attacker holding only a public key would try alg confusion.
func hs256WithKey(t testing.TB, key []byte, kid string, c jwt.MapClaims) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid})
	p, _ := json.Marshal(c)
	enc := base64.RawURLEncoding.EncodeToString
	signing := enc(h) + "." + enc(p)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signing))
	return signing + "." + enc(mac.Sum(nil))
}

// jwksFixture is a JWKS served on 127.0.0.1 with an RS256 key (kid rsa-1), an
// RSA key without alg (kid rsa-any, for PS256) and an ES256 key (kid ec-1).
type jwksFixture struct {
	url          string
	rsa, rsaAny  *rsa.PrivateKey
	ec           *ecdsa.PrivateKey
	rsaPublicPEM []byte
	rsaPublicDER []byte
}

func newJWKS(t *testing.T) jwksFixture {
	t.Helper()
	var f jwksFixture
	var err error
	if f.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if f.rsaAny, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if f.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if f.rsaPublicDER, err = x509.MarshalPKIXPublicKey(&f.rsa.PublicKey); err != nil {
		t.Fatal(err)
	}
	f.rsaPublicPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: f.rsaPublicDER})
	enc := base64.RawURLEncoding.EncodeToString
	rsaJWK := func(k *rsa.PublicKey, kid, alg string) map[string]string {
		m := map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
		if alg != "" {
			m["alg"] = alg
		}
		return m
	}
	point, err := f.ec.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		rsaJWK(&f.rsa.PublicKey, "rsa-1", "RS256"),
		rsaJWK(&f.rsaAny.PublicKey, "rsa-any", ""),
		{"kty": "EC", "kid": "ec-1", "use": "sig", "alg": "ES256", "crv": "P-256", "x": enc(point[1:33]), "y": enc(point[33:])},
	}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(set)
	}))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("JWKS server on %s, want loopback", srv.URL)
	}
	f.url = srv.URL + "/.well-known/jwks.json"
	return f
}

func TestVerify(t *testing.T) {
	jwks := newJWKS(t)
	hs := newTestVerifier(t, hsConfig())
	jwksCfg := hsConfig()
	jwksCfg.JWTHS256Secret, jwksCfg.JWKSURL = "", jwks.url
	jwksOnly := newTestVerifier(t, jwksCfg)
	bothCfg := hsConfig()
	bothCfg.JWKSURL = jwks.url
	both := newTestVerifier(t, bothCfg)
	customCfg := hsConfig()
	customCfg.TenantClaim = "https://keybuzz.io/tenant"
	custom := newTestVerifier(t, customCfg)

	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := Issue(testSecret, testIssuer, testAudience, "tenantId", testTenant, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte(testSecret)
	valid := sign(t, jwt.SigningMethodHS256, key, "", claims(nil))
	parts := strings.Split(valid, ".")
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"keybuzz-test","aud":"keybuzz-amazon","tenantId":"tenant-9999","exp":4102444800}`))

	tests := []struct {
		name    string
		v       *Verifier
		token   string
		want    Claims // zero: must be refused
		wantErr error  // optional cause besides ErrUnauthorized
	}{
		{name: "valid HS256", v: hs, token: valid, want: Claims{TenantID: testTenant, Subject: "user-1"}},
		{name: "token from Issue", v: hs, token: issued, want: Claims{TenantID: testTenant, Subject: "local-dev"}},
		{name: "aud array containing ours", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"aud": []string{"other", testAudience}})), want: Claims{TenantID: testTenant, Subject: "user-1"}},
		{name: "expired within leeway", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"exp": testNow.Add(-20 * time.Second).Unix()})), want: Claims{TenantID: testTenant, Subject: "user-1"}},
		{name: "expired", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"exp": testNow.Add(-time.Minute).Unix()})), wantErr: jwt.ErrTokenExpired},
		{name: "no exp", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"exp": nil})), wantErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "not yet valid", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"nbf": testNow.Add(5 * time.Minute).Unix()})), wantErr: jwt.ErrTokenNotValidYet},
		{name: "issued in the future", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"iat": testNow.Add(5 * time.Minute).Unix()})), wantErr: jwt.ErrTokenUsedBeforeIssued},
		{name: "wrong signature", v: hs, token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef-xyz"), "", claims(nil)), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "tampered payload", v: hs, token: parts[0] + "." + payload + "." + parts[2], wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "wrong issuer", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"iss": "evil"})), wantErr: jwt.ErrTokenInvalidIssuer},
		{name: "no issuer", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"iss": nil})), wantErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "wrong audience", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"aud": "other-api"})), wantErr: jwt.ErrTokenInvalidAudience},
		{name: "no audience", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"aud": nil})), wantErr: jwt.ErrTokenRequiredClaimMissing},
		{name: "HS384 with the secret", v: hs, token: sign(t, jwt.SigningMethodHS384, key, "", claims(nil)), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "alg none", v: hs, token: handMade(`{"alg":"none","typ":"JWT"}`, mustJSON(claims(nil)), nil)},
		{name: "alg None with a signature", v: hs, token: handMade(`{"alg":"None","typ":"JWT"}`, mustJSON(claims(nil)), []byte("x"))},
		{name: "alg none via the library", v: both, token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(nil))},
		{name: "no alg", v: hs, token: handMade(`{"typ":"JWT"}`, mustJSON(claims(nil)), []byte("x"))},

		{name: "RS256 from JWKS", v: jwksOnly, token: sign(t, jwt.SigningMethodRS256, jwks.rsa, "rsa-1", claims(nil)), want: Claims{TenantID: testTenant, Subject: "user-1"}},
		{name: "RS256 without kid", v: jwksOnly, token: sign(t, jwt.SigningMethodRS256, jwks.rsa, "", claims(nil)), want: Claims{TenantID: testTenant, Subject: "user-1"}},
		{name: "RS256 with secret and JWKS", v: both, token: sign(t, jwt.SigningMethodRS256, jwks.rsa, "rsa-1", claims(nil)), want: Claims{TenantID: testTenant, Subject: "user-1"}},
		{name: "HS256 with secret and JWKS", v: both, token: valid, want: Claims{TenantID: testTenant, Subject: "user-1"}},
		{name: "ES256 from JWKS", v: jwksOnly, token: sign(t, jwt.SigningMethodES256, jwks.ec, "ec-1", claims(nil)), want: Claims{TenantID: testTenant, Subject: "user-1"}},
		{name: "PS256 from JWKS", v: jwksOnly, token: sign(t, jwt.SigningMethodPS256, jwks.rsaAny, "rsa-any", claims(nil)), want: Claims{TenantID: testTenant, Subject: "user-1"}},
		{name: "RS256 wrong issuer", v: jwksOnly, token: sign(t, jwt.SigningMethodRS256, jwks.rsa, "rsa-1", claims(map[string]any{"iss": "evil"})), wantErr: jwt.ErrTokenInvalidIssuer},
		{name: "RS256 expired", v: jwksOnly, token: sign(t, jwt.SigningMethodRS256, jwks.rsa, "rsa-1", claims(map[string]any{"exp": testNow.Add(-time.Hour).Unix()})), wantErr: jwt.ErrTokenExpired},
		{name: "RS256 by a key not in the JWKS", v: jwksOnly, token: sign(t, jwt.SigningMethodRS256, otherRSA, "rsa-1", claims(nil)), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "RS256 unknown kid", v: jwksOnly, token: sign(t, jwt.SigningMethodRS256, otherRSA, "rsa-unknown", claims(nil)), wantErr: jwt.ErrTokenUnverifiable},
		{name: "PS256 against an RS256-only key", v: jwksOnly, token: sign(t, jwt.SigningMethodPS256, jwks.rsa, "rsa-1", claims(nil)), wantErr: jwt.ErrTokenUnverifiable},
		{name: "ES256 naming an RSA kid", v: jwksOnly, token: sign(t, jwt.SigningMethodES256, jwks.ec, "rsa-any", claims(nil)), wantErr: jwt.ErrTokenUnverifiable},
		{name: "RS384 not allowed", v: jwksOnly, token: sign(t, jwt.SigningMethodRS384, jwks.rsa, "rsa-1", claims(nil)), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "RS256 without JWKS", v: hs, token: sign(t, jwt.SigningMethodRS256, jwks.rsa, "rsa-1", claims(nil)), wantErr: jwt.ErrTokenSignatureInvalid},

		// Alg confusion: an HS256 token whose HMAC key is the RSA public key.
		{name: "HS256 with public key PEM, JWKS only", v: jwksOnly, token: hs256WithKey(t, jwks.rsaPublicPEM, "rsa-1", claims(nil)), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 with public key DER, JWKS only", v: jwksOnly, token: hs256WithKey(t, jwks.rsaPublicDER, "rsa-1", claims(nil)), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 with public key PEM, secret and JWKS", v: both, token: hs256WithKey(t, jwks.rsaPublicPEM, "rsa-1", claims(nil)), wantErr: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 with modulus, secret and JWKS", v: both, token: hs256WithKey(t, jwks.rsa.N.Bytes(), "", claims(nil)), wantErr: jwt.ErrTokenSignatureInvalid},

		{name: "missing tenant claim", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"tenantId": nil}))},
		{name: "tenant claim a number", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"tenantId": 42}))},
		{name: "tenant claim empty", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"tenantId": ""}))},
		{name: "tenant claim path traversal", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"tenantId": "../x"}))},
		{name: "tenant claim with slash", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"tenantId": "a/b"}))},
		{name: "tenant claim 300 chars", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"tenantId": strings.Repeat("a", 300)}))},
		{name: "tenant claim 128 chars", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"tenantId": strings.Repeat("a", 128)})), want: Claims{TenantID: strings.Repeat("a", 128), Subject: "user-1"}},
		{name: "sub not a string", v: hs, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"sub": 7}))},
		{name: "custom tenant claim", v: custom, token: sign(t, jwt.SigningMethodHS256, key, "", claims(map[string]any{"https://keybuzz.io/tenant": "t-2"})), want: Claims{TenantID: "t-2", Subject: "user-1"}},
		{name: "custom tenant claim ignores tenantId", v: custom, token: valid},

		{name: "empty", v: hs, token: ""},
		{name: "garbage", v: hs, token: "not a jwt"},
		{name: "three dots", v: hs, token: "..."},
		{name: "a.b.c", v: hs, token: "a.b.c"},
		{name: "Bearer prefix", v: hs, token: "Bearer " + valid},
		{name: "padded segments", v: hs, token: strings.ReplaceAll(valid, ".", "=.")},
		{name: "truncated", v: hs, token: valid[:len(valid)-5]},
		{name: "header only", v: hs, token: parts[0]},
		{name: "json header not object", v: hs, token: handMade(`[]`, `{}`, nil)},
		{name: "huge", v: hs, token: parts[0] + "." + strings.Repeat("A", 9000) + "." + parts[2]},
		{name: "binary", v: hs, token: "\x00\xff.\x01.\x02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.v.Verify(tt.token)
			if tt.want != (Claims{}) {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got != tt.want {
					t.Fatalf("claims = %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !errors.Is(err, marketplace.ErrUnauthorized) {
				t.Errorf("error %v does not wrap ErrUnauthorized", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want cause %v", err, tt.wantErr)
			}
			if got != (Claims{}) {
				t.Errorf("claims %+v returned with an error", got)
			}
			if len(tt.token) > 20 && strings.Contains(err.Error(), tt.token[len(tt.token)-20:]) {
				t.Errorf("error message contains the token: %v", err)
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestNewVerifierConfig(t *testing.T) {
	tests := []struct {
		name string
		edit func(*config.Config)
	}{
		{"no key", func(c *config.Config) { c.JWTHS256Secret = "" }},
		{"short secret", func(c *config.Config) { c.JWTHS256Secret = "short" }},
		{"no issuer", func(c *config.Config) { c.JWTIssuer = "" }},
		{"no audience", func(c *config.Config) { c.JWTAudience = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hsConfig()
			tt.edit(&c)
			if _, err := NewVerifier(t.Context(), c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	c := hsConfig()
	c.TenantClaim = ""
	v := newTestVerifier(t, c)
	if got, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(nil))); err != nil || got.TenantID != testTenant {
		t.Errorf("empty TenantClaim does not default to tenantId: %+v, %v", got, err)
	}
}

func TestJWKSUnreachableAtStart(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens any more
	c := hsConfig()
	c.JWTHS256Secret, c.JWKSURL = "", srv.URL
	v := newTestVerifier(t, c)
	jwks := newJWKS(t)
	if _, err := v.Verify(sign(t, jwt.SigningMethodRS256, jwks.rsa, "rsa-1", claims(nil))); !errors.Is(err, marketplace.ErrUnauthorized) {
		t.Fatalf("Verify without keys = %v, want ErrUnauthorized", err)
	}
}

func TestIssue(t *testing.T) {
	tests := []struct {
		name                    string
		key                     secret.Value
		iss, aud, claim, tenant string
		ttl                     time.Duration
		wantErr                 bool
	}{
		{name: "ok", key: testSecret, iss: testIssuer, aud: testAudience, claim: "tenantId", tenant: testTenant, ttl: time.Hour},
		{name: "default claim", key: testSecret, iss: testIssuer, aud: testAudience, tenant: testTenant, ttl: time.Hour},
		{name: "short secret", key: "short", iss: testIssuer, aud: testAudience, tenant: testTenant, ttl: time.Hour, wantErr: true},
		{name: "bad tenant", key: testSecret, iss: testIssuer, aud: testAudience, tenant: "../x", ttl: time.Hour, wantErr: true},
		{name: "no ttl", key: testSecret, iss: testIssuer, aud: testAudience, tenant: testTenant, wantErr: true},
		{name: "no issuer", key: testSecret, aud: testAudience, tenant: testTenant, ttl: time.Hour, wantErr: true},
		{name: "claim collides", key: testSecret, iss: testIssuer, aud: testAudience, claim: "exp", tenant: testTenant, ttl: time.Hour, wantErr: true},
	}
	v := newTestVerifier(t, hsConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Issue(tt.key, tt.iss, tt.aud, tt.claim, tt.tenant, tt.ttl, testNow)
			if tt.wantErr {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c, err := v.Verify(tok); err != nil || c.TenantID != tt.tenant {
				t.Fatalf("Verify(Issue) = %+v, %v", c, err)
			}
			late, err := NewVerifier(t.Context(), hsConfig(), WithClock(func() time.Time { return testNow.Add(tt.ttl + Leeway + time.Second) }))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := late.Verify(tok); !errors.Is(err, jwt.ErrTokenExpired) {
				t.Errorf("after ttl: %v, want expired", err)
			}
		})
	}
}
