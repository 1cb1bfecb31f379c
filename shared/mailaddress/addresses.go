// Package mailaddress makes and provisions tenants' inbound mail addresses
// (one per tenant, marketplace and country) for the connect flow and the
// status route. It is apart from shared/inboundmail, which reads the mails
// sent to them, so that the functions that only provision or list
// addresses do not carry the MIME parser and its charsets.
package mailaddress

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// tokenBytes is the address token's randomness: 80 bits, 16 base32
// characters (KeyBuzz's own 6-character Math.random token is guessable).
const tokenBytes = 10

// maxLocalPart is RFC 5321's limit on an address's local part.
const maxLocalPart = 64

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// AddressStore is what provisioning needs of the database.
type AddressStore interface {
	// EnsureInboundAddresses inserts the addresses a tenant does not have yet
	// (one per tenant, marketplace and country) and leaves existing ones
	// as they are: an address is stable until rotated.
	EnsureInboundAddresses(ctx context.Context, tenantID string, addrs []marketplace.InboundAddress) error
	InboundAddresses(ctx context.Context, tenantID string) ([]marketplace.InboundAddress, error)
}

// Addresses makes and provisions tenants' inbound addresses on a domain.
type Addresses struct {
	store  AddressStore
	domain string
	rand   io.Reader
}

// Option configures Addresses.
type Option func(*Addresses)

// WithRandom sets the randomness of the addresses' tokens (default
// crypto/rand; nil keeps it).
func WithRandom(r io.Reader) Option {
	return func(a *Addresses) {
		if r != nil {
			a.rand = r
		}
	}
}

// NewAddresses provisions addresses on domain (INBOUND_MAIL_DOMAIN)
// (option: WithRandom).
func NewAddresses(store AddressStore, domain string, opts ...Option) *Addresses {
	a := &Addresses{store: store, domain: strings.ToLower(strings.TrimSpace(domain)), rand: rand.Reader}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Domain is the inbound domain.
func (a *Addresses) Domain() string { return a.domain }

// New returns a fresh address for a tenant's marketplace country:
// amazon.<tenant>.<country>.<token>@<domain>, the local part within 64
// characters (a long tenant id is shortened to a prefix and a hash; the
// address is looked up whole, never parsed back).
func (a *Addresses) New(tenantID, country string) (marketplace.InboundAddress, error) {
	b := make([]byte, tokenBytes)
	if _, err := io.ReadFull(a.rand, b); err != nil {
		return marketplace.InboundAddress{}, fmt.Errorf("address token: %w", err)
	}
	token := tokenEncoding.EncodeToString(b)
	cc := strings.ToLower(country)
	tenant := strings.ToLower(tenantID)
	if room := maxLocalPart - len("amazon...") - len(cc) - len(token); len(tenant) > room {
		h := sha256.Sum256([]byte(tenantID))
		tenant = tenant[:room-9] + "-" + hex.EncodeToString(h[:4])
	}
	return marketplace.InboundAddress{
		TenantID:     tenantID,
		Country:      strings.ToUpper(country),
		Token:        token,
		EmailAddress: fmt.Sprintf("amazon.%s.%s.%s@%s", tenant, cc, token, a.domain),
	}, nil
}

// Provision gives a connected tenant one address per marketplace it sells
// on (marketplace ids; unknown ids are skipped) and returns all its
// addresses. Called again, it adds only what is missing. The Connect flow
// calls it when a connection becomes CONNECTED.
func (a *Addresses) Provision(ctx context.Context, tenantID string, marketplaceIDs []string) ([]marketplace.InboundAddress, error) {
	if a.domain == "" {
		return nil, nil
	}
	seen := map[string]bool{}
	var addrs []marketplace.InboundAddress
	for _, id := range marketplaceIDs {
		mp, err := amazon.LookupMarketplace(id)
		if err != nil || seen[mp.CountryCode] {
			continue
		}
		seen[mp.CountryCode] = true
		addr, err := a.New(tenantID, mp.CountryCode)
		if err != nil {
			return nil, err
		}
		addr.MarketplaceID = mp.ID
		addrs = append(addrs, addr)
	}
	if len(addrs) > 0 {
		if err := a.store.EnsureInboundAddresses(ctx, tenantID, addrs); err != nil {
			return nil, fmt.Errorf("provision inbound addresses of %s: %w", tenantID, err)
		}
	}
	return a.store.InboundAddresses(ctx, tenantID)
}

// List returns a tenant's addresses.
func (a *Addresses) List(ctx context.Context, tenantID string) ([]marketplace.InboundAddress, error) {
	return a.store.InboundAddresses(ctx, tenantID)
}
