package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
)

// keybuzzModels are the models KeyBuzz's client reads
// (tools/prisma/keybuzz-client.mjs read) and the tables that hold them.
var keybuzzModels = map[string]string{
	"tenant":                     "Tenant",
	"marketplaceConnection":      "MarketplaceConnection",
	"marketplaceSyncState":       "MarketplaceSyncState",
	"externalMessage":            "ExternalMessage",
	"ticket":                     "Ticket",
	"ticketMessage":              "TicketMessage",
	"ticketEvent":                "TicketEvent",
	"oAuthState":                 "OAuthState",
	"marketplaceOutboundMessage": "MarketplaceOutboundMessage",
	"inboundConnection":          "inbound_connections",
	"inboundAddress":             "inbound_addresses",
}

// keybuzzRead has KeyBuzz's own Prisma client (generated from the repo's
// transcription of its schema) read every row of every shared model the
// soak left, and compares what it read with the tables' row counts: a row
// Prisma cannot read (an enum label or a type its schema does not know)
// fails the whole read, so every row counts as unreadable then.
func (w *world) keybuzzRead(ctx context.Context, v *Invariants) error {
	total := 0
	tables := map[string]int{}
	for model, table := range keybuzzModels {
		var n int
		if err := w.check.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM public.%q`, table)).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", table, err)
		}
		tables[model] = n
		total += n
	}
	repo, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	if err := devstack.GenerateKeybuzzClient(ctx, repo); err != nil {
		return fmt.Errorf("generate KeyBuzz's client: %w", err)
	}
	out, err := devstack.KeybuzzClient(ctx, repo, w.dbURL, "read", nil)
	if err != nil {
		v.KeybuzzUnreadable = total
		v.problem("KeyBuzz's Prisma client could not read the rows the soak left: %v", err)
		return nil
	}
	var r struct{ Counts map[string]int }
	if err := json.Unmarshal(out, &r); err != nil {
		return fmt.Errorf("KeyBuzz's client answered %q: %w", out, err)
	}
	for model, n := range tables {
		v.KeybuzzRowsRead += r.Counts[model]
		if r.Counts[model] != n {
			v.KeybuzzUnreadable += max(n-r.Counts[model], 1)
			v.problem("KeyBuzz's client read %d rows of %s, the table has %d", r.Counts[model], model, n)
		}
	}
	return nil
}
