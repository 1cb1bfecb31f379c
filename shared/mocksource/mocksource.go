// Package mocksource is the poller's source when AMAZON_USE_MOCK=true: every
// poll returns the seed's three buyer messages, with deterministic external
// ids, so one poll creates 3 ExternalMessage, 3 Ticket and 3 TicketMessage
// rows and every later poll creates nothing (seed Test 3). It needs neither
// Vault nor Amazon; package poll adapts it as a Source.
package mocksource

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// Messages are the seed's three mock buyer messages for a marketplace.
func Messages(marketplaceID string) []marketplace.InboundMessage {
	base := time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
	type seed struct{ order, name, email, lang, subject, body string }
	seeds := []seed{
		{"MOCK-171-0000001-0000001", "Camille Martin", "mock-buyer-1@marketplace.amazon.fr", "fr",
			"Where is my order?", "Bonjour, ma commande n'est toujours pas arrivée. Pouvez-vous vérifier le suivi ? Merci."},
		{"MOCK-171-0000002-0000002", "Lukas Müller", "mock-buyer-2@marketplace.amazon.de", "en",
			"Damaged item", "Hello, the item arrived damaged. Could you send a replacement or refund?"},
		{"MOCK-171-0000003-0000003", "Giulia Rossi", "mock-buyer-3@marketplace.amazon.it", "en",
			"Cancellation request", "Buyer requested cancellation of order MOCK-171-0000003-0000003. Reason: Ordered by mistake"},
	}
	out := make([]marketplace.InboundMessage, len(seeds))
	for i, s := range seeds {
		raw, _ := json.Marshal(map[string]any{"orderId": s.order, "mock": true})
		out[i] = marketplace.InboundMessage{
			ExternalID:    "mock-message-" + strconv.Itoa(i+1),
			ThreadKey:     s.order,
			OrderID:       s.order,
			MarketplaceID: marketplaceID,
			BuyerName:     s.name,
			BuyerEmail:    s.email,
			Language:      s.lang,
			Subject:       s.subject,
			Body:          s.body,
			ReceivedAt:    base.Add(time.Duration(i) * time.Hour),
			Raw:           raw,
		}
	}
	return out
}
