// Package lwa talks to Login with Amazon's token endpoint through
// golang.org/x/oauth2: the authorization-code exchange of the Connect flow
// and refresh-token sources for SP-API calls.
package lwa

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// App is what LWA needs to know of the SP-API application.
type App struct {
	ClientID     string
	ClientSecret secret.Value
	// RedirectURI is sent with a code exchange: LWA requires the
	// redirect_uri of the consent request that produced the code, when it
	// named one (RFC 6749 4.1.3). Empty when the consent named none.
	RedirectURI string
}

// Token is an LWA answer.
type Token struct {
	AccessToken  secret.Value
	RefreshToken secret.Value
	Expiry       time.Time
}

// Error is LWA's error answer ({"error","error_description"}).
type Error struct {
	Status      int
	Code        string // invalid_grant, invalid_client, …; "" when the body had none
	Description string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("lwa: HTTP %d", e.Status)
	}
	return fmt.Sprintf("lwa: %s (HTTP %d)", e.Code, e.Status)
}

// Permanent reports whether retrying cannot help: the grant was refused
// (seller revoked, code used or expired) or our client is refused.
func (e *Error) Permanent() bool {
	switch e.Code {
	case "invalid_grant", "invalid_client", "unauthorized_client", "invalid_request", "invalid_scope", "access_denied", "unsupported_grant_type":
		return true
	}
	return false
}

// IsInvalidGrant reports whether err is LWA's invalid_grant: the refresh
// token is revoked or aged out, or the code is used or expired.
func IsInvalidGrant(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == "invalid_grant"
}

// Client is an LWA token endpoint.
type Client struct {
	tokenURL string
	http     *http.Client
}

// Option configures a Client (WithHTTPClient), a CachedSource or a Cache
// (WithEarlyExpiry) or a RotatingSource (WithPersist, WithPersistError); a
// constructor ignores the options that are not its own.
type Option func(*options)

type options struct {
	http           *http.Client
	early          time.Duration
	persist        PersistFunc
	onPersistError func(error)
}

func apply(opts []Option) options {
	o := options{http: &http.Client{Timeout: 10 * time.Second}, early: DefaultEarlyExpiry}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithHTTPClient sets the client's HTTP client (default: one with a 10 s
// timeout).
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) {
		if hc != nil {
			o.http = hc
		}
	}
}

// New returns a client for tokenURL (AMAZON_LWA_TOKEN_URL).
func New(tokenURL string, opts ...Option) *Client {
	return &Client{tokenURL: tokenURL, http: apply(opts).http}
}

func (c *Client) config(app App) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     app.ClientID,
		ClientSecret: app.ClientSecret.Reveal(),
		RedirectURL:  app.RedirectURI,
		// LWA takes the client credentials in the form body.
		Endpoint: oauth2.Endpoint{TokenURL: c.tokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
}

func (c *Client) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.http)
}

// Exchange trades a consent's spapi_oauth_code for tokens.
func (c *Client) Exchange(ctx context.Context, app App, code secret.Value) (Token, error) {
	tok, err := c.config(app).Exchange(c.ctx(ctx), code.Reveal())
	if err != nil {
		return Token{}, fmt.Errorf("exchange authorization code: %w", translate(err))
	}
	if tok.RefreshToken == "" {
		return Token{}, fmt.Errorf("exchange authorization code: %w", &Error{Status: http.StatusOK, Code: "", Description: "no refresh_token in answer"})
	}
	return Token{AccessToken: secret.Value(tok.AccessToken), RefreshToken: secret.Value(tok.RefreshToken), Expiry: tok.Expiry}, nil
}

// TokenSource returns an uncached source that refreshes with refreshToken on
// every call; wrap it (see RotatingSource) to cache and persist rotations.
// ctx must outlive the source: pass context.Background(), never a request's.
func (c *Client) TokenSource(ctx context.Context, app App, refreshToken secret.Value) oauth2.TokenSource {
	src := c.config(app).TokenSource(c.ctx(ctx), &oauth2.Token{RefreshToken: refreshToken.Reveal()})
	return errorTranslatingSource{src}
}

type errorTranslatingSource struct{ oauth2.TokenSource }

func (s errorTranslatingSource) Token() (*oauth2.Token, error) {
	t, err := s.TokenSource.Token()
	if err != nil {
		return nil, fmt.Errorf("refresh access token: %w", translate(err))
	}
	return t, nil
}

// translate turns oauth2's RetrieveError into *Error, keeping transport
// errors (timeouts, refused connections) as they are.
func translate(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e := &Error{Code: re.ErrorCode, Description: re.ErrorDescription}
		if re.Response != nil {
			e.Status = re.Response.StatusCode
		}
		return e
	}
	return err
}

// IsInvalidClient reports whether err is LWA's invalid_client: our client id
// or secret is refused (the secret was rotated or has expired).
func IsInvalidClient(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == "invalid_client"
}
