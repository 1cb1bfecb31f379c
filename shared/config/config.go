// Package config reads the connector's environment into one typed struct,
// validated at start. Each function asks only for what it needs (Require*).
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// Config is the whole environment of the connector (README.md, "Configuration").
// DefaultPollFallbackSeconds is POLL_FALLBACK_INTERVAL_SECONDS when unset
// (template.yaml's PollFallbackIntervalSeconds has the same default): 30
// minutes between two polls of a connection push serves. A subscribed
// connection then costs 48 searchOrders calls a day against about 500 when
// polled every minute (the searchOrders budget allows about 500 a day), and
// an event whose notification Amazon never delivers is stored at most 30
// minutes (plus its poll) after it happened; docs/push.md.
const DefaultPollFallbackSeconds = 1800

type Config struct {
	DatabaseURL secret.Value // may embed a password

	VaultAddr       string
	VaultToken      secret.Value
	VaultAuthMethod string // "token" or "aws"
	VaultAWSRole    string
	VaultKVMount    string
	// VaultLayout says where the credentials live (AMAZON_VAULT_LAYOUT):
	// LayoutSeed (the default) or LayoutKeyBuzz (KeyBuzz's newer backend).
	VaultLayout string

	AppSource marketplace.AppSource // marketplace.AppExternalTest or marketplace.AppKeyBuzz
	UseMock   bool

	PollInterval time.Duration
	PollLookback time.Duration
	PollQueueURL string
	// PollFallbackInterval is the poll period of a connection push serves
	// (POLL_FALLBACK_INTERVAL_SECONDS, DefaultPollFallbackSeconds): the
	// longest an event whose notification is lost waits for its poll
	// (docs/push.md).
	PollFallbackInterval time.Duration
	// NotificationsQueueARN is the SQS queue Amazon delivers ORDER_CHANGE
	// notifications to (NOTIFICATIONS_QUEUE_ARN); "" turns push off: every
	// connection is polled at PollInterval.
	NotificationsQueueARN string

	JWTIssuer      string
	JWTAudience    string
	JWKSURL        string
	JWTHS256Secret secret.Value
	TenantClaim    string

	FrontendReturnURL string
	// FrontendReturnHosts are the hosts start's return_url may name
	// (FRONTEND_RETURN_HOSTS, comma-separated, plus FRONTEND_RETURN_URL's).
	FrontendReturnHosts []string
	// FrontendLoginURL is where a seller arriving from the Appstore signs in
	// (default FRONTEND_RETURN_URL).
	FrontendLoginURL string

	LWATokenURL      string
	SPAPIEndpoint    string // empty: by region
	SellerCentralURL string // empty: by marketplace
	LogLevel         string

	// The relay-mail intake (docs/inbound-mail.md).
	InboundMailDomain   string // INBOUND_MAIL_DOMAIN: domain of the tenants' inbound addresses
	InboundMailMaxBytes int64  // INBOUND_MAIL_MAX_BYTES: larger mails are TOO_LARGE (25 MiB)
	InboundMailBucket   string // INBOUND_MAIL_BUCKET: the receipt rule's bucket, the only one mails are read from
	InboundS3PathStyle  bool   // INBOUND_S3_PATH_STYLE: path-style S3 URLs (the local emulator)

	// Replies to buyers (docs/replies.md).
	ReplyQueueURL       string // REPLY_QUEUE_URL: the outbound queue send-reply fills
	SESConfigurationSet string // SES_CONFIGURATION_SET: its event destination tells each reply's fate
	// SESMaxSendRate is SES's sending rate per second for the account and
	// region (SES_MAX_SEND_RATE, default 1: a sandbox account's).
	SESMaxSendRate float64
	// ReplyBlockedKeywords is KeyBuzz's keyword screen (REPLY_BLOCKED_KEYWORDS,
	// comma-separated; "none" screens nothing; default KeyBuzz's list).
	ReplyBlockedKeywords []string
}

