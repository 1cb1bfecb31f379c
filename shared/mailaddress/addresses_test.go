package mailaddress_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

type addrStore struct{ got []marketplace.InboundAddress }

func (s *addrStore) EnsureInboundAddresses(_ context.Context, _ string, a []marketplace.InboundAddress) error {
	s.got = append(s.got, a...)
	return nil
}
func (s *addrStore) InboundAddresses(context.Context, string) ([]marketplace.InboundAddress, error) {
	return s.got, nil
}

func TestAddresses(t *testing.T) {
	a := mailaddress.NewAddresses(&addrStore{}, "Inbound.Example", mailaddress.WithRandom(bytes.NewReader(bytes.Repeat([]byte{0xAB}, 100))))
	addr, err := a.New("Tenant-1", "FR")
	if err != nil {
		t.Fatal(err)
	}
	local, dom, _ := strings.Cut(addr.EmailAddress, "@")
	if dom != "inbound.example" || !strings.HasPrefix(local, "amazon.tenant-1.fr.") || len(addr.Token) != 16 || addr.Country != "FR" {
		t.Errorf("address %+v", addr)
	}
	long, err := a.New(strings.Repeat("t", 128), "GB")
	if err != nil {
		t.Fatal(err)
	}
	if l, _, _ := strings.Cut(long.EmailAddress, "@"); len(l) > 64 {
		t.Errorf("local part %d chars: %s", len(l), l)
	}
	other, _ := a.New(strings.Repeat("t", 127)+"u", "GB")
	if other.EmailAddress[:50] == long.EmailAddress[:50] && other.EmailAddress == long.EmailAddress {
		t.Error("two tenants got one address")
	}
}

func TestProvisionOnePerCountry(t *testing.T) {
	st := &addrStore{}
	a := mailaddress.NewAddresses(st, "inbound.example")
	got, err := a.Provision(context.Background(), "tenant-1", []string{"A13V1IB3VIYZZH", "A1PA6795UKMFR9", "A13V1IB3VIYZZH", "bogus"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Country != "FR" || got[1].Country != "DE" || got[0].Token == got[1].Token {
		t.Errorf("provisioned %+v", got)
	}
}
