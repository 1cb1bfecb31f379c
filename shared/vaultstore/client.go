package vaultstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/hashicorp/vault/api"

	"github.com/keybuzz/keybuzz-amazon/shared/awsenv"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// Open returns the Store cfg describes: a Vault client authenticated with
// VAULT_TOKEN, or with Vault's AWS IAM auth method and the function's role
// (VAULT_AUTH_METHOD=aws). An IAM login is made at once, so a
// misconfiguration fails the cold start, and again whenever the token nears
// the end of its TTL: Lambda freezes a container between invocations, so a
// background renewer cannot be relied on.
func Open(ctx context.Context, cfg config.Config) (*Store, error) {
	vc := api.DefaultConfig()
	vc.Address = cfg.VaultAddr
	vc.Timeout = 5 * time.Second
	vc.MaxRetries = 1
	client, err := api.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	s := New(client, cfg.VaultKVMount, cfg.AppVaultPath(), WithAppPaths(map[marketplace.AppSource]string{
		marketplace.AppExternalTest: cfg.AppVaultPathFor(marketplace.AppExternalTest),
		marketplace.AppKeyBuzz:      cfg.AppVaultPathFor(marketplace.AppKeyBuzz),
	}), WithTenantPath(cfg.TenantVaultPath()))
	if cfg.VaultAuthMethod != "aws" {
		client.SetToken(cfg.VaultToken.Reveal())
		return s, nil
	}
	anonymous, err := client.Clone() // logs in without the (maybe expired) token
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	s.login = &login{client: client, now: time.Now, do: func(ctx context.Context) (*api.Secret, error) {
		return iamLogin(ctx, anonymous, cfg.VaultAWSRole)
	}}
	if err := s.login.ensure(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// login keeps the client's token from an auth method valid: it logs in
// again when the token is within a fifth of its TTL (at most a minute) of
// expiring.
type login struct {
	client *api.Client
	do     func(ctx context.Context) (*api.Secret, error)
	now    func() time.Time

	mu      sync.Mutex
	expires time.Time
}

// ensure logs in when there is no valid token; a nil login does nothing.
func (l *login) ensure(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.expires.IsZero() && l.now().Before(l.expires) {
		return nil
	}
	sec, err := l.do(ctx)
	if err == nil && (sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "") {
		err = errors.New("vault returned no token")
	}
	if err != nil {
		return fmt.Errorf("vault login: %w", classify(err, marketplace.ErrUnavailable))
	}
	l.client.SetToken(sec.Auth.ClientToken)
	ttl := time.Duration(sec.Auth.LeaseDuration) * time.Second
	if ttl <= 0 {
		ttl = 100 * 365 * 24 * time.Hour // a token without TTL
	}
	l.expires = l.now().Add(ttl - min(ttl/5, time.Minute))
	return nil
}

// iamLogin signs an STS GetCallerIdentity request with the function's AWS
// credentials and hands it to Vault's auth/aws/login (auth_type=iam).
// Written here rather than with github.com/hashicorp/vault/api/auth/aws,
// which pulls in the end-of-life aws-sdk-go v1 and would double every
// bootstrap's size; aws-sdk-go-v2's signer does the cryptography.
func iamLogin(ctx context.Context, client *api.Client, role string) (*api.Secret, error) {
	creds, err := awsenv.Credentials(os.Getenv)
	if err != nil {
		return nil, err
	}
	body := []byte("Action=GetCallerIdentity&Version=2011-06-15")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://sts.amazonaws.com/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256Hex(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, sum, "sts", "us-east-1", time.Now()); err != nil {
		return nil, fmt.Errorf("sign sts request: %w", err)
	}
	headers, err := json.Marshal(req.Header)
	if err != nil {
		return nil, err
	}
	sec, err := client.Logical().WriteWithContext(ctx, "auth/aws/login", map[string]any{
		"role":                    role,
		"iam_http_request_method": http.MethodPost,
		"iam_request_url":         base64.StdEncoding.EncodeToString([]byte(req.URL.String())),
		"iam_request_body":        base64.StdEncoding.EncodeToString(body),
		"iam_request_headers":     base64.StdEncoding.EncodeToString(headers),
	})
	if err != nil {
		return nil, err
	}
	return sec, nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
