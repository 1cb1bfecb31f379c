package vaultstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// An auth-method token is used until shortly before its TTL ends, then the
// store logs in again; a failed login is a transient error, retried on the
// next use.
func TestLoginRenewsBeforeExpiry(t *testing.T) {
	ctx := context.Background()
	root := testenv.Vault(t)
	client, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	client.ClearToken()
	now := time.Now()
	logins := 0
	l := &login{client: client, now: func() time.Time { return now }, do: func(ctx context.Context) (*api.Secret, error) {
		logins++ // stands for auth/aws/login: a token with a 10-minute TTL
		return root.Logical().WriteWithContext(ctx, "auth/token/create", map[string]any{"ttl": "10m", "policies": []string{"root"}})
	}}
	s := New(client, "secret", "keybuzz/ai/"+testenv.ID("app"))
	s.login = l

	if err := s.PutApp(ctx, marketplace.AppCredentials{ClientID: "c", ClientSecret: "s", ApplicationID: "a", Region: "eu"}); err != nil {
		t.Fatalf("first use: %v", err)
	}
	first := client.Token()
	if logins != 1 || first == "" {
		t.Fatalf("logins %d, token set %v", logins, first != "")
	}
	now = now.Add(8 * time.Minute)
	if _, err := s.App(ctx); err != nil || logins != 1 {
		t.Fatalf("within the TTL: logins %d, %v", logins, err)
	}
	now = now.Add(time.Minute) // the last minute of the TTL
	if _, err := s.App(ctx); err != nil || logins != 2 || client.Token() == first {
		t.Fatalf("near expiry: logins %d, new token %v, %v", logins, client.Token() != first, err)
	}
	l.do = func(context.Context) (*api.Secret, error) { return nil, errors.New("sts unreachable") }
	now = now.Add(10 * time.Minute)
	if _, err := s.Tenant(ctx, "tenant-1"); !errors.Is(err, marketplace.ErrUnavailable) {
		t.Fatalf("failed login: %v, want ErrUnavailable", err)
	}
}
