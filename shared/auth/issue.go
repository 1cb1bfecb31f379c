package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// Issue signs an HS256 token that a Verifier configured with the same secret,
// issuer, audience and tenant claim accepts from now until now+ttl. It is for
// local development (make token) and tests; production tokens come from the
// KeyBuzz identity provider.
func Issue(key secret.Value, issuer, audience, tenantClaim, tenantID string, ttl time.Duration, now time.Time) (string, error) {
	switch {
	case len(key.Reveal()) < 32:
		return "", errors.New("issue token: the HS256 secret must be at least 32 bytes")
	case issuer == "" || audience == "":
		return "", errors.New("issue token: issuer and audience are required")
	case ttl <= 0:
		return "", fmt.Errorf("issue token: ttl %s must be positive", ttl)
	case !marketplace.ValidTenantID(tenantID):
		return "", fmt.Errorf("issue token: invalid tenant id %q (1-128 of A-Z a-z 0-9 _ -, starting with a letter or digit)", tenantID)
	}
	if tenantClaim == "" {
		tenantClaim = defaultTenantClaim
	}
	switch tenantClaim {
	case "iss", "aud", "exp", "nbf", "iat":
		return "", fmt.Errorf("issue token: tenant claim %q collides with a registered claim", tenantClaim)
	}
	now = now.Truncate(time.Second)
	claims := jwt.MapClaims{
		"iss": issuer,
		"aud": audience,
		"sub": "local-dev",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
	claims[tenantClaim] = tenantID
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key.Reveal()))
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return signed, nil
}
