package devstack

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"time"
)

// Service names accepted by StopService and StartService.
const (
	ServicePostgres = "postgres"
	ServiceVault    = "vault"
)

// StopService stops one service the stack started (postgres or vault),
// leaving the others running: a restart test's "the server went away".
// PostgreSQL keeps its data directory; the Vault dev server is in memory, so
// its secrets are gone until written again (StartService re-seeds the app).
func (s *Stack) StopService(name string) error {
	if name != ServicePostgres && name != ServiceVault {
		return fmt.Errorf("stop %q: only %s and %s can be restarted", name, ServicePostgres, ServiceVault)
	}
	s.mu.Lock()
	var p *process
	kept := s.procs[:0:0]
	for _, q := range s.procs {
		if q.name == name && p == nil {
			p = q
			continue
		}
		kept = append(kept, q)
	}
	s.procs = kept
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("stop %s: the stack did not start it", name)
	}
	return p.stop(10 * time.Second)
}

// StartService starts a service stopped by StopService again on the same
// port, with the same data directory (postgres) or root token (vault, whose
// app credentials are seeded again). It returns once the service answers.
func (s *Stack) StartService(ctx context.Context, name string) error {
	switch name {
	case ServicePostgres:
		port, err := portOf(s.Get("DATABASE_URL"))
		if err != nil {
			return err
		}
		_, err = s.startPostgres(ctx, filepath.Join(s.stateDir, "pg"), port)
		return err
	case ServiceVault:
		addr := s.Get("VAULT_ADDR")
		port, err := portOf(addr)
		if err != nil {
			return err
		}
		if _, err := s.startVault(ctx, port, s.profile.VaultToken); err != nil {
			return err
		}
		return seedVault(ctx, addr, s.profile.VaultToken, SandboxApp)
	}
	return fmt.Errorf("start %q: only %s and %s can be restarted", name, ServicePostgres, ServiceVault)
}

// RestartService is StopService then StartService.
func (s *Stack) RestartService(ctx context.Context, name string) error {
	if err := s.StopService(name); err != nil {
		return err
	}
	return s.StartService(ctx, name)
}

func portOf(rawURL string) (int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, fmt.Errorf("parse %q: %w", rawURL, err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return 0, fmt.Errorf("no port in the service address: %w", err)
	}
	return port, nil
}
