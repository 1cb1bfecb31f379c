// Package wiremail builds inboundmail's flow (the one builder of package
// wire that links the MIME parser, so it lives apart).
package wiremail

import (
	"log/slog"

	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/inboundmail"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/wire"
)

// InboundMail is inboundmail's flow: mails read from objects (the mail
// bucket), for recipients on INBOUND_MAIL_DOMAIN, stored in store; a ticket
// about an order gets the order's context through the seller gateway,
// within its getOrder budget (not with AMAZON_USE_MOCK: secrets is then
// unused). extra adds options (the replies flow that hears Amazon's
// notices about sent replies: inboundmail.WithRefusedReplies).
func InboundMail(cfg config.Config, store *postgres.Store, secrets *credcache.Cache, objects inboundmail.Objects, log *slog.Logger, extra ...inboundmail.FlowOption) *inboundmail.Flow {
	opts := []inboundmail.FlowOption{inboundmail.WithBucket(cfg.InboundMailBucket), inboundmail.WithMaxBytes(cfg.InboundMailMaxBytes), inboundmail.WithLogger(log)}
	if !cfg.UseMock {
		gw, _ := wire.Seller(cfg, store, secrets, log)
		opts = append(opts, inboundmail.WithOrderContext(inboundmail.NewOrderContexts(store, gw, inboundmail.WithLogger(log))))
	}
	return inboundmail.New(store, objects, cfg.InboundMailDomain, append(opts, extra...)...)
}
