// Package vaultstore keeps the Amazon app's and the sellers' credentials in
// Vault's KV v2 engine, at the paths of the configured layout
// (config.Config.AppVaultPathFor and TenantVaultPath), in the seed's
// fields (docs/keybuzz-contract.md):
//
//	seed layout (the default)
//	  app:    <mount>/keybuzz/ai/amazon_spapi_app_temp  (AMAZON_SPAPI_APP_SOURCE=external_test)
//	          <mount>/keybuzz/ai/amazon_spapi_app       (AMAZON_SPAPI_APP_SOURCE=keybuzz)
//	  tenant: <mount>/keybuzz/tenants/<tenantId>/amazon
//	keybuzz layout (AMAZON_VAULT_LAYOUT=keybuzz)
//	  app:    <mount>/keybuzz/amazon_spapi/app          (keybuzz; external_test as above)
//	  tenant: <mount>/keybuzz/tenants/<tenantId>/amazon_spapi
//
//	app:    client_id, client_secret, application_id, redirect_uri, region
//	        (the AWS region, "eu-west-1"), login_uri; the connector's
//	        marketplace_id and draft; role_arn accepted and ignored
//	tenant: refresh_token, seller_id, marketplace_id (one id: the seller's
//	        primary marketplace), region (the AWS region), created_at
//	        (ISO 8601); the connector's marketplace_ids (every marketplace,
//	        comma-separated)
//
// Older secrets read as well: region "eu", marketplace_id a comma-separated
// list.
package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// Store reads and writes credentials in one KV v2 mount.
type Store struct {
	kv         *api.KVv2
	mount      string
	tenantPath string // with config.TenantIDPlaceholder
	appPath    string
	appPaths   map[marketplace.AppSource]string // AppFor's paths; empty: appPath for every app
	login      *login                           // nil with a static token
}

// seedTenantPath is the seed's tenant path template.
var seedTenantPath = config.Config{VaultLayout: config.LayoutSeed}.TenantVaultPath()

// Option configures a Store.
type Option func(*Store)

// WithTenantPath sets the tenant path template (config.TenantVaultPath;
// default: the seed's).
func WithTenantPath(template string) Option { return func(s *Store) { s.tenantPath = template } }

// WithAppPaths sets where AppFor finds each application (AppPath's in
// Open; tests use their own; default: appPath for every application).
func WithAppPaths(paths map[marketplace.AppSource]string) Option {
	return func(s *Store) { s.appPaths = paths }
}

// New returns a Store on client's KV v2 mount; appPath is config.AppVaultPath().
func New(client *api.Client, mount, appPath string, opts ...Option) *Store {
	s := &Store{kv: client.KVv2(mount), mount: mount, tenantPath: seedTenantPath, appPath: appPath}
	for _, o := range opts {
		o(s)
	}
	return s
}

// TenantPath is the seed's KV path (without mount) of a tenant's Amazon
// credentials.
func TenantPath(tenantID string) (string, error) { return tenantPathIn(seedTenantPath, tenantID) }

func tenantPathIn(template, tenantID string) (string, error) {
	if !marketplace.ValidTenantID(tenantID) {
		return "", fmt.Errorf("tenant id %q: %w", tenantID, marketplace.ErrBadRequest)
	}
	return strings.Replace(template, config.TenantIDPlaceholder, tenantID, 1), nil
}

// App reads the current application's credentials (AMAZON_SPAPI_APP_SOURCE).
func (s *Store) App(ctx context.Context) (marketplace.AppCredentials, error) {
	return s.readApp(ctx, s.appPath)
}

// AppFor reads the credentials of the application source names: a
// connection is refreshed with the app that authorized it.
func (s *Store) AppFor(ctx context.Context, source marketplace.AppSource) (marketplace.AppCredentials, error) {
	return s.readApp(ctx, s.appPathOf(source))
}

func (s *Store) appPathOf(source marketplace.AppSource) string {
	if p, ok := s.appPaths[source]; ok {
		return p
	}
	return s.appPath
}

// AppPath is the KV path of an application's LWA credentials in the seed's
// layout.
func AppPath(source marketplace.AppSource) string {
	return config.Config{VaultLayout: config.LayoutSeed}.AppVaultPathFor(source)
}

