package amazon

import (
	"net/url"
	"strings"
)

// vendorCentral is each marketplace's Vendor Central host (Amazon's
// "Vendor Central URLs" table of the SP-API authorization docs).
var vendorCentral = map[string]string{
	"ATVPDKIKX0DER": "vendorcentral.amazon.com", "A2EUQ1WTGCTBG2": "vendorcentral.amazon.ca",
	"A1AM78C64UM0Y8": "vendorcentral.amazon.com.mx", "A2Q3Y263D00KWC": "vendorcentral.amazon.com.br",
	"A13V1IB3VIYZZH": "vendorcentral.amazon.fr", "A1PA6795UKMFR9": "vendorcentral.amazon.de",
	"A1F83G8C2ARO7P": "vendorcentral.amazon.co.uk", "APJ6JRA9NG5V4": "vendorcentral.amazon.it",
	"A1RKKUPIHCS9HS": "vendorcentral.amazon.es", "A1805IZSGTT6HS": "vendorcentral.amazon.nl",
	"AMEN7PMS3EDWL": "vendorcentral.amazon.com.be", "A2NODRKZP88ZB9": "vendorcentral.amazon.se",
	"A1C3SOZRARQ6R3": "vendorcentral.amazon.pl", "A33AVAJ2PDY3EV": "vendorcentral.amazon.com.tr",
	"ARBP9OOSHTCHU": "vendorcentral.amazon.eg", "A17E79C6D8DWNP": "vendorcentral.amazon.sa",
	"A2VIGQ35RCS4UG": "vendorcentral.amazon.me", "A21TJRUUN4KGV": "www.vendorcentral.in",
	"AE08WJ6YKNBMC": "vendorcentral.amazon.co.za", "A1VC38T7YXB528": "vendorcentral.amazon.co.jp",
	"A39IBJ37TRP1C6": "vendorcentral.amazon.com.au", "A19VAU5U5O7RUS": "vendorcentral.amazon.com.sg",
}

// CentralHosts lists the Seller Central and Vendor Central hosts of the
// given regions (codes as LookupRegion takes them), without duplicates.
func CentralHosts(regionCodes ...string) []string {
	want := map[string]bool{}
	for _, c := range regionCodes {
		if r, err := LookupRegion(c); err == nil {
			want[r.Code] = true
		}
	}
	seen := map[string]bool{}
	var hosts []string
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	for _, id := range sortedMarketplaceIDs() {
		m := marketplaces[id]
		if !want[m.Region] {
			continue
		}
		if u, err := url.Parse(m.SellerCentral); err == nil {
			add(u.Hostname())
		}
		add(vendorCentral[id])
	}
	return hosts
}

// IsCentralURL reports whether raw is an https URL on a Seller Central or
// Vendor Central host of the given regions, with no user info: the only
// places an Appstore amazon_callback_uri may send a browser.
func IsCentralURL(raw string, regionCodes ...string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "" || u.Opaque != "" {
		return false
	}
	host := strings.ToLower(u.Host)
	for _, h := range CentralHosts(regionCodes...) {
		if host == h {
			return true
		}
	}
	return false
}

func sortedMarketplaceIDs() []string {
	var ids []string
	for _, r := range []string{"na", "eu", "fe"} {
		ids = append(ids, MarketplacesIn(r)...)
	}
	return ids
}