// Load reads the environment through getenv (os.Getenv in production).
func Load(getenv func(string) string) (Config, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		DatabaseURL:           secret.Value(get("DATABASE_URL", "")),
		VaultAddr:             get("VAULT_ADDR", ""),
		VaultToken:            secret.Value(get("VAULT_TOKEN", "")),
		VaultAuthMethod:       get("VAULT_AUTH_METHOD", "token"),
		VaultAWSRole:          get("VAULT_AWS_ROLE", ""),
		VaultKVMount:          get("VAULT_KV_MOUNT", "secret"),
		VaultLayout:           get("AMAZON_VAULT_LAYOUT", LayoutSeed),
		AppSource:             marketplace.AppSource(get("AMAZON_SPAPI_APP_SOURCE", string(marketplace.AppExternalTest))),
		PollQueueURL:          get("POLL_QUEUE_URL", ""),
		NotificationsQueueARN: get("NOTIFICATIONS_QUEUE_ARN", ""),
		JWTIssuer:             get("AUTH_JWT_ISSUER", ""),
		JWTAudience:           get("AUTH_JWT_AUDIENCE", ""),
		JWKSURL:               get("AUTH_JWKS_URL", ""),
		JWTHS256Secret:        secret.Value(get("AUTH_JWT_HS256_SECRET", "")),
		TenantClaim:           get("AUTH_TENANT_CLAIM", "tenantId"),
		FrontendReturnURL:     get("FRONTEND_RETURN_URL", ""),
		FrontendLoginURL:      get("FRONTEND_LOGIN_URL", get("FRONTEND_RETURN_URL", "")),
		LWATokenURL:           get("AMAZON_LWA_TOKEN_URL", amazon.DefaultLWATokenURL),
		SPAPIEndpoint:         get("AMAZON_SPAPI_ENDPOINT", ""),
		SellerCentralURL:      get("AMAZON_SELLER_CENTRAL_URL", ""),
		LogLevel:              get("LOG_LEVEL", "info"),
	}
	var errs []error
	var err error
	if c.UseMock, err = strconv.ParseBool(get("AMAZON_USE_MOCK", "false")); err != nil {
		errs = append(errs, fmt.Errorf("AMAZON_USE_MOCK: %w", err))
	}
	secs, err := strconv.Atoi(get("MARKETPLACE_POLL_INTERVAL_SECONDS", "60"))
	if err != nil || secs < 1 {
		errs = append(errs, fmt.Errorf("MARKETPLACE_POLL_INTERVAL_SECONDS: want a positive number of seconds, got %q", getenv("MARKETPLACE_POLL_INTERVAL_SECONDS")))
	}
	c.PollInterval = time.Duration(secs) * time.Second
	fallback, err := strconv.Atoi(get("POLL_FALLBACK_INTERVAL_SECONDS", strconv.Itoa(DefaultPollFallbackSeconds)))
	if err != nil || fallback < 1 {
		errs = append(errs, fmt.Errorf("POLL_FALLBACK_INTERVAL_SECONDS: want a positive number of seconds, got %q", getenv("POLL_FALLBACK_INTERVAL_SECONDS")))
	}
	c.PollFallbackInterval = time.Duration(fallback) * time.Second
	if c.NotificationsQueueARN != "" && !validQueueARN(c.NotificationsQueueARN) {
		errs = append(errs, fmt.Errorf("NOTIFICATIONS_QUEUE_ARN: want arn:aws:sqs:<region>:<account>:<name>, got %q", c.NotificationsQueueARN))
	}
	days, err := strconv.Atoi(get("POLL_LOOKBACK_DAYS", "7"))
	if err != nil || days < 0 || days > 730 {
		errs = append(errs, fmt.Errorf("POLL_LOOKBACK_DAYS: want 0..730, got %q", getenv("POLL_LOOKBACK_DAYS")))
	}
	c.PollLookback = time.Duration(days) * 24 * time.Hour
	c.InboundMailDomain = strings.ToLower(get("INBOUND_MAIL_DOMAIN", ""))
	c.InboundMailBucket = get("INBOUND_MAIL_BUCKET", "")
	if c.InboundMailMaxBytes, err = strconv.ParseInt(get("INBOUND_MAIL_MAX_BYTES", "26214400"), 10, 64); err != nil || c.InboundMailMaxBytes < 1 {
		errs = append(errs, fmt.Errorf("INBOUND_MAIL_MAX_BYTES: want a positive number of bytes, got %q", getenv("INBOUND_MAIL_MAX_BYTES")))
	}
	if c.InboundS3PathStyle, err = strconv.ParseBool(get("INBOUND_S3_PATH_STYLE", "false")); err != nil {
		errs = append(errs, fmt.Errorf("INBOUND_S3_PATH_STYLE: %w", err))
	}

	c.ReplyQueueURL = get("REPLY_QUEUE_URL", "")
	c.SESConfigurationSet = get("SES_CONFIGURATION_SET", "")
	if c.SESMaxSendRate, err = strconv.ParseFloat(get("SES_MAX_SEND_RATE", "1"), 64); err != nil || c.SESMaxSendRate <= 0 || c.SESMaxSendRate > 10000 {
		errs = append(errs, fmt.Errorf("SES_MAX_SEND_RATE: want a positive rate per second, got %q", getenv("SES_MAX_SEND_RATE")))
	}
	switch kw := get("REPLY_BLOCKED_KEYWORDS", ""); strings.ToLower(kw) {
	case "":
		c.ReplyBlockedKeywords = nil // the flow's default: KeyBuzz's list
	case "none":
		c.ReplyBlockedKeywords = []string{}
	default:
		for _, k := range strings.Split(kw, ",") {
			if k = strings.TrimSpace(k); k != "" {
				c.ReplyBlockedKeywords = append(c.ReplyBlockedKeywords, k)
			}
		}
	}

	if !c.AppSource.Valid() {
		errs = append(errs, fmt.Errorf("AMAZON_SPAPI_APP_SOURCE: want %s or %s, got %q", marketplace.AppExternalTest, marketplace.AppKeyBuzz, c.AppSource))
	}
	switch c.VaultLayout {
	case LayoutSeed, LayoutKeyBuzz:
	default:
		errs = append(errs, fmt.Errorf("AMAZON_VAULT_LAYOUT: want %s or %s, got %q", LayoutSeed, LayoutKeyBuzz, c.VaultLayout))
	}
	switch c.VaultAuthMethod {
	case "token", "aws":
	default:
		errs = append(errs, fmt.Errorf("VAULT_AUTH_METHOD: want token or aws, got %q", c.VaultAuthMethod))
	}
	for k, v := range map[string]string{
		"AMAZON_LWA_TOKEN_URL": c.LWATokenURL, "AMAZON_SPAPI_ENDPOINT": c.SPAPIEndpoint,
		"AMAZON_SELLER_CENTRAL_URL": c.SellerCentralURL, "FRONTEND_RETURN_URL": c.FrontendReturnURL,
		"FRONTEND_LOGIN_URL": c.FrontendLoginURL, "AUTH_JWKS_URL": c.JWKSURL, "VAULT_ADDR": c.VaultAddr,
	} {
		if v == "" {
			continue
		}
		if err := checkURL(v, k != "VAULT_ADDR"); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	for _, h := range strings.Split(get("FRONTEND_RETURN_HOSTS", ""), ",") {
		if h = strings.ToLower(strings.TrimSpace(h)); h == "" {
			continue
		}
		if strings.ContainsAny(h, "/?#@ ") {
			errs = append(errs, fmt.Errorf("FRONTEND_RETURN_HOSTS: want host or host:port, got %q", h))
			continue
		}
		c.FrontendReturnHosts = append(c.FrontendReturnHosts, h)
	}
	if u, err := url.Parse(c.FrontendReturnURL); c.FrontendReturnURL != "" && err == nil {
		c.FrontendReturnHosts = append(c.FrontendReturnHosts, strings.ToLower(u.Host))
	}
	return c, errors.Join(errs...)
}

