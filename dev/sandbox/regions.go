package sandbox

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
)

// Sellers outside Europe. Authorization is per region (AMAZON.md): a
// seller's refresh token works against its region's SP-API host only, and
// consent happens on a Seller Central host of that region. The sandbox is
// one server; it tells the region a request is for by its Host: a request
// for sellingpartnerapi-<region>.amazon.com (or the sandbox.
// sellingpartnerapi-… host) is answered as that host, a seller of another
// region gets Amazon's 403; a consent on a Seller Central host accepts only
// that region's sellers. A request to the sandbox's own address (127.0.0.1,
// what AMAZON_SPAPI_ENDPOINT and AMAZON_SELLER_CENTRAL_URL name locally)
// serves every region. HostTransport lets a client call Amazon's real
// hosts and reach the sandbox.

// Marketplaces of the NA and FE sellers.
const (
	MarketplaceUS = "ATVPDKIKX0DER"
	MarketplaceCA = "A2EUQ1WTGCTBG2"
	MarketplaceJP = "A1VC38T7YXB528"
	MarketplaceAU = "A39IBJ37TRP1C6"
)

func init() {
	for id, m := range map[string]struct {
		cc, name, currency, lang, domain, tld string
	}{
		MarketplaceUS: {"US", "Amazon.com", "USD", "en_US", "www.amazon.com", "com"},
		MarketplaceCA: {"CA", "Amazon.ca", "CAD", "en_CA", "www.amazon.ca", "ca"},
		MarketplaceJP: {"JP", "Amazon.co.jp", "JPY", "ja_JP", "www.amazon.co.jp", "co.jp"},
		MarketplaceAU: {"AU", "Amazon.com.au", "AUD", "en_AU", "www.amazon.com.au", "com.au"},
	} {
		marketplaceDetails[id] = jsonMarketplace{ID: id, CountryCode: m.cc, Name: m.name, DefaultCurrencyCode: m.currency, DefaultLanguageCode: m.lang, DomainName: m.domain}
		marketplaceInfo[id] = struct{ name, tld string }{m.name, m.tld}
	}
}

// RegionSellerID is the deterministic id of the n-th (1-based) seller of
// region "na" or "fe".
func RegionSellerID(region string, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	h := sha256.Sum256([]byte(fmt.Sprintf("keybuzz-sandbox-seller-%s-%d", region, n)))
	b := make([]byte, 14)
	b[0] = 'A'
	for i := 1; i < 14; i++ {
		b[i] = alphabet[int(h[i])%len(alphabet)]
	}
	return string(b)
}

func newRegionSeller(region string, n int) Seller {
	s := Seller{ID: RegionSellerID(region, n), Region: region}
	switch region {
	case "na":
		s.Name, s.MarketplaceIDs = fmt.Sprintf("Maple & Pine %d", n), []string{MarketplaceUS, MarketplaceCA}
	case "fe":
		s.Name, s.MarketplaceIDs = fmt.Sprintf("Sakura Goods %d", n), []string{MarketplaceJP, MarketplaceAU}
	}
	return s
}

// hostRegion is the region of an Amazon host the request names: an SP-API
// host ("sellingpartnerapi-na.amazon.com") or a Seller Central one
// ("sellercentral.amazon.co.jp"); "" for any other host (the sandbox's
// own address).
func hostRegion(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimPrefix(host, "sandbox."))
	for _, code := range []string{"na", "eu", "fe"} {
		if host == "sellingpartnerapi-"+code+".amazon.com" {
			return code
		}
	}
	for _, code := range []string{"na", "eu", "fe"} {
		for _, id := range amazon.MarketplacesIn(code) {
			m, err := amazon.LookupMarketplace(id)
			if err == nil && strings.EqualFold(strings.TrimPrefix(m.SellerCentral, "https://"), host) {
				return code
			}
		}
	}
	return ""
}

// wrongRegion reports an SP-API request for a region's host by a seller of
// another region: Amazon answers 403 (an EU seller on the NA host).
func wrongRegion(r *http.Request, seller Seller) bool {
	region := hostRegion(r.Host)
	return region != "" && seller.Region != "" && region != seller.Region
}

// HostTransport sends every request for an Amazon host (SP-API, Seller
// Central, LWA's api.amazon.com) to the sandbox at base, keeping Amazon's
// host in the Host header, so that a client configured with Amazon's real
// regional hosts reaches the sandbox and the sandbox answers as that host.
// Other requests go through next (nil: http.DefaultTransport).
func HostTransport(base string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return hostTransport{base: strings.TrimRight(base, "/"), next: next}
}

type hostTransport struct {
	base string
	next http.RoundTripper
}

func (t hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	host := strings.ToLower(r.URL.Hostname())
	if !strings.HasSuffix(host, ".amazon.com") && !strings.Contains(host, "sellercentral") {
		return t.next.RoundTrip(r)
	}
	r2 := r.Clone(r.Context())
	target, err := http.NewRequest(r.Method, t.base, nil)
	if err != nil {
		return nil, err
	}
	r2.URL.Scheme, r2.URL.Host = target.URL.Scheme, target.URL.Host
	r2.Host = r.URL.Host
	return t.next.RoundTrip(r2)
}

// regionConsent refuses a consent on a Seller Central host of another
// region than the seller's: the seller has no account there.
func regionConsent(r *http.Request, seller Seller) *consentError {
	if region := hostRegion(r.Host); region != "" && seller.Region != region {
		return &consentError{"WRONG_REGION", "Account not found",
			"Seller " + seller.ID + " sells in region " + strings.ToUpper(seller.Region) + ", not on this Seller Central (" + strings.ToUpper(region) + ")."}
	}
	return nil
}
