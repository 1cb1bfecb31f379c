package amazon

import "testing"

func TestLookups(t *testing.T) {
	tests := []struct {
		region, wantHost string
		wantErr          bool
	}{
		{"eu", "https://sellingpartnerapi-eu.amazon.com", false},
		{"EU", "https://sellingpartnerapi-eu.amazon.com", false},
		{"us-east-1", "https://sellingpartnerapi-na.amazon.com", false},
		{"fe", "https://sellingpartnerapi-fe.amazon.com", false},
		{"mars", "", true},
	}
	for _, tt := range tests {
		r, err := LookupRegion(tt.region)
		if (err != nil) != tt.wantErr || r.SPAPIEndpoint != tt.wantHost {
			t.Errorf("LookupRegion(%q) = %+v, %v", tt.region, r, err)
		}
	}
	for _, code := range []string{"na", "eu", "fe"} {
		r, _ := LookupRegion(code)
		m, err := LookupMarketplace(r.DefaultMarketplaceID)
		if err != nil || m.Region != code {
			t.Errorf("default marketplace of %s = %+v, %v", code, m, err)
		}
		for _, id := range MarketplacesIn(code) {
			if m, _ := LookupMarketplace(id); m.Region != code || m.SellerCentral == "" {
				t.Errorf("marketplace %s: %+v", id, m)
			}
		}
	}
	if m, _ := LookupMarketplace("A13V1IB3VIYZZH"); m.CountryCode != "FR" {
		t.Errorf("FR = %+v", m)
	}
	if _, err := LookupMarketplace("nope"); err == nil {
		t.Error("unknown marketplace accepted")
	}
}