// RequireStore checks what every function needs: the database and Vault.
func (c Config) RequireStore() error {
	var errs []error
	if c.DatabaseURL.IsZero() {
		errs = append(errs, errors.New("DATABASE_URL is required"))
	}
	if c.VaultAddr == "" {
		errs = append(errs, errors.New("VAULT_ADDR is required"))
	}
	if c.VaultAuthMethod == "token" && c.VaultToken.IsZero() {
		errs = append(errs, errors.New("VAULT_TOKEN is required when VAULT_AUTH_METHOD=token"))
	}
	if c.VaultAuthMethod == "aws" && c.VaultAWSRole == "" {
		errs = append(errs, errors.New("VAULT_AWS_ROLE is required when VAULT_AUTH_METHOD=aws"))
	}
	return errors.Join(errs...)
}

// RequireAuth checks how Bearer tokens are verified. Behind API Gateway's JWT
// authorizer the claims are trusted as given, but the handlers still verify a
// token when one is configured (sam local start-api skips authorizers).
func (c Config) RequireAuth() error {
	var errs []error
	if c.JWTHS256Secret.IsZero() && c.JWKSURL == "" {
		errs = append(errs, errors.New("AUTH_JWT_HS256_SECRET or AUTH_JWKS_URL is required"))
	}
	if !c.JWTHS256Secret.IsZero() && len(c.JWTHS256Secret.Reveal()) < 32 {
		errs = append(errs, errors.New("AUTH_JWT_HS256_SECRET must be at least 32 bytes"))
	}
	if c.JWTIssuer == "" || c.JWTAudience == "" {
		errs = append(errs, errors.New("AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE are required"))
	}
	return errors.Join(errs...)
}

