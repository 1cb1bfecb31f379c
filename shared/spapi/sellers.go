package spapi

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/oauth2"

	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// OpGetMarketplaceParticipations is the Sellers API v1 operation name, as in
// Amazon's usage plans.
const OpGetMarketplaceParticipations = "getMarketplaceParticipations"

// MarketplaceParticipationsRate and MarketplaceParticipationsBurst are the
// Sellers v1 model's default usage plan.
const (
	MarketplaceParticipationsRate  = 0.016
	MarketplaceParticipationsBurst = 15
)

// Participation is one entry of getMarketplaceParticipations: a marketplace
// of the seller's region and the seller's standing in it.
type Participation struct {
	MarketplaceID     string
	CountryCode       string // ISO 3166-1 alpha-2
	StoreName         string // the seller's store name in that marketplace
	Participating     bool   // participation.isParticipating
	SuspendedListings bool   // participation.hasSuspendedListings
}

// MarketplaceParticipations calls GET /sellers/v1/marketplaceParticipations
// on endpoint: every marketplace the seller's authorization covers, whether
// or not the seller participates in it (check Participating). A 403 whose
// details say the access token expired invalidates the token and retries
// once, unless tokens is a StaticToken.
func (c *Client) MarketplaceParticipations(ctx context.Context, endpoint string, tokens Tokens) ([]Participation, error) {
	u := strings.TrimRight(endpoint, "/") + "/sellers/v1/marketplaceParticipations"
	var body struct {
		Payload []struct {
			Marketplace struct {
				ID          string `json:"id"`
				CountryCode string `json:"countryCode"`
			} `json:"marketplace"`
			Participation struct {
				IsParticipating      bool `json:"isParticipating"`
				HasSuspendedListings bool `json:"hasSuspendedListings"`
			} `json:"participation"`
			StoreName string `json:"storeName"`
		} `json:"payload"`
	}
	if _, err := c.get(ctx, u, tokens, &body); err != nil {
		return nil, fmt.Errorf("getMarketplaceParticipations: %w", err)
	}
	out := make([]Participation, 0, len(body.Payload))
	for _, p := range body.Payload {
		out = append(out, Participation{
			MarketplaceID:     p.Marketplace.ID,
			CountryCode:       p.Marketplace.CountryCode,
			StoreName:         p.StoreName,
			Participating:     p.Participation.IsParticipating,
			SuspendedListings: p.Participation.HasSuspendedListings,
		})
	}
	return out, nil
}

// StaticToken is a Tokens holding one access token and nothing to refresh
// it with, for a single call right after the LWA code exchange. An
// "expired" 403 is returned as is instead of being retried.
func StaticToken(accessToken secret.Value) Tokens { return staticToken(accessToken) }

type staticToken secret.Value

func (s staticToken) Token() (*oauth2.Token, error) {
	if s == "" {
		return nil, fmt.Errorf("spapi: empty access token")
	}
	return &oauth2.Token{AccessToken: secret.Value(s).Reveal(), TokenType: "bearer"}, nil
}

func (staticToken) Invalidate() {}

// refreshable reports whether Invalidate then Token can yield a new token.
func refreshable(tokens Tokens) bool {
	_, static := tokens.(staticToken)
	return !static
}
