package connect

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// StatusStore is the part of the database the status route needs.
type StatusStore interface {
	ConnectionByTenant(ctx context.Context, tenantID string) (marketplace.Connection, bool, error)
}

// PushStatuses reads a connection's push state (postgres.Store).
type PushStatuses interface {
	PushStatus(ctx context.Context, connectionID string) (marketplace.PushStatus, error)
}

// StatusConfig tunes a Status; zero fields take the defaults (nil
// collaborators: that part of the answer is left out).
type StatusConfig struct {
	PushStatus       PushStatuses     // push's liveness
	InboundAddresses InboundAddresses // the tenant's inbound addresses (provisioned when missing)
	// SenderApprovals says which inbound addresses Amazon refused as reply
	// senders (not approved under Messaging Permissions); nil: not asked.
	SenderApprovals SenderApprovals
	Now             func() time.Time // default time.Now
	Log             *slog.Logger     // default slog.Default()
}

// SenderApprovals lists a tenant's sending addresses Amazon refused as not
// approved, with Amazon's reason (postgres.Store).
type SenderApprovals interface {
	SendersNeedingApproval(ctx context.Context, tenantID string) (map[string]string, error)
}

// Status is the status route's flow: where the tenant's connection stands.
type Status struct {
	store      StatusStore
	pushStatus PushStatuses
	inbound    InboundAddresses
	approvals  SenderApprovals
	now        func() time.Time
	log        *slog.Logger
}

// NewStatus returns the status flow on store.
func NewStatus(store StatusStore, cfg StatusConfig) *Status {
	return &Status{store: store, pushStatus: cfg.PushStatus, inbound: cfg.InboundAddresses, approvals: cfg.SenderApprovals, now: nowOr(cfg.Now), log: logOr(cfg.Log)}
}

// StatusResult is what the status route answers.
type StatusResult struct {
	Connected  bool
	Connection *marketplace.Connection // nil when the tenant never started
	// ReauthReason is why the seller must consent again (renewal_due while
	// still CONNECTED within 30 days of expiry); empty otherwise.
	ReauthReason marketplace.ReauthReason
	// AuthorizationExpiresAt is the consent's end (consent + 365 days).
	AuthorizationExpiresAt *time.Time
	// Push is the connection's ORDER_CHANGE subscription (StatusConfig.PushStatus);
	// nil when unknown.
	Push *marketplace.PushStatus
	// InboundAddresses are the tenant's inbound mail addresses, one per
	// marketplace country; InboundEmail is the primary marketplace's.
	InboundAddresses []marketplace.InboundAddress
	InboundEmail     string
	// ReplyApprovalNeeded maps an inbound address (lower case) Amazon
	// refused as a reply sender to Amazon's reason: the seller must add it
	// under Seller Central > Settings > Messaging Permissions.
	ReplyApprovalNeeded map[string]string
}

// Status returns the tenant's connection state; no connection is not an error.
func (s *Status) Run(ctx context.Context, tenantID string) (StatusResult, error) {
	c, ok, err := s.store.ConnectionByTenant(ctx, tenantID)
	if err != nil {
		return StatusResult{}, fmt.Errorf("status: %w", err)
	}
	if !ok {
		return StatusResult{}, nil
	}
	st := StatusResult{Connected: c.Status == marketplace.StatusConnected, Connection: &c,
		ReauthReason: marketplace.EffectiveReauthReason(c, s.now())}
	if c.AuthorizedAt != nil && c.Status != marketplace.StatusDisabled {
		exp := marketplace.AuthorizationExpiresAt(*c.AuthorizedAt)
		st.AuthorizationExpiresAt = &exp
	}
	if s.pushStatus != nil { // push's own fields; the status answers without them rather than fail
		if ps, err := s.pushStatus.PushStatus(ctx, c.ID); err == nil {
			st.Push = &ps
		} else {
			s.log.WarnContext(ctx, "push status unavailable", "error", err.Error())
		}
	}
	if s.inbound != nil {
		addrs, err := s.inbound.List(ctx, tenantID)
		if err != nil {
			return StatusResult{}, fmt.Errorf("status: %w", err)
		}
		if len(addrs) == 0 {
			addrs = provisionInbound(ctx, s.inbound, s.log, c)
		}
		st.InboundAddresses = addrs
		primary := strings.Split(c.MarketplaceID, ",")[0]
		for _, a := range addrs {
			if m, err := amazon.LookupMarketplace(primary); err == nil && strings.EqualFold(m.CountryCode, a.Country) {
				st.InboundEmail = a.EmailAddress
			}
		}
		if st.InboundEmail == "" && len(addrs) > 0 {
			st.InboundEmail = addrs[0].EmailAddress
		}
	}
	if s.approvals != nil { // the answer comes without it rather than fail
		if need, err := s.approvals.SendersNeedingApproval(ctx, tenantID); err == nil {
			st.ReplyApprovalNeeded = need
		} else {
			s.log.WarnContext(ctx, "sender approvals unavailable", "error", err.Error())
		}
	}
	return st, nil
}