// RequireQueue checks what the fan-out needs.
func (c Config) RequireQueue() error {
	if c.PollQueueURL == "" {
		return errors.New("POLL_QUEUE_URL is required for fan-out")
	}
	return nil
}

// PushEnabled reports whether connections are subscribed to ORDER_CHANGE
// notifications (NOTIFICATIONS_QUEUE_ARN is set).
func (c Config) PushEnabled() bool { return c.NotificationsQueueARN != "" }

// validQueueARN checks the shape Amazon's SqsResource pattern asks for
// (^arn:aws:sqs:\S+:\S+:\S+).
func validQueueARN(arn string) bool {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[2] != "sqs" {
		return false
	}
	for _, p := range parts[3:] {
		if p == "" || strings.ContainsAny(p, " \t\n") {
			return false
		}
	}
	return true
}

// The Vault layouts: where the app's and the tenants' credentials live in
// the KV mount. Both are read with the same fields (vaultstore reads either
// form of each).
const (
	// LayoutSeed is the seed's: the app at keybuzz/ai/amazon_spapi_app_temp
	// (external_test) or keybuzz/ai/amazon_spapi_app (keybuzz), a tenant at
	// keybuzz/tenants/<tenantId>/amazon.
	LayoutSeed = "seed"
	// LayoutKeyBuzz is KeyBuzz's newer backend's: its app at
	// keybuzz/amazon_spapi/app (with login_uri), a tenant at
	// keybuzz/tenants/<tenantId>/amazon_spapi. That backend knows no test
	// app: external_test keeps the seed's path.
	LayoutKeyBuzz = "keybuzz"
)

// TenantIDPlaceholder stands for the tenant id in TenantVaultPath.
const TenantIDPlaceholder = "{tenantId}"

// RequireInboundMail checks what the mail intake needs.
func (c Config) RequireInboundMail() error {
	if c.InboundMailDomain == "" || !strings.Contains(c.InboundMailDomain, ".") {
		return fmt.Errorf("INBOUND_MAIL_DOMAIN: want a domain, got %q", c.InboundMailDomain)
	}
	if c.InboundMailBucket == "" {
		return fmt.Errorf("INBOUND_MAIL_BUCKET: want the mail bucket's name")
	}
	return nil
}

// RequireReplies checks what the send-reply route and the reply sender need.
func (c Config) RequireReplies() error {
	if c.ReplyQueueURL == "" {
		return errors.New("REPLY_QUEUE_URL: want the outbound queue's URL")
	}
	return nil
}

// AppVaultPath is the KV path of the app's LWA credentials for AppSource.
func (c Config) AppVaultPath() string { return c.AppVaultPathFor(c.AppSource) }

// AppVaultPathFor is the KV path (without the mount) of the credentials of
// the application source names ("external_test" or "keybuzz").
func (c Config) AppVaultPathFor(source marketplace.AppSource) string {
	switch {
	case source == marketplace.AppKeyBuzz && c.VaultLayout == LayoutKeyBuzz:
		return "keybuzz/amazon_spapi/app"
	case source == marketplace.AppKeyBuzz:
		return "keybuzz/ai/amazon_spapi_app"
	}
	return "keybuzz/ai/amazon_spapi_app_temp"
}

// TenantVaultPath is the KV path (without the mount) of a tenant's
// credentials, TenantIDPlaceholder standing for the tenant id.
func (c Config) TenantVaultPath() string {
	if c.VaultLayout == LayoutKeyBuzz {
		return "keybuzz/tenants/" + TenantIDPlaceholder + "/amazon_spapi"
	}
	return "keybuzz/tenants/" + TenantIDPlaceholder + "/amazon"
}

// checkURL wants an absolute http(s) URL; with httpsOnly, http only on a
// loopback host (the local stack and tests): a token, a key set, a consent
// page or a browser's destination never crosses a network in the clear.
func checkURL(v string, httpsOnly bool) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http(s) URL, got %q", v)
	}
	if httpsOnly && u.Scheme == "http" && !loopback(u.Hostname()) {
		return fmt.Errorf("want https outside loopback, got %q", v)
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
