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

// handleMarketplaceParticipations serves Sellers API v1
// getMarketplaceParticipations: one entry per marketplace of the calling
// seller, in the seller's order.
func (s *Server) handleMarketplaceParticipations(w http.ResponseWriter, r *http.Request, c spCall) {
	out := make([]jsonMarketplaceParticipation, 0, len(c.seller.MarketplaceIDs))
	for _, id := range c.seller.MarketplaceIDs {
		out = append(out, jsonMarketplaceParticipation{
			Marketplace:   marketplaceDetails[id],
			Participation: jsonParticipation{IsParticipating: true, HasSuspendedListings: false},
			StoreName:     c.seller.Name,
		})
	}
	c.reply(w, http.StatusOK, map[string]any{"payload": out})
}
