package sandbox_test

import (
	"encoding/json"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

// TestMarketplaceParticipations: each seller sees its own marketplaces, in
// its order, described as Amazon describes them.
func TestMarketplaceParticipations(t *testing.T) {
	e := start(t, everyRateHeader)
	want := map[string]struct{ country, name, currency, lang, domain string }{
		sandbox.MarketplaceFR: {"FR", "Amazon.fr", "EUR", "fr_FR", "www.amazon.fr"},
		sandbox.MarketplaceDE: {"DE", "Amazon.de", "EUR", "de_DE", "www.amazon.de"},
		sandbox.MarketplaceIT: {"IT", "Amazon.it", "EUR", "it_IT", "www.amazon.it"},
		sandbox.MarketplaceES: {"ES", "Amazon.es", "EUR", "es_ES", "www.amazon.es"},
		sandbox.MarketplaceUS: {"US", "Amazon.com", "USD", "en_US", "www.amazon.com"},
		sandbox.MarketplaceCA: {"CA", "Amazon.ca", "CAD", "en_CA", "www.amazon.ca"},
		sandbox.MarketplaceJP: {"JP", "Amazon.co.jp", "JPY", "ja_JP", "www.amazon.co.jp"},
		sandbox.MarketplaceAU: {"AU", "Amazon.com.au", "AUD", "en_AU", "www.amazon.com.au"},
	}
	for _, sl := range e.srv.Sellers() {
		t.Run(sl.ID, func(t *testing.T) {
			_, access := e.authorize(t, sl.ID)
			a := e.get(t, "/sellers/v1/marketplaceParticipations", access)
			if a.status != 200 || a.header.Get("x-amzn-RateLimit-Limit") != "0.016" {
				t.Fatalf("status %d, rate limit %q: %s", a.status, a.header.Get("x-amzn-RateLimit-Limit"), a.body)
			}
			var body struct {
				Payload []struct {
					Marketplace struct {
						ID, CountryCode, Name, DefaultCurrencyCode, DefaultLanguageCode, DomainName string
					}
					Participation struct{ IsParticipating, HasSuspendedListings bool }
					StoreName     string
				}
			}
			if err := json.Unmarshal(a.body, &body); err != nil {
				t.Fatal(err)
			}
			if len(body.Payload) != len(sl.MarketplaceIDs) {
				t.Fatalf("%d participations, seller has %v", len(body.Payload), sl.MarketplaceIDs)
			}
			for i, p := range body.Payload {
				m, w := p.Marketplace, want[sl.MarketplaceIDs[i]]
				if m.ID != sl.MarketplaceIDs[i] || m.CountryCode != w.country || m.Name != w.name ||
					m.DefaultCurrencyCode != w.currency || m.DefaultLanguageCode != w.lang || m.DomainName != w.domain {
					t.Errorf("participation %d: marketplace %+v, want %s %+v", i, m, sl.MarketplaceIDs[i], w)
				}
				if !p.Participation.IsParticipating || p.Participation.HasSuspendedListings || p.StoreName != sl.Name {
					t.Errorf("participation %d: %+v, store %q", i, p.Participation, p.StoreName)
				}
			}
			if st := e.srv.Stats(sl.ID); st.Calls[sandbox.OpGetMarketplaceParticipations] != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}
