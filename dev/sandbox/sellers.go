package sandbox

import "net/http"

// marketplaceDetails is the Sellers API model's Marketplace for the sandbox's
// marketplaces, as Amazon describes them.
var marketplaceDetails = map[string]jsonMarketplace{
	MarketplaceFR: {ID: MarketplaceFR, CountryCode: "FR", Name: "Amazon.fr", DefaultCurrencyCode: "EUR", DefaultLanguageCode: "fr_FR", DomainName: "www.amazon.fr"},
	MarketplaceDE: {ID: MarketplaceDE, CountryCode: "DE", Name: "Amazon.de", DefaultCurrencyCode: "EUR", DefaultLanguageCode: "de_DE", DomainName: "www.amazon.de"},
	MarketplaceIT: {ID: MarketplaceIT, CountryCode: "IT", Name: "Amazon.it", DefaultCurrencyCode: "EUR", DefaultLanguageCode: "it_IT", DomainName: "www.amazon.it"},
	MarketplaceES: {ID: MarketplaceES, CountryCode: "ES", Name: "Amazon.es", DefaultCurrencyCode: "EUR", DefaultLanguageCode: "es_ES", DomainName: "www.amazon.es"},
}

type jsonMarketplace struct {
	ID                  string `json:"id"`
	CountryCode         string `json:"countryCode"`
	Name                string `json:"name"`
	DefaultCurrencyCode string `json:"defaultCurrencyCode"`
	DefaultLanguageCode string `json:"defaultLanguageCode"`
	DomainName          string `json:"domainName"`
}

type jsonParticipation struct {
	IsParticipating      bool `json:"isParticipating"`
	HasSuspendedListings bool `json:"hasSuspendedListings"`
}

type jsonMarketplaceParticipation struct {
	Marketplace   jsonMarketplace   `json:"marketplace"`
	Participation jsonParticipation `json:"participation"`
	StoreName     string            `json:"storeName"`
}

func participationsOf(seller Seller) []jsonMarketplaceParticipation {
	out := make([]jsonMarketplaceParticipation, 0, len(seller.MarketplaceIDs))
	for _, id := range seller.MarketplaceIDs {
		out = append(out, jsonMarketplaceParticipation{
			Marketplace:   marketplaceDetails[id],
			Participation: jsonParticipation{IsParticipating: true, HasSuspendedListings: false},
			StoreName:     seller.Name,
		})
	}
	return out
}

// handleMarketplaceParticipations serves Sellers API v1
// getMarketplaceParticipations: one entry per marketplace of the calling
// seller, in the seller's order.
func (s *Server) handleMarketplaceParticipations(w http.ResponseWriter, r *http.Request, c spCall) {
	c.reply(w, http.StatusOK, map[string]any{"payload": participationsOf(c.seller)})
}

// JSON shapes of the Sellers v1 model's Account (what the sandbox fills).
type (
	jsonAccount struct {
		MarketplaceParticipationList []jsonMarketplaceParticipation `json:"marketplaceParticipationList"`
		BusinessType                 string                         `json:"businessType"`
		SellingPlan                  string                         `json:"sellingPlan"`
		Business                     *jsonBusiness                  `json:"business,omitempty"`
	}
	jsonBusiness struct {
		Name                      string      `json:"name"`
		RegisteredBusinessAddress jsonAddress `json:"registeredBusinessAddress"`
	}
	jsonAddress struct {
		AddressLine1 string `json:"addressLine1"`
		City         string `json:"city,omitempty"`
		PostalCode   string `json:"postalCode,omitempty"`
		CountryCode  string `json:"countryCode"`
	}
)

// SetAccountAccess decides whether the seller's authorization lets the app
// call getAccount (a role the seller may not grant): when it does not,
// getAccount answers 403 Unauthorized. Granted by default.
func (s *Server) SetAccountAccess(sellerID string, granted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accountDenied[sellerID] = !granted
}

// handleAccount serves Sellers API v1 getAccount: a professional seller,
// a private limited company whose registered name is the seller's name.
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request, c spCall) {
	s.mu.Lock()
	denied := s.accountDenied[c.seller.ID]
	s.mu.Unlock()
	if denied {
		c.fail(w, http.StatusForbidden, apiError{"Unauthorized", "Access to requested resource is denied.", ""})
		return
	}
	c.reply(w, http.StatusOK, map[string]any{"payload": jsonAccount{
		MarketplaceParticipationList: participationsOf(c.seller),
		BusinessType:                 "PRIVATE_LIMITED",
		SellingPlan:                  "PROFESSIONAL",
		Business: &jsonBusiness{Name: c.seller.Name, RegisteredBusinessAddress: jsonAddress{
			AddressLine1: "12 rue de la Paix", City: "Paris", PostalCode: "75002", CountryCode: "FR"}},
	}})
}
