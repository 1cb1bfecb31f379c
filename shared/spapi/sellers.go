package spapi

import (
	"context"
	"encoding/json"
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

// OpGetAccount is the Sellers API v1 getAccount operation name; its
// default usage plan is AccountRate per second, burst AccountBurst.
const OpGetAccount = "getAccount"

// AccountRate and AccountBurst are getAccount's default usage plan in the
// Sellers v1 model.
const (
	AccountRate  = 0.016
	AccountBurst = 15
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
		Payload []jsonParticipation `json:"payload"`
	}
	if _, err := c.get(ctx, u, tokens, &body); err != nil {
		return nil, fmt.Errorf("getMarketplaceParticipations: %w", err)
	}
	return participations(body.Payload), nil
}

// jsonParticipation is the model's MarketplaceParticipation.
type jsonParticipation struct {
	Marketplace struct {
		ID          string `json:"id"`
		CountryCode string `json:"countryCode"`
	} `json:"marketplace"`
	Participation struct {
		IsParticipating      bool `json:"isParticipating"`
		HasSuspendedListings bool `json:"hasSuspendedListings"`
	} `json:"participation"`
	StoreName string `json:"storeName"`
}

func participations(in []jsonParticipation) []Participation {
	out := make([]Participation, 0, len(in))
	for _, p := range in {
		out = append(out, Participation{
			MarketplaceID:     p.Marketplace.ID,
			CountryCode:       p.Marketplace.CountryCode,
			StoreName:         p.StoreName,
			Participating:     p.Participation.IsParticipating,
			SuspendedListings: p.Participation.HasSuspendedListings,
		})
	}
	return out
}

// Account is the part of the Sellers v1 model's Account the connector
// reads; Raw keeps the payload exactly as Amazon sent it.
type Account struct {
	BusinessType   string // PRIVATE_LIMITED, SOLE_PROPRIETORSHIP, INDIVIDUAL…
	SellingPlan    string // PROFESSIONAL or INDIVIDUAL
	BusinessName   string // business.name, the registered business name; "" when absent
	NonLatinName   string // business.nonLatinName
	Participations []Participation
	Raw            json.RawMessage
}

// Account calls GET /sellers/v1/account on endpoint: the seller's business
// (its registered name, a better display name than the seller id) and
// marketplaces. A seller who did not grant the role answers 403
// (ErrUnauthorized). A 403 whose details say the access token expired
// invalidates the token and retries once, unless tokens is a StaticToken.
func (c *Client) Account(ctx context.Context, endpoint string, tokens Tokens) (Account, error) {
	u := strings.TrimRight(endpoint, "/") + "/sellers/v1/account"
	var body struct {
		Payload json.RawMessage `json:"payload"`
	}
	if _, err := c.get(ctx, u, tokens, &body); err != nil {
		return Account{}, fmt.Errorf("getAccount: %w", err)
	}
	var p struct {
		BusinessType string              `json:"businessType"`
		SellingPlan  string              `json:"sellingPlan"`
		List         []jsonParticipation `json:"marketplaceParticipationList"`
		Business     *struct {
			Name         string `json:"name"`
			NonLatinName string `json:"nonLatinName"`
		} `json:"business"`
	}
	if len(body.Payload) == 0 || string(body.Payload) == "null" {
		return Account{}, fmt.Errorf("getAccount: answer has no payload")
	}
	if err := json.Unmarshal(body.Payload, &p); err != nil {
		return Account{}, fmt.Errorf("getAccount: decode payload: %w", err)
	}
	a := Account{BusinessType: p.BusinessType, SellingPlan: p.SellingPlan, Participations: participations(p.List), Raw: body.Payload}
	if p.Business != nil {
		a.BusinessName, a.NonLatinName = p.Business.Name, p.Business.NonLatinName
	}
	return a, nil
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
