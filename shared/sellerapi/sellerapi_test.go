package sellerapi

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
)

// ErrorText keeps what is safe to record: a URL's host, not its query; an
// LWA error's code and description, not its wrapping; at most limit bytes.
func TestErrorText(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"url reduced to its host", fmt.Errorf("searchOrders: %w", &url.Error{Op: "Get", URL: "https://sellingpartnerapi-eu.amazon.com/orders?token=x", Err: errors.New("timeout")}),
			"Get sellingpartnerapi-eu.amazon.com: timeout"},
		{"lwa error", fmt.Errorf("access token: %w", &lwa.Error{Status: 400, Code: "invalid_grant", Description: "revoked"}),
			(&lwa.Error{Status: 400, Code: "invalid_grant", Description: "revoked"}).Error()},
		{"bounded", errors.New(strings.Repeat("x", 50)), strings.Repeat("x", 10)},
		{"short kept", errors.New("rate budget empty"), "rate budget empty"},
	}
	for _, c := range cases {
		if got := ErrorText(c.err, 10_000); c.name != "bounded" && got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if got := ErrorText(c.err, 10); c.name == "bounded" && got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
