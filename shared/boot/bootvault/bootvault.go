// Package bootvault opens Vault for the functions that read credentials.
// It is apart from package boot so that the functions that never read
// Vault (pollfanout, status, the reply functions) do not link Vault's
// client: its packages' initialisation was the costliest of their cold
// start's package init (about 0.8 ms of 3 ms).
package bootvault

import (
	"context"

	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// Open opens the Vault credential store (logging in with IAM auth when so
// configured), exiting the process on failure as boot's openers do.
func Open(ctx context.Context, e *boot.Env) *vaultstore.Store {
	s, err := vaultstore.Open(ctx, e.Config)
	e.Must("vault", err)
	return s
}
