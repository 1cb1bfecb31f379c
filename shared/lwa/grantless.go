package lwa

import (
	"context"
	"fmt"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// GrantlessSource returns an uncached source of grantless access tokens for
// app (grant_type=client_credentials with scope, for instance
// sellingpartnerapi::notifications): one token request per call; wrap it in
// NewCachedSource. ctx must outlive the source: pass context.Background().
func (c *Client) GrantlessSource(ctx context.Context, app App, scope string) oauth2.TokenSource {
	cfg := &clientcredentials.Config{
		ClientID:     app.ClientID,
		ClientSecret: app.ClientSecret.Reveal(),
		TokenURL:     c.tokenURL,
		Scopes:       []string{scope},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	return grantlessSource{cfg: cfg, ctx: c.ctx(ctx)}
}

// grantlessSource asks for a new token on every call (Config.Token), unlike
// Config.TokenSource, which caches: CachedSource.Invalidate must be able to
// get a fresh one.
type grantlessSource struct {
	cfg *clientcredentials.Config
	ctx context.Context
}

func (s grantlessSource) Token() (*oauth2.Token, error) {
	t, err := s.cfg.Token(s.ctx)
	if err != nil {
		return nil, fmt.Errorf("grantless access token: %w", translate(err))
	}
	return t, nil
}
