// Command token prints a Bearer JWT that the local run accepts:
//
//	go run ./cmd/token -tenant <id> [-ttl 1h]
//
// It signs with AUTH_JWT_HS256_SECRET for AUTH_JWT_ISSUER and
// AUTH_JWT_AUDIENCE, naming the tenant in AUTH_TENANT_CLAIM (`make token`
// loads .local/dev.env first); unset variables take the local defaults.
// Only the token goes to stdout, so `$(make token TENANT=t1)` works in curl.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// localDefaults are the values `make dev` writes to .local/dev.env.
var localDefaults = map[string]string{
	"AUTH_JWT_HS256_SECRET": "local-dev-jwt-secret-not-for-production",
	"AUTH_JWT_ISSUER":       "keybuzz-local",
	"AUTH_JWT_AUDIENCE":     "keybuzz-amazon",
	"AUTH_TENANT_CLAIM":     "tenantId",
}

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr, time.Now()); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "token:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer, now time.Time) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "tenant id to put in the token (required)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *tenant == "" {
		return errors.New("-tenant is required")
	}
	env := func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return localDefaults[k]
	}
	if getenv("AUTH_JWT_HS256_SECRET") == "" && getenv("AUTH_JWKS_URL") != "" {
		return errors.New("AUTH_JWKS_URL is set without AUTH_JWT_HS256_SECRET: tokens come from the identity provider, not from this command")
	}
	tok, err := auth.Issue(secret.Value(env("AUTH_JWT_HS256_SECRET")), env("AUTH_JWT_ISSUER"), env("AUTH_JWT_AUDIENCE"),
		env("AUTH_TENANT_CLAIM"), *tenant, *ttl, now)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
