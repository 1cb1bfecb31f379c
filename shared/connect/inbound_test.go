package connect

import (
	"context"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

type statusStore struct {
	memStore
	conn marketplace.Connection
}

func (s *statusStore) ConnectionByTenant(context.Context, string) (marketplace.Connection, bool, error) {
	return s.conn, true, nil
}

type memInbound struct{ addrs []marketplace.InboundAddress }

func (m *memInbound) Provision(_ context.Context, tenantID string, ids []string) ([]marketplace.InboundAddress, error) {
	for _, id := range ids {
		cc := map[string]string{"A13V1IB3VIYZZH": "FR", "A1PA6795UKMFR9": "DE"}[id]
		m.addrs = append(m.addrs, marketplace.InboundAddress{TenantID: tenantID, Country: cc, EmailAddress: "amazon." + tenantID + "." + strings.ToLower(cc) + ".t@in.example"})
	}
	return m.addrs, nil
}

func (m *memInbound) List(context.Context, string) ([]marketplace.InboundAddress, error) {
	return m.addrs, nil
}

// Status gives a CONNECTED tenant its addresses (provisioning the missing
// ones) and names the primary marketplace's as InboundEmail.
func TestStatusInboundAddresses(t *testing.T) {
	in := &memInbound{}
	st := &statusStore{conn: marketplace.Connection{ID: "c1", TenantID: "t1", Status: marketplace.StatusConnected,
		MarketplaceID: "A1PA6795UKMFR9,A13V1IB3VIYZZH"}}
	s := NewStatus(st, StatusConfig{InboundAddresses: in})
	got, err := s.Run(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.InboundAddresses) != 2 || got.InboundEmail != "amazon.t1.de.t@in.example" {
		t.Fatalf("status %+v", got)
	}
	// Not connected: nothing provisioned.
	st.conn.Status = marketplace.StatusDisabled
	in.addrs = nil
	if got, _ := s.Run(context.Background(), "t1"); len(got.InboundAddresses) != 0 {
		t.Errorf("a disabled connection got addresses: %+v", got.InboundAddresses)
	}
}