func (s *Store) readApp(ctx context.Context, appPath string) (marketplace.AppCredentials, error) {
	if err := s.login.ensure(ctx); err != nil {
		return marketplace.AppCredentials{}, err
	}
	sec, err := s.kv.Get(ctx, appPath)
	if err != nil || sec == nil || sec.Data == nil {
		return marketplace.AppCredentials{}, fmt.Errorf("read app credentials at %s: %w", appPath, classify(err, marketplace.ErrAppMisconfigured))
	}
	d := sec.Data
	app := marketplace.AppCredentials{
		ClientID:      str(d, "client_id"),
		ClientSecret:  secret.Value(str(d, "client_secret")),
		RedirectURI:   str(d, "redirect_uri"),
		ApplicationID: str(d, "application_id"),
		Region:        regionCode(str(d, "region")),
		MarketplaceID: str(d, "marketplace_id"),
		LoginURI:      str(d, "login_uri"),
	}
	// role_arn is accepted and ignored: SP-API no longer uses SigV4 or IAM roles.
	app.Draft, _ = strconv.ParseBool(str(d, "draft"))
	if app.ClientID == "" || app.ClientSecret.IsZero() || app.ApplicationID == "" {
		return marketplace.AppCredentials{}, fmt.Errorf("app credentials at %s lack client_id, client_secret or application_id: %w", appPath, marketplace.ErrAppMisconfigured)
	}
	if app.Region == "" {
		app.Region = "eu"
	}
	return app, nil
}

// PutApp writes the application's credentials (used by local set-up and tests).
func (s *Store) PutApp(ctx context.Context, app marketplace.AppCredentials) error {
	return s.putApp(ctx, s.appPath, app)
}

func (s *Store) putApp(ctx context.Context, appPath string, app marketplace.AppCredentials) error {
	if err := s.login.ensure(ctx); err != nil {
		return err
	}
	data := map[string]any{
		"client_id": app.ClientID, "client_secret": app.ClientSecret.Reveal(), "redirect_uri": app.RedirectURI,
		"application_id": app.ApplicationID, "region": awsRegion(app.Region), "marketplace_id": app.MarketplaceID,
		"draft": strconv.FormatBool(app.Draft),
	}
	if app.LoginURI != "" {
		data["login_uri"] = app.LoginURI
	}
	_, err := s.kv.Put(ctx, appPath, data)
	if err != nil {
		return fmt.Errorf("write app credentials: %w", classify(err, nil))
	}
	return nil
}

// Tenant reads a tenant's credentials; marketplace.ErrNoCredentials when none.
func (s *Store) Tenant(ctx context.Context, tenantID string) (marketplace.TenantCredentials, error) {
	path, err := tenantPathIn(s.tenantPath, tenantID)
	if err != nil {
		return marketplace.TenantCredentials{}, err
	}
	if err := s.login.ensure(ctx); err != nil {
		return marketplace.TenantCredentials{}, err
	}
	sec, err := s.kv.Get(ctx, path)
	if err != nil || sec == nil || sec.Data == nil {
		// After a soft delete Get returns no error and nil data.
		return marketplace.TenantCredentials{}, fmt.Errorf("read tenant credentials: %w", classify(err, marketplace.ErrNoCredentials))
	}
	tc := tenantFrom(sec.Data)
	if sec.VersionMetadata != nil {
		tc.Version = sec.VersionMetadata.Version
	}
	if tc.RefreshToken.IsZero() {
		return marketplace.TenantCredentials{}, fmt.Errorf("tenant credentials have no refresh_token: %w", marketplace.ErrNoCredentials)
	}
	return tc, nil
}

// PutTenant writes a tenant's credentials (a new version) in the seed's
// form and returns where they are as the seed's MarketplaceConnection
// keeps it ("secret/keybuzz/tenants/<tenantId>/amazon": mount and path),
// which is all the database may keep.
func (s *Store) PutTenant(ctx context.Context, tenantID string, tc marketplace.TenantCredentials) (string, error) {
	path, err := tenantPathIn(s.tenantPath, tenantID)
	if err != nil {
		return "", err
	}
	if tc.CreatedAt.IsZero() {
		tc.CreatedAt = time.Now().UTC()
	}
	if err := s.login.ensure(ctx); err != nil {
		return "", err
	}
	if _, err := s.kv.Put(ctx, path, tenantData(tc)); err != nil {
		return "", fmt.Errorf("write tenant credentials: %w", classify(err, nil))
	}
	return s.mount + "/" + path, nil
}

