// Package amazon is the one place that knows Amazon's regions, marketplaces,
// SP-API hosts, Seller Central consent hosts and LWA endpoint.
package amazon

import (
	"fmt"
	"sort"
	"strings"
)

// DefaultLWATokenURL is Login with Amazon's token endpoint.
const DefaultLWATokenURL = "https://api.amazon.com/auth/o2/token"

// Region is an SP-API selling region.
type Region struct {
	Code          string // "na", "eu", "fe"
	SPAPIEndpoint string
	AWSRegion     string
	// DefaultMarketplaceID is used when an app or a consent names no marketplace.
	DefaultMarketplaceID string
}

// Marketplace is one Amazon store.
type Marketplace struct {
	ID            string
	CountryCode   string
	Name          string
	Region        string // Region.Code
	SellerCentral string // consent host for this marketplace
	Language      string // the store's main language, ISO 639-1 (ExternalMessage.language)
}

var regions = map[string]Region{
	"na": {Code: "na", SPAPIEndpoint: "https://sellingpartnerapi-na.amazon.com", AWSRegion: "us-east-1", DefaultMarketplaceID: "ATVPDKIKX0DER"},
	"eu": {Code: "eu", SPAPIEndpoint: "https://sellingpartnerapi-eu.amazon.com", AWSRegion: "eu-west-1", DefaultMarketplaceID: "A13V1IB3VIYZZH"},
	"fe": {Code: "fe", SPAPIEndpoint: "https://sellingpartnerapi-fe.amazon.com", AWSRegion: "us-west-2", DefaultMarketplaceID: "A1VC38T7YXB528"},
}

// Marketplaces, from Amazon's "Marketplace IDs" and "Seller Central URLs"
// developer documentation.
var marketplaces = map[string]Marketplace{}

func init() {
	for _, m := range []Marketplace{
		{"ATVPDKIKX0DER", "US", "Amazon.com", "na", "https://sellercentral.amazon.com", "en"},
		{"A2EUQ1WTGCTBG2", "CA", "Amazon.ca", "na", "https://sellercentral.amazon.ca", "en"},
		{"A1AM78C64UM0Y8", "MX", "Amazon.com.mx", "na", "https://sellercentral.amazon.com.mx", "es"},
		{"A2Q3Y263D00KWC", "BR", "Amazon.com.br", "na", "https://sellercentral.amazon.com.br", "pt"},
		{"A13V1IB3VIYZZH", "FR", "Amazon.fr", "eu", "https://sellercentral-europe.amazon.com", "fr"},
		{"A1PA6795UKMFR9", "DE", "Amazon.de", "eu", "https://sellercentral-europe.amazon.com", "de"},
		{"A1F83G8C2ARO7P", "GB", "Amazon.co.uk", "eu", "https://sellercentral-europe.amazon.com", "en"},
		{"APJ6JRA9NG5V4", "IT", "Amazon.it", "eu", "https://sellercentral-europe.amazon.com", "it"},
		{"A1RKKUPIHCS9HS", "ES", "Amazon.es", "eu", "https://sellercentral-europe.amazon.com", "es"},
		{"A1805IZSGTT6HS", "NL", "Amazon.nl", "eu", "https://sellercentral.amazon.nl", "nl"},
		{"AMEN7PMS3EDWL", "BE", "Amazon.com.be", "eu", "https://sellercentral.amazon.com.be", "fr"},
		{"A2NODRKZP88ZB9", "SE", "Amazon.se", "eu", "https://sellercentral.amazon.se", "sv"},
		{"A1C3SOZRARQ6R3", "PL", "Amazon.pl", "eu", "https://sellercentral.amazon.pl", "pl"},
		{"A28R8C7NBKEWEA", "IE", "Amazon.ie", "eu", "https://sellercentral.amazon.ie", "en"},
		{"A33AVAJ2PDY3EV", "TR", "Amazon.com.tr", "eu", "https://sellercentral.amazon.com.tr", "tr"},
		{"ARBP9OOSHTCHU", "EG", "Amazon.eg", "eu", "https://sellercentral.amazon.eg", "ar"},
		{"A17E79C6D8DWNP", "SA", "Amazon.sa", "eu", "https://sellercentral.amazon.sa", "ar"},
		{"A2VIGQ35RCS4UG", "AE", "Amazon.ae", "eu", "https://sellercentral.amazon.ae", "ar"},
		{"A21TJRUUN4KGV", "IN", "Amazon.in", "eu", "https://sellercentral.amazon.in", "en"},
		{"AE08WJ6YKNBMC", "ZA", "Amazon.co.za", "eu", "https://sellercentral.amazon.co.za", "en"},
		{"A1VC38T7YXB528", "JP", "Amazon.co.jp", "fe", "https://sellercentral.amazon.co.jp", "ja"},
		{"A39IBJ37TRP1C6", "AU", "Amazon.com.au", "fe", "https://sellercentral.amazon.com.au", "en"},
		{"A19VAU5U5O7RUS", "SG", "Amazon.sg", "fe", "https://sellercentral.amazon.sg", "en"},
	} {
		marketplaces[m.ID] = m
	}
}

// LookupRegion returns the region for a code ("eu", "EU", "eu-west-1" all work).
func LookupRegion(code string) (Region, error) {
	c := strings.ToLower(strings.TrimSpace(code))
	if r, ok := regions[c]; ok {
		return r, nil
	}
	for _, r := range regions {
		if r.AWSRegion == c {
			return r, nil
		}
	}
	return Region{}, fmt.Errorf("unknown Amazon region %q (want na, eu or fe)", code)
}

// LookupMarketplace returns a marketplace by id.
func LookupMarketplace(id string) (Marketplace, error) {
	if m, ok := marketplaces[id]; ok {
		return m, nil
	}
	return Marketplace{}, fmt.Errorf("unknown Amazon marketplace %q", id)
}

// LanguageOf returns the main language of a marketplace ("fr" for
// A13V1IB3VIYZZH), or "" for an unknown id.
func LanguageOf(marketplaceID string) string { return marketplaces[marketplaceID].Language }

// languageHome is the country of a language's own store.
var languageHome = map[string]string{
	"fr": "FR", "de": "DE", "it": "IT", "es": "ES", "nl": "NL", "sv": "SE", "pl": "PL", "tr": "TR", "ja": "JP", "pt": "BR",
}

// HomeMarketplace is the marketplace that is a language's own store (FR
// for "fr", BR for "pt"); none for a language many stores share (English,
// Arabic).
func HomeMarketplace(language string) (Marketplace, bool) {
	cc, ok := languageHome[language]
	if !ok {
		return Marketplace{}, false
	}
	return MarketplaceForCountry(cc)
}

// MarketplacesIn lists a region's marketplace ids, sorted.
func MarketplacesIn(region string) []string {
	var ids []string
	for id, m := range marketplaces {
		if m.Region == region {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
