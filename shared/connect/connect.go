// Package connect is the "Connect Amazon" flow, one type per route: Start
// builds the consent URL with a single-use state bound to the tenant and
// the browser, Callback turns Amazon's code into a refresh token kept in
// Vault and a CONNECTED connection, Login records an Appstore-initiated
// authorization, Status tells the tenant where it stands, Disconnect ends
// the connection. Each constructor takes the collaborators its route
// cannot do without; its Config holds what is optional.
package connect

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

// StateTTL is how long a consent may take.
const StateTTL = 15 * time.Minute

// maxCodeLen bounds an spapi_oauth_code (Amazon's are about 20 chars).
const maxCodeLen = 1024

// stateBytes of randomness: 256 bits, base64url without padding = 43 chars.
const stateBytes = 32

// Apps reads an application's credentials (credcache.Cache).
type Apps interface {
	AppFor(ctx context.Context, source marketplace.AppSource) (marketplace.AppCredentials, error)
}

// Exchanger trades an authorization code for tokens (lwa.Client).
type Exchanger interface {
	Exchange(ctx context.Context, app lwa.App, code secret.Value) (lwa.Token, error)
}

// Participations lists the marketplaces a seller takes part in (Sellers API
// getMarketplaceParticipations with the code exchange's access token;
// sellerapi.Gateway). region is the seller's region code.
type Participations interface {
	MarketplaceParticipations(ctx context.Context, region string, access secret.Value) ([]spapi.Participation, error)
}

// Unsubscriber ends what a connection subscribed to at Amazon (push
// notifications). Disconnect and a reconnect with another seller call it
// while the connection's secret is still in Vault; its error is logged and
// the disconnect goes on (a seller must always be able to leave).
type Unsubscriber interface {
	Unsubscribe(ctx context.Context, c marketplace.Connection) error
}

// Accounts reads the seller's account (Sellers API getAccount with the code
// exchange's access token, within the connection's getAccount budget;
// sellerapi.Gateway): its business name becomes the connection's displayName.
type Accounts interface {
	Account(ctx context.Context, connectionID, region string, access secret.Value) (spapi.Account, error)
}

// InboundAddresses gives a connected tenant its inbound mail addresses, one
// per marketplace country (mailaddress.Addresses).
type InboundAddresses interface {
	Provision(ctx context.Context, tenantID string, marketplaceIDs []string) ([]marketplace.InboundAddress, error)
	List(ctx context.Context, tenantID string) ([]marketplace.InboundAddress, error)
}

// OnConnected is told of every connection that has just become CONNECTED
// (push.Subscriber.OnConnected subscribes it to ORDER_CHANGE). It must not
// fail the callback: it handles and logs its own errors.
type OnConnected func(ctx context.Context, conn marketplace.Connection)

// provisionInbound gives a CONNECTED connection's tenant one inbound address
// per marketplace; a failure is logged (Status provisions again).
func provisionInbound(ctx context.Context, inbound InboundAddresses, log *slog.Logger, c marketplace.Connection) []marketplace.InboundAddress {
	if inbound == nil || c.Status != marketplace.StatusConnected {
		return nil
	}
	addrs, err := inbound.Provision(ctx, c.TenantID, strings.Split(c.MarketplaceID, ","))
	if err != nil {
		log.WarnContext(ctx, "inbound addresses not provisioned", "error", err.Error())
	}
	return addrs
}

func unsubscribe(ctx context.Context, u Unsubscriber, log *slog.Logger, c marketplace.Connection) {
	if u == nil {
		return
	}
	if err := u.Unsubscribe(ctx, c); err != nil {
		log.WarnContext(ctx, "end Amazon subscriptions", "connection_id", c.ID, "error", err.Error())
	}
}

// randomValue is 256 bits of randomness, base64url without padding (43 chars).
func randomValue(r io.Reader) (secret.Value, error) {
	raw := make([]byte, stateBytes)
	if _, err := io.ReadFull(r, raw); err != nil {
		return "", err
	}
	return secret.Value(base64.RawURLEncoding.EncodeToString(raw)), nil
}

// hashState is what the database keeps of a state: SHA-256, hex.
func hashState(state secret.Value) string {
	sum := sha256.Sum256([]byte(state.Reveal()))
	return hex.EncodeToString(sum[:])
}

func appSourceOr(a marketplace.AppSource) marketplace.AppSource {
	if a == "" {
		return marketplace.AppExternalTest
	}
	return a
}

func nowOr(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

func logOr(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