// UpdateRefreshToken replaces a tenant's refresh token (Amazon rotated it)
// only if the secret is still at tc.Version.
func (s *Store) UpdateRefreshToken(ctx context.Context, tenantID string, tc marketplace.TenantCredentials, token secret.Value) (int, error) {
	path, err := tenantPathIn(s.tenantPath, tenantID)
	if err != nil {
		return 0, err
	}
	tc.RefreshToken = token
	if err := s.login.ensure(ctx); err != nil {
		return 0, err
	}
	sec, err := s.kv.Put(ctx, path, tenantData(tc), api.WithCheckAndSet(tc.Version))
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusBadRequest && strings.Contains(strings.Join(re.Errors, " "), "check-and-set") {
			return 0, fmt.Errorf("update refresh token: %w", marketplace.ErrConflict)
		}
		return 0, fmt.Errorf("update refresh token: %w", classify(err, nil))
	}
	if sec != nil && sec.VersionMetadata != nil {
		return sec.VersionMetadata.Version, nil
	}
	return tc.Version + 1, nil
}

// DeleteTenant removes every version of a tenant's credentials.
func (s *Store) DeleteTenant(ctx context.Context, tenantID string) error {
	path, err := tenantPathIn(s.tenantPath, tenantID)
	if err != nil {
		return err
	}
	if err := s.login.ensure(ctx); err != nil {
		return err
	}
	if err := s.kv.DeleteMetadata(ctx, path); err != nil {
		return fmt.Errorf("delete tenant credentials: %w", classify(err, nil))
	}
	return nil
}

// createdAtLayout is the seed's created_at (JavaScript's toISOString).
const createdAtLayout = "2006-01-02T15:04:05.000Z"

// tenantData is a tenant's secret in the seed's form: marketplace_id one id
// (the primary), region the AWS region; marketplace_ids every marketplace.
func tenantData(tc marketplace.TenantCredentials) map[string]any {
	ids := marketplaceList(tc.MarketplaceID, tc.MarketplaceIDs)
	primary := ""
	if len(ids) > 0 {
		primary = ids[0]
	}
	return map[string]any{
		"refresh_token": tc.RefreshToken.Reveal(), "seller_id": tc.SellerID, "marketplace_id": primary,
		"marketplace_ids": strings.Join(ids, ","), "region": awsRegion(tc.Region),
		"created_at": tc.CreatedAt.UTC().Format(createdAtLayout),
	}
}

// tenantFrom reads a tenant's secret in either form: the seed's (one
// marketplace_id, an AWS region) with the connector's marketplace_ids, or
// the connector's older one (marketplace_id a comma-separated list, region
// "eu").
func tenantFrom(d map[string]any) marketplace.TenantCredentials {
	ids := marketplaceList(str(d, "marketplace_id"), splitList(d["marketplace_ids"]))
	tc := marketplace.TenantCredentials{
		RefreshToken:   secret.Value(str(d, "refresh_token")),
		SellerID:       str(d, "seller_id"),
		MarketplaceIDs: ids,
		Region:         regionCode(str(d, "region")),
	}
	if len(ids) > 0 {
		tc.MarketplaceID = ids[0]
	}
	tc.CreatedAt, _ = time.Parse(time.RFC3339Nano, str(d, "created_at"))
	return tc
}

// marketplaceList is the primary marketplace first (the first id of
// primary, which older secrets hold as a list), then the others of all,
// without repeats.
func marketplaceList(primary string, all []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, id := range append(splitList(primary), all...) {
		if id = strings.TrimSpace(id); id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// splitList reads a list kept as "A,B" or as a JSON array.
func splitList(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.TrimSpace(s))
			}
		}
	}
	return out
}

// regionCode reads a region as the seed writes it ("eu-west-1") or as older
// secrets did ("eu"): the connector's code ("eu"); unknown values as given.
func regionCode(v string) string {
	if r, err := amazon.LookupRegion(v); err == nil {
		return r.Code
	}
	return v
}

// awsRegion writes a region as the seed does: the AWS region ("eu-west-1").
func awsRegion(v string) string {
	if r, err := amazon.LookupRegion(v); err == nil {
		return r.AWSRegion
	}
	return v
}

// classify maps a Vault error: not-found (or nil data) becomes notFound; a
// transport failure, 5xx or sealed Vault becomes marketplace.ErrUnavailable.
func classify(err error, notFound error) error {
	if err == nil || errors.Is(err, api.ErrSecretNotFound) {
		if notFound == nil {
			notFound = marketplace.ErrNoCredentials
		}
		if err == nil {
			return notFound
		}
		return errors.Join(notFound, err)
	}
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode < 500 {
		if re.StatusCode == http.StatusNotFound && notFound != nil {
			return errors.Join(notFound, err)
		}
		return err // 4xx: permission denied and the like, a configuration error
	}
	return errors.Join(marketplace.ErrUnavailable, err)
}

func str(d map[string]any, k string) string {
	if v, ok := d[k].(string); ok {
		return v
	}
	return ""
}
