package lwa_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox/sandboxtest"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

type countingTransport struct{ n *atomic.Int64 }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func setup(t *testing.T) (*sandbox.Server, *lwa.Client, lwa.App, *atomic.Int64) {
	t.Helper()
	cfg := sandbox.DefaultConfig()
	sb, url := sandboxtest.Start(t, cfg)
	var n atomic.Int64
	c := lwa.New(url+"/auth/o2/token", lwa.WithHTTPClient(&http.Client{Transport: countingTransport{&n}, Timeout: 5 * time.Second}))
	return sb, c, lwa.App{ClientID: cfg.ClientID, ClientSecret: secret.Value(cfg.ClientSecret)}, &n
}

func TestRotatingSourcePersistsRotation(t *testing.T) {
	cases := []struct {
		name        string
		rotate      bool
		persistErrs int // the first persist calls fail
		wantSaved   int // persist calls that succeeded with a new token
	}{
		{"no rotation: nothing saved", false, 0, 0},
		{"rotation saved", true, 0, 2},
		{"failed save retried on next refresh", true, 1, 1}, // the newest token is saved
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sb, client, app, _ := setup(t)
			seller := sandbox.SellerID(1)
			rt, _ := sb.IssueRefreshToken(seller)
			sb.RotateRefreshTokens(seller, c.rotate)
			var saved []secret.Value
			fails := c.persistErrs
			var reported int
			src := client.NewRotatingSource(context.Background(), app, secret.Value(rt), lwa.WithPersist(func(_ context.Context, tok secret.Value) error {
				if fails > 0 {
					fails--
					return errors.New("vault down")
				}
				saved = append(saved, tok)
				return nil
			}), lwa.WithPersistError(func(error) { reported++ }))
			for i := 0; i < 2; i++ {
				if _, err := src.Token(); err != nil {
					t.Fatal(err)
				}
			}
			if len(saved) != c.wantSaved || reported != c.persistErrs {
				t.Fatalf("saved %d tokens, %d errors reported; want %d and %d", len(saved), reported, c.wantSaved, c.persistErrs)
			}
			if len(saved) > 0 && saved[len(saved)-1] != src.RefreshToken() {
				t.Fatal("the last saved token is not the one in use")
			}
			if !c.rotate && src.RefreshToken().Reveal() != rt {
				t.Fatal("refresh token changed without rotation")
			}
		})
	}
}

func TestCachedSourceCachesAndInvalidates(t *testing.T) {
	sb, client, app, calls := setup(t)
	rt, _ := sb.IssueRefreshToken(sandbox.SellerID(1))
	src := lwa.NewCachedSource(client.NewRotatingSource(context.Background(), app, secret.Value(rt)))
	a, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := src.Token()
	if calls.Load() != 1 || a.AccessToken != b.AccessToken {
		t.Fatalf("%d token calls for two Token()s, want 1 (cached)", calls.Load())
	}
	// 3600 s tokens refreshed 300 s early are still valid for ~55 min.
	if time.Until(a.Expiry) < 50*time.Minute {
		t.Fatalf("expiry %v", a.Expiry)
	}
	src.Invalidate()
	c, _ := src.Token()
	if calls.Load() != 2 || c.AccessToken == a.AccessToken {
		t.Fatal("Invalidate did not force a refresh")
	}
	sb.RevokeSeller(sandbox.SellerID(1))
	src.Invalidate()
	if _, err := src.Token(); !lwa.IsInvalidGrant(err) {
		t.Fatalf("revoked: %v, want invalid_grant", err)
	}
}

// fixedSource hands out one token per call, numbered.
type fixedSource struct{ n *atomic.Int64 }

func (f fixedSource) Token() (*oauth2.Token, error) {
	n := f.n.Add(1)
	return &oauth2.Token{AccessToken: fmt.Sprint("t", n), Expiry: time.Now().Add(time.Hour)}, nil
}

// TestCacheKeepsOneSourcePerKey: a key's source is built once and reused
// while its stamp and keep agree; a new stamp or a refusing keep rebuilds
// it, and other keys are apart.
func TestCacheKeepsOneSourcePerKey(t *testing.T) {
	c := lwa.NewCache()
	var builds, calls atomic.Int64
	build := func() oauth2.TokenSource { builds.Add(1); return fixedSource{&calls} }
	keepAll := func(oauth2.TokenSource) bool { return true }
	steps := []struct {
		key, stamp string
		keep       func(oauth2.TokenSource) bool
		wantBuilds int64
		wantToken  string
	}{
		{"a", "s1", nil, 1, "t1"},
		{"a", "s1", keepAll, 1, "t1"}, // cached: no new token either
		{"b", "s1", nil, 2, "t2"},     // another key
		{"a", "s2", nil, 3, "t3"},     // a new stamp
		{"a", "s2", func(oauth2.TokenSource) bool { return false }, 4, "t4"},      // keep refuses
		{"a", "s2", func(b oauth2.TokenSource) bool { return b != nil }, 4, "t4"}, // keep accepts
	}
	for i, s := range steps {
		tok, err := c.Source(s.key, s.stamp, s.keep, build).Token()
		if err != nil {
			t.Fatal(err)
		}
		if builds.Load() != s.wantBuilds || tok.AccessToken != s.wantToken {
			t.Fatalf("step %d: %d builds, token %s; want %d, %s", i, builds.Load(), tok.AccessToken, s.wantBuilds, s.wantToken)
		}
	}
}
