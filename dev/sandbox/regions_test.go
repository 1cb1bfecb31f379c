package sandbox_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

// Sellers of the three regions: GET /_sandbox/sellers says each one's; an
// SP-API call on another region's host is answered 403 as Amazon answers
// it, on its own region's host or the sandbox's address normally; consent
// on a Seller Central host takes only that region's sellers.
func TestRegions(t *testing.T) {
	e := start(t)
	a := e.get(t, "/_sandbox/sellers", "")
	var got struct {
		Sellers []sandbox.Seller `json:"sellers"`
	}
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatal(err)
	}
	regions := map[string]string{}
	for _, s := range got.Sellers {
		regions[s.ID] = s.Region
	}
	na, fe := sandbox.RegionSellerID("na", 1), sandbox.RegionSellerID("fe", 1)
	if regions[seller1()] != "eu" || regions[na] != "na" || regions[fe] != "fe" {
		t.Fatalf("regions %v", regions)
	}
	hc := &http.Client{Transport: sandbox.HostTransport(e.base, nil), CheckRedirect: noRedirect.CheckRedirect}
	call := func(host, access string) int {
		req, _ := http.NewRequest("GET", "https://"+host+"/sellers/v1/marketplaceParticipations", nil)
		req.Header.Set("x-amz-access-token", access)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct{ seller, own, other string }{
		{seller1(), "sellingpartnerapi-eu.amazon.com", "sellingpartnerapi-na.amazon.com"},
		{na, "sellingpartnerapi-na.amazon.com", "sellingpartnerapi-fe.amazon.com"},
		{fe, "sandbox.sellingpartnerapi-fe.amazon.com", "sellingpartnerapi-eu.amazon.com"},
	} {
		_, access := e.authorize(t, c.seller)
		if st := call(c.own, access); st != http.StatusOK {
			t.Errorf("%s on its region's host %s: %d", c.seller, c.own, st)
		}
		if st := call(c.other, access); st != http.StatusForbidden {
			t.Errorf("%s on %s: %d, want 403", c.seller, c.other, st)
		}
		if a := e.get(t, "/sellers/v1/marketplaceParticipations", access); a.status != http.StatusOK {
			t.Errorf("%s on the sandbox's address: %d", c.seller, a.status)
		}
	}
	consent := func(host, seller string) int {
		q := url.Values{"application_id": {e.cfg.ApplicationID}, "state": {"s"}, "version": {"beta"}, "sandbox_auto_approve": {"true"}, "sandbox_seller": {seller}}
		resp, err := hc.Get("https://" + host + "/apps/authorize/consent?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := consent("sellercentral.amazon.co.jp", fe); st != http.StatusFound {
		t.Errorf("FE seller on sellercentral.amazon.co.jp: %d", st)
	}
	if st := consent("sellercentral.amazon.com", fe); st != http.StatusBadRequest {
		t.Errorf("FE seller on sellercentral.amazon.com: %d, want the error page", st)
	}
	if st := consent("sellercentral-europe.amazon.com", seller1()); st != http.StatusFound {
		t.Errorf("EU seller on sellercentral-europe: %d", st)
	}
	if !strings.HasPrefix(na, "A") || len(na) != 14 {
		t.Errorf("seller id %q", na)
	}
}
