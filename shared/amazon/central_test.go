package amazon

import "testing"

func TestIsCentralURL(t *testing.T) {
	for _, tc := range []struct {
		url    string
		region string
		want   bool
	}{
		{"https://sellercentral-europe.amazon.com/apps/authorize/confirm/x", "eu", true},
		{"https://sellercentral.amazon.com.tr/apps", "eu", true},
		{"https://vendorcentral.amazon.co.uk/apps", "eu", true},
		{"https://SELLERCENTRAL-EUROPE.amazon.com/apps", "eu", true},
		{"https://sellercentral.amazon.com/apps", "na", true},
		{"https://sellercentral.amazon.com/apps", "eu", false},
		{"https://sellercentral.amazon.co.jp/apps", "fe", true},
		{"http://sellercentral-europe.amazon.com/apps", "eu", false},
		{"https://sellercentral-europe.amazon.com:444/apps", "eu", false},
		{"https://a@sellercentral-europe.amazon.com/apps", "eu", false},
		{"https://sellercentral-europe.amazon.com.evil.test/", "eu", false},
		{"https://evil.test/sellercentral-europe.amazon.com", "eu", false},
		{"sellercentral-europe.amazon.com/apps", "eu", false},
		{"https://sellercentral-europe.amazon.com/apps", "xx", false},
	} {
		if got := IsCentralURL(tc.url, tc.region); got != tc.want {
			t.Errorf("IsCentralURL(%q, %s) = %v", tc.url, tc.region, got)
		}
	}
}
