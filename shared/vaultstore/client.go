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
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/hashicorp/vault/api"

	"github.com/keybuzz/keybuzz-amazon/shared/config"
)

// NewClient returns a Vault client authenticated as cfg says: VAULT_TOKEN, or
// Vault's AWS IAM auth method with the Lambda's role (VAULT_AUTH_METHOD=aws).
func NewClient(ctx context.Context, cfg config.Config) (*api.Client, error) {
	vc := api.DefaultConfig()
	vc.Address = cfg.VaultAddr
	vc.Timeout = 5 * time.Second
	vc.MaxRetries = 1
	client, err := api.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	switch cfg.VaultAuthMethod {
	case "aws":
		token, err := iamLogin(ctx, client, cfg.VaultAWSRole)
		if err != nil {
			return nil, fmt.Errorf("vault aws login: %w", err)
		}
		client.SetToken(token)
	default:
		client.SetToken(cfg.VaultToken.Reveal())
	}
	return client, nil
}

// iamLogin signs an STS GetCallerIdentity request with the function's AWS
// credentials and hands it to Vault's auth/aws/login (auth_type=iam).
// Written here rather than with github.com/hashicorp/vault/api/auth/aws,
// which pulls in the end-of-life aws-sdk-go v1 and would double every
// bootstrap's size; aws-sdk-go-v2's signer does the cryptography.
func iamLogin(ctx context.Context, client *api.Client, role string) (string, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return "", fmt.Errorf("aws config: %w", err)
	}
	creds, err := awsCfg.Credentials.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("aws credentials: %w", err)
	}
	body := []byte("Action=GetCallerIdentity&Version=2011-06-15")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://sts.amazonaws.com/", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256Hex(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, sum, "sts", "us-east-1", time.Now()); err != nil {
		return "", fmt.Errorf("sign sts request: %w", err)
	}
	headers, err := json.Marshal(req.Header)
	if err != nil {
		return "", err
	}
	sec, err := client.Logical().WriteWithContext(ctx, "auth/aws/login", map[string]any{
		"role":                    role,
		"iam_http_request_method": http.MethodPost,
		"iam_request_url":         base64.StdEncoding.EncodeToString([]byte(req.URL.String())),
		"iam_request_body":        base64.StdEncoding.EncodeToString(body),
		"iam_request_headers":     base64.StdEncoding.EncodeToString(headers),
	})
	if err != nil {
		return "", err
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return "", errors.New("vault returned no token")
	}
	return sec.Auth.ClientToken, nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
