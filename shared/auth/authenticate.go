package auth

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// Authenticate names the tenant behind r.
//
// Behind API Gateway's JWT authorizer (the httpadapter puts the request
// context in r.Context()) the authorizer's claims are used: API Gateway has
// checked the signature and expiry; the issuer, the audience and exp are
// checked again here when present. Otherwise (the local server, sam local
// start-api, which skips authorizers) the `Authorization: Bearer <jwt>`
// header is verified. Errors wrap marketplace.ErrUnauthorized.
func (v *Verifier) Authenticate(r *http.Request) (Claims, error) {
	if rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context()); ok &&
		rc.Authorizer != nil && rc.Authorizer.JWT != nil && len(rc.Authorizer.JWT.Claims) > 0 {
		return v.fromAuthorizer(rc.Authorizer.JWT.Claims)
	}
	raw, err := bearer(r.Header)
	if err != nil {
		return Claims{}, err
	}
	return v.Verify(raw)
}

// bearer extracts the single token of a single `Bearer` Authorization header.
func bearer(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch {
	case len(vals) == 0:
		return "", fmt.Errorf("no Authorization header: %w", marketplace.ErrUnauthorized)
	case len(vals) > 1:
		return "", fmt.Errorf("%d Authorization headers: %w", len(vals), marketplace.ErrUnauthorized)
	case len(vals[0]) > maxTokenBytes:
		return "", fmt.Errorf("authorization header longer than %d bytes: %w", maxTokenBytes, marketplace.ErrUnauthorized)
	}
	scheme, raw, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("authorization scheme is not Bearer: %w", marketplace.ErrUnauthorized)
	}
	raw = strings.TrimSpace(raw)
	if raw == "" || strings.ContainsAny(raw, " \t,") {
		return "", fmt.Errorf("authorization header must carry exactly one token: %w", marketplace.ErrUnauthorized)
	}
	return raw, nil
}

// fromAuthorizer reads the claims API Gateway's JWT authorizer passes on (all
// values are strings; arrays look like "[a b]").
func (v *Verifier) fromAuthorizer(c map[string]string) (Claims, error) {
	if iss, ok := c["iss"]; ok && iss != v.issuer {
		return Claims{}, fmt.Errorf("authorizer claim iss does not match AUTH_JWT_ISSUER: %w", marketplace.ErrUnauthorized)
	}
	if aud, ok := c["aud"]; ok && !slices.Contains(audiences(aud), v.audience) {
		return Claims{}, fmt.Errorf("authorizer claim aud does not include AUTH_JWT_AUDIENCE: %w", marketplace.ErrUnauthorized)
	}
	if exp, ok := c["exp"]; ok {
		secs, err := strconv.ParseFloat(exp, 64)
		if err != nil {
			return Claims{}, fmt.Errorf("authorizer claim exp %q: %w", exp, marketplace.ErrUnauthorized)
		}
		if v.now().After(time.Unix(int64(secs), 0).Add(Leeway)) {
			return Claims{}, fmt.Errorf("authorizer claim exp is past: %w", marketplace.ErrUnauthorized)
		}
	}
	return v.claims(c[v.tenantClaim], c["sub"])
}

// audiences splits API Gateway's rendering of an aud claim: "a" or "[a b]".
func audiences(s string) []string {
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok = strings.CutSuffix(inner, "]"); ok {
			return strings.FieldsFunc(inner, func(r rune) bool { return r == ' ' || r == ',' })
		}
	}
	return []string{s}
}
