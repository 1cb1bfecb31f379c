package lwa

import (
	"context"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// DefaultEarlyExpiry is how long before an access token's expiry a cached
// token is refreshed: LWA tokens live 3600 s and the seed refreshed after
// 3300 s (Amazon's SDKs use 60 s).
const DefaultEarlyExpiry = 300 * time.Second

// PersistFunc saves a refresh token Amazon rotated (a check-and-set write to
// Vault). It receives the context the source was built with.
type PersistFunc func(ctx context.Context, refreshToken secret.Value) error

// RotatingSource refreshes access tokens with a seller's refresh token and,
// when LWA answers with a different refresh token, keeps using the new one
// and hands it to persist. golang.org/x/oauth2 would keep a rotated token in
// memory only. A failed persist is retried on the next refresh; the error is
// reported through onPersistError (never with the token).
type RotatingSource struct {
	client  *Client
	app     App
	ctx     context.Context
	persist PersistFunc

	initial secret.Value // the refresh token the source was built with

	mu      sync.Mutex
	refresh secret.Value
	pending bool // refresh differs from what persist last saved
	onError func(error)
}

// WithPersist hands a rotated refresh token to persist (default: the new
// token is kept in memory only).
func WithPersist(persist PersistFunc) Option { return func(o *options) { o.persist = persist } }

// WithPersistError reports a failed persist to f (default: not reported).
func WithPersistError(f func(error)) Option { return func(o *options) { o.onPersistError = f } }

// NewRotatingSource returns an uncached source; ctx must outlive it (use
// context.Background(), never an invocation's context).
func (c *Client) NewRotatingSource(ctx context.Context, app App, refreshToken secret.Value, opts ...Option) *RotatingSource {
	o := apply(opts)
	return &RotatingSource{client: c, app: app, ctx: ctx, persist: o.persist, initial: refreshToken, refresh: refreshToken, onError: o.onPersistError}
}

// Token implements oauth2.TokenSource: one refresh_token grant per call.
func (s *RotatingSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.client.TokenSource(s.ctx, s.app, s.refresh).Token()
	if err != nil {
		return nil, err
	}
	if t.RefreshToken != "" && t.RefreshToken != s.refresh.Reveal() {
		s.refresh = secret.Value(t.RefreshToken)
		s.pending = true
	}
	if s.pending && s.persist != nil {
		if err := s.persist(s.ctx, s.refresh); err != nil {
			if s.onError != nil {
				s.onError(err)
			}
		} else {
			s.pending = false
		}
	}
	return t, nil
}

// RefreshToken returns the refresh token the source currently uses.
func (s *RotatingSource) RefreshToken() secret.Value {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh
}

// Holds reports whether refreshToken is the one the source was built with
// or the one it rotated to: a secret read again from Vault that it holds
// needs no new source.
func (s *RotatingSource) Holds(refreshToken secret.Value) bool {
	return refreshToken == s.initial || refreshToken == s.RefreshToken()
}

// CachedSource caches a source's access token until early before it
// expires (oauth2.ReuseTokenSourceWithExpiry) and can be told to drop it
// when SP-API answers that the token expired.
type CachedSource struct {
	base  oauth2.TokenSource
	early time.Duration

	mu    sync.Mutex
	reuse oauth2.TokenSource
}

// WithEarlyExpiry sets how long before its expiry a cached token is
// refreshed (default DefaultEarlyExpiry; a duration <= 0 keeps it).
func WithEarlyExpiry(early time.Duration) Option {
	return func(o *options) {
		if early > 0 {
			o.early = early
		}
	}
}

// NewCachedSource wraps base.
func NewCachedSource(base oauth2.TokenSource, opts ...Option) *CachedSource {
	early := apply(opts).early
	return &CachedSource{base: base, early: early, reuse: oauth2.ReuseTokenSourceWithExpiry(nil, base, early)}
}

// Token returns the cached token or refreshes it.
func (s *CachedSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	r := s.reuse
	s.mu.Unlock()
	return r.Token()
}

// Invalidate drops the cached token: the next Token refreshes.
func (s *CachedSource) Invalidate() {
	s.mu.Lock()
	s.reuse = oauth2.ReuseTokenSourceWithExpiry(nil, s.base, s.early)
	s.mu.Unlock()
}

// Cache keeps one CachedSource per key (a seller's refresh-token source, an
// application's grantless source) for the life of a warm container, so a
// warm call makes no LWA request: the connector's one access-token cache.
type Cache struct {
	early time.Duration

	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	stamp  string
	base   oauth2.TokenSource
	cached *CachedSource
}

// NewCache returns an empty cache whose sources refresh early before
// expiry (option: WithEarlyExpiry).
func NewCache(opts ...Option) *Cache {
	return &Cache{early: apply(opts).early, entries: map[string]cacheEntry{}}
}

// Source returns the source cached under key when it was built with stamp
// (what the source depends on, an application's secret for instance) and
// keep, when given, still accepts its base; otherwise it caches build()'s
// source, wrapped in a CachedSource, under key in its place. build must
// return a source whose context outlives the cache (context.Background()).
func (c *Cache) Source(key, stamp string, keep func(base oauth2.TokenSource) bool, build func() oauth2.TokenSource) *CachedSource {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok && e.stamp == stamp && (keep == nil || keep(e.base)) {
		return e.cached
	}
	base := build()
	e := cacheEntry{stamp: stamp, base: base, cached: NewCachedSource(base, WithEarlyExpiry(c.early))}
	c.entries[key] = e
	return e.cached
}
