package reply

import (
	"errors"
	"strings"
	"testing"
)

func TestRulesCheck(t *testing.T) {
	rules := DefaultRules()
	tests := []struct {
		name, text string
		code       string // "" = accepted
		match      string // the part named, when refused
	}{
		{"plain", "Bonjour, votre colis part demain. Merci !", "", ""},
		{"trimmed accepted", "   Merci\n\n", "", ""},
		{"empty", "", CodeEmpty, ""},
		{"blank", " \n\t ", CodeEmpty, ""},
		{"exactly max", strings.Repeat("a", 2000), "", ""},
		{"max after trim", "  " + strings.Repeat("é", 2000) + "\n", "", ""},
		{"over max", strings.Repeat("a", 2001), CodeTooLong, ""},
		{"keyword", "We will issue a refund today", CodeBlockedKeyword, "refund"},
		{"keyword upper", "No LAWSUIT please", CodeBlockedKeyword, "lawsuit"},
		{"keyword phrase", "this could lead to Legal Action", CodeBlockedKeyword, "legal action"},
		{"keyword inside a word is none", "Thank you for your courtesy; refunded items ship back", "", ""},
		{"order id", "Your order 123-1234567-1234567 has shipped.", "", ""},
		{"two order ids", "Orders 123-1234567-1234567 and 404-7654321-7654321.", "", ""},
		{"asin", "The item B08N5WRWNW is back in stock.", "", ""},
		{"isbn asin", "ASIN 0306406152 is the paperback.", "", ""},
		{"ups tracking", "Tracking: 1Z999AA10123456784", "", ""},
		{"usps tracking spaced", "Tracking 9400 1118 9922 3197 4284 90", "", ""},
		{"fedex tracking", "Tracking number 123456789012", "", ""},
		{"la poste tracking", "Suivi : 6A12345678901 ou LA123456789FR", "", ""},
		{"date", "Delivered on 2026-12-07 or 07/12/2026.", "", ""},
		{"amount", "We sent 12.50 EUR and 3 items.", "", ""},
		{"amazon link", "See https://www.amazon.fr/gp/css/order-history?ref=x", "", ""},
		{"amazon bare", "Look at amazon.de/dp/B08N5WRWNW please", "", ""},
		{"amazon sub", "https://sellercentral.amazon.co.uk/messaging", "", ""},
		{"amazon short", "https://amzn.eu/d/abc", "", ""},
		{"not amazon lookalike", "https://amazon.fr.evil.com/x", CodeLink, "https://amazon.fr.evil.com/x"},
		{"not amazon suffix", "https://notamazon.fr/x", CodeLink, "https://notamazon.fr/x"},
		{"other link", "Visit https://example.com/shop for more", CodeLink, "https://example.com/shop"},
		{"www link", "Visit www.myshop.de today", CodeLink, "www.myshop.de"},
		{"bare link", "Go to myshop.com now", CodeLink, "myshop.com"},
		{"bare with path", "Go to myshop.de/promo now", CodeLink, "myshop.de/promo"},
		{"sentence with no space", "Hello.it works now", "", ""},
		{"email", "Write to jane.doe@example.com", CodeEmailAddress, "jane.doe@example.com"},
		{"amazon email", "Write to seller+x@marketplace.amazon.fr", CodeEmailAddress, "seller+x@marketplace.amazon.fr"},
		{"phone fr spaced", "Appelez le 06 12 34 56 78", CodePhoneNumber, "06 12 34 56 78"},
		{"phone fr dots", "Tel 06.12.34.56.78.", CodePhoneNumber, "06.12.34.56.78"},
		{"phone intl", "Call +33 6 12 34 56 78", CodePhoneNumber, "+33 6 12 34 56 78"},
		{"phone intl unbroken", "Call +4915112345678", CodePhoneNumber, "+4915112345678"},
		{"phone 00", "Call 0049 151 1234 5678", CodePhoneNumber, "0049 151 1234 5678"},
		{"phone us", "Call (555) 123-4567", CodePhoneNumber, "(555) 123-4567"},
		{"phone us dashes", "Call 555-123-4567 today", CodePhoneNumber, "555-123-4567"},
		{"phone beside order id", "Order 123-1234567-1234567 06 12 34 56 78", CodePhoneNumber, "06 12 34 56 78"},
		{"email before link", "mail me at a@b.com or https://x.io", CodeEmailAddress, "a@b.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rules.Check(tc.text)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want accepted", tc.text, err)
				}
				if got != strings.TrimSpace(tc.text) {
					t.Fatalf("Check returned %q, want the trimmed text", got)
				}
				return
			}
			var v *Violation
			if !errors.As(err, &v) {
				t.Fatalf("Check(%q) = %q, %v; want a Violation %s", tc.text, got, err, tc.code)
			}
			if v.Code != tc.code {
				t.Fatalf("Check(%q) code = %s (%s), want %s", tc.text, v.Code, v.Match, tc.code)
			}
			if tc.match != "" && v.Match != tc.match {
				t.Fatalf("Check(%q) match = %q, want %q", tc.text, v.Match, tc.match)
			}
			if got != "" {
				t.Fatalf("refused text returned %q", got)
			}
		})
	}
}

func TestRulesSettings(t *testing.T) {
	r := DefaultRules()
	r.BlockedKeywords = []string{"remboursement"}
	if _, err := r.Check("We will refund you"); err != nil {
		t.Fatalf("a screen without 'refund' refused it: %v", err)
	}
	if _, err := r.Check("Votre Remboursement est parti"); err == nil {
		t.Fatal("the tenant's keyword passed")
	}
	r.BlockedKeywords = nil
	if _, err := r.Check("police court fraud"); err != nil {
		t.Fatalf("an empty screen refused: %v", err)
	}
	r.AllowedLinkDomains = []string{"colissimo.fr"}
	if _, err := r.Check("Suivi: https://www.laposte.colissimo.fr/suivi/6A123"); err != nil {
		t.Fatalf("an allowed carrier link refused: %v", err)
	}
	if _, err := r.Check("https://amzn.to/x"); err == nil {
		t.Fatal("amzn.to passed though no longer in the allowed domains")
	}
	if _, err := r.Check("https://www.amazon.it/dp/x"); err != nil {
		t.Fatalf("Amazon's store refused: %v", err)
	}
	r.MaxChars = 5
	var v *Violation
	if _, err := r.Check("123456"); !errors.As(err, &v) || v.Code != CodeTooLong {
		t.Fatalf("MaxChars 5: %v", err)
	}
}
