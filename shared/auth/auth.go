// Package auth answers "which tenant is calling?" for the API handlers: it
// verifies a Bearer JWT (HS256 with a shared secret, or RS256/ES256/PS256
// with a JWKS) or, behind API Gateway's JWT authorizer, reads the claims the
// authorizer already checked. Every refusal wraps marketplace.ErrUnauthorized.
package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"net/http"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// maxTokenBytes bounds what is parsed at all (the Authorization header is
// bounded by the same number).
const maxTokenBytes = 8 << 10

// defaultTenantClaim is used when the config leaves TenantClaim empty.
const defaultTenantClaim = "tenantId"

// Claims is what a handler needs to know about the caller.
type Claims struct {
	TenantID string // from the configured tenant claim, valid per marketplace.ValidTenantID
	Subject  string // "sub", may be empty
}

// Verifier checks Bearer JWTs against the configured issuer, audience and
// keys. It is safe for concurrent use; build one per process.
type Verifier struct {
	issuer, audience, tenantClaim string
	hmacKey                       []byte      // nil without AUTH_JWT_HS256_SECRET
	jwks                          jwt.Keyfunc // nil without AUTH_JWKS_URL
	parser                        *jwt.Parser // algorithm allow-list, iss, aud, exp, nbf, iat
	now                           func() time.Time
}

// Option adjusts a Verifier (tests inject the clock and the JWKS HTTP client).
type Option func(*options)

type options struct {
	now    func() time.Time
	client *http.Client
}

// WithClock sets the clock used for exp, nbf and iat (time.Now by default).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithHTTPClient sets the client that fetches AUTH_JWKS_URL.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// NewVerifier builds a Verifier from cfg: the HS256 secret and/or the JWKS
// URL, the issuer, the audience and the tenant claim. ctx bounds the
// goroutine that refreshes the JWKS (pass context.Background() in a Lambda).
// An unreachable JWKS does not fail construction: keys are fetched again on
// an unknown kid (at most every 5 minutes) and every hour.
func NewVerifier(ctx context.Context, cfg config.Config, opts ...Option) (*Verifier, error) {
	if err := cfg.RequireAuth(); err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	v := &Verifier{
		issuer:      cfg.JWTIssuer,
		audience:    cfg.JWTAudience,
		tenantClaim: cfg.TenantClaim,
		now:         o.now,
	}
	if v.tenantClaim == "" {
		v.tenantClaim = defaultTenantClaim
	}
	var methods []string
	if !cfg.JWTHS256Secret.IsZero() {
		v.hmacKey = []byte(cfg.JWTHS256Secret.Reveal())
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKSURL != "" {
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
			Client:      o.client,
			HTTPTimeout: 10 * time.Second,
			// An unknown kid refreshes the set at most every 5 minutes;
			// between refreshes it is refused at once instead of making the
			// request wait for the rate limiter (up to a minute by default).
			RateLimitWaitMax: time.Millisecond,
		})
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS %s: %w", cfg.JWKSURL, err)
		}
		v.jwks = kf.KeyfuncCtx(ctx)
		methods = append(methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg(), jwt.SigningMethodPS256.Alg())
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(methods), // never "none"; HS256 only with the secret
		jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
		jwt.WithStrictDecoding(),
	)
	return v, nil
}

// Verify checks raw (a compact JWS, without "Bearer ") and returns its
// claims. Errors wrap marketplace.ErrUnauthorized and the jwt cause; they
// never contain the token.
func (v *Verifier) Verify(raw string) (Claims, error) {
	if raw == "" {
		return Claims{}, fmt.Errorf("no token: %w", marketplace.ErrUnauthorized)
	}
	if len(raw) > maxTokenBytes {
		return Claims{}, fmt.Errorf("token longer than %d bytes: %w", maxTokenBytes, marketplace.ErrUnauthorized)
	}
	mc := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(raw, mc, v.key); err != nil {
		return Claims{}, fmt.Errorf("verify token: %w: %w", marketplace.ErrUnauthorized, err)
	}
	sub, err := mc.GetSubject()
	if err != nil {
		return Claims{}, fmt.Errorf("claim sub: %w: %w", marketplace.ErrUnauthorized, err)
	}
	tenant, _ := mc[v.tenantClaim].(string)
	return v.claims(tenant, sub)
}

// key picks the verification key by the token's algorithm, so that a key is
// only ever used with its own family: the secret for HS256, JWKS keys of the
// matching type for RS/PS/ES (an HS256 token is never checked against JWKS
// material, which would let a public key act as an HMAC secret).
func (v *Verifier) key(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if v.hmacKey == nil || t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("%s is not accepted without AUTH_JWT_HS256_SECRET", t.Method.Alg())
		}
		return v.hmacKey, nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		return v.jwksKey(t, func(k any) bool { _, ok := k.(*rsa.PublicKey); return ok })
	case *jwt.SigningMethodECDSA:
		return v.jwksKey(t, func(k any) bool { _, ok := k.(*ecdsa.PublicKey); return ok })
	}
	return nil, fmt.Errorf("algorithm %q not accepted", t.Method.Alg())
}

func (v *Verifier) jwksKey(t *jwt.Token, fits func(any) bool) (any, error) {
	if v.jwks == nil {
		return nil, fmt.Errorf("%s is not accepted without AUTH_JWKS_URL", t.Method.Alg())
	}
	k, err := v.jwks(t)
	if err != nil {
		return nil, err
	}
	if set, ok := k.(jwt.VerificationKeySet); ok { // no kid: try every key of the right type
		var keys jwt.VerificationKeySet
		for _, k := range set.Keys {
			if fits(k) {
				keys.Keys = append(keys.Keys, k)
			}
		}
		if len(keys.Keys) == 0 {
			return nil, fmt.Errorf("no JWKS key for %s", t.Method.Alg())
		}
		return keys, nil
	}
	if !fits(k) {
		return nil, fmt.Errorf("JWKS key %v is not a %s key", t.Header["kid"], t.Method.Alg())
	}
	return k, nil
}

// claims validates the tenant (a path segment in Vault, so strictly checked).
func (v *Verifier) claims(tenant, sub string) (Claims, error) {
	if tenant == "" {
		return Claims{}, fmt.Errorf("no string claim %q: %w", v.tenantClaim, marketplace.ErrUnauthorized)
	}
	if !marketplace.ValidTenantID(tenant) {
		return Claims{}, fmt.Errorf("claim %q is not a valid tenant id: %w", v.tenantClaim, marketplace.ErrUnauthorized)
	}
	return Claims{TenantID: tenant, Subject: sub}, nil
}
