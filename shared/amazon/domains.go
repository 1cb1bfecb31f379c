package amazon

import "strings"

// marketplaceDomains maps each store's domain suffix ("amazon.<suffix>")
// to its marketplace id: the domain Amazon's relay and notification mails
// come from (marketplace.amazon.fr, donotreply@amazon.fr).
var marketplaceDomains = map[string]string{
	"com": "ATVPDKIKX0DER", "ca": "A2EUQ1WTGCTBG2", "com.mx": "A1AM78C64UM0Y8", "com.br": "A2Q3Y263D00KWC",
	"fr": "A13V1IB3VIYZZH", "de": "A1PA6795UKMFR9", "co.uk": "A1F83G8C2ARO7P", "it": "APJ6JRA9NG5V4",
	"es": "A1RKKUPIHCS9HS", "nl": "A1805IZSGTT6HS", "com.be": "AMEN7PMS3EDWL", "se": "A2NODRKZP88ZB9",
	"pl": "A1C3SOZRARQ6R3", "ie": "A28R8C7NBKEWEA", "com.tr": "A33AVAJ2PDY3EV", "eg": "ARBP9OOSHTCHU",
	"sa": "A17E79C6D8DWNP", "ae": "A2VIGQ35RCS4UG", "in": "A21TJRUUN4KGV", "co.za": "AE08WJ6YKNBMC",
	"co.jp": "A1VC38T7YXB528", "com.au": "A39IBJ37TRP1C6", "sg": "A19VAU5U5O7RUS",
}

// MarketplaceForDomain returns the marketplace whose store domain is
// "amazon.<suffix>" ("fr", "co.uk", "com.be"); exact suffixes only.
func MarketplaceForDomain(suffix string) (Marketplace, bool) {
	id, ok := marketplaceDomains[strings.ToLower(suffix)]
	if !ok {
		return Marketplace{}, false
	}
	m, ok := marketplaces[id]
	return m, ok
}

// MarketplaceDomain is the store domain suffix of a marketplace id ("fr"
// for A13V1IB3VIYZZH); "" when unknown.
func MarketplaceDomain(id string) string {
	for suffix, mid := range marketplaceDomains {
		if mid == id {
			return suffix
		}
	}
	return ""
}

// MarketplaceForCountry returns the marketplace of a country code ("FR",
// "GB"), the one store Amazon runs there.
func MarketplaceForCountry(cc string) (Marketplace, bool) {
	for _, m := range marketplaces {
		if strings.EqualFold(m.CountryCode, cc) {
			return m, true
		}
	}
	return Marketplace{}, false
}
