package connect

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

func TestCallbackInputValidate(t *testing.T) {
	good := CallbackInput{Code: "ANDbKpYbSsBoUhNIRgWU", State: secret.Value(strings.Repeat("a", 43)), SellingPartnerID: "A3BXB0YN3XH17H"}
	tests := []struct {
		name   string
		change func(*CallbackInput)
		want   error
	}{
		{"good", func(*CallbackInput) {}, nil},
		{"no state", func(in *CallbackInput) { in.State = "" }, marketplace.ErrBadRequest},
		{"no code", func(in *CallbackInput) { in.Code = "" }, marketplace.ErrBadRequest},
		{"no seller", func(in *CallbackInput) { in.SellingPartnerID = "" }, marketplace.ErrBadRequest},
		{"short state", func(in *CallbackInput) { in.State = "abc" }, marketplace.ErrInvalidState},
		{"state with quote", func(in *CallbackInput) { in.State = secret.Value(strings.Repeat("a", 42) + "'") }, marketplace.ErrInvalidState},
		{"code with space", func(in *CallbackInput) { in.Code = "a b" }, marketplace.ErrBadRequest},
		{"huge code", func(in *CallbackInput) { in.Code = secret.Value(strings.Repeat("a", 2000)) }, marketplace.ErrBadRequest},
		{"lowercase seller", func(in *CallbackInput) { in.SellingPartnerID = "a3bxb0yn3xh17h" }, marketplace.ErrBadRequest},
		{"seller with slash", func(in *CallbackInput) { in.SellingPartnerID = "A3BXB0/N3XH17H" }, marketplace.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good
			tt.change(&in)
			err := in.Validate()
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
		})
	}
}

type memStore struct {
	StartStore
	began  []string
	begins []marketplace.Begin
}

func (m *memStore) BeginConnect(_ context.Context, b marketplace.Begin) (marketplace.Connection, error) {
	m.began = append(m.began, b.StateHash)
	m.begins = append(m.begins, b)
	return marketplace.Connection{ID: "c1", TenantID: b.TenantID}, nil
}

type memSecrets struct {
	Secrets
	app marketplace.AppCredentials
}

func (m memSecrets) AppFor(context.Context, marketplace.AppSource) (marketplace.AppCredentials, error) {
	return m.app, nil
}

type fixedReader byte

func (f fixedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f)
	}
	return len(p), nil
}

// The consent host follows the app's marketplace, version=beta only for a
// Draft app, redirect_uri only when configured; the database sees a hash.
func TestStartBuildsConsentURL(t *testing.T) {
	base := marketplace.AppCredentials{ClientID: "c", ClientSecret: "s", ApplicationID: "amzn1.sp.solution.x"}
	tests := []struct {
		name     string
		app      func(a *marketplace.AppCredentials)
		override string
		want     string // scheme://host
		wantQ    url.Values
	}{
		{"eu default is Amazon.fr's host", func(a *marketplace.AppCredentials) { a.Region = "eu" }, "", "https://sellercentral-europe.amazon.com", url.Values{"application_id": {"amzn1.sp.solution.x"}}},
		{"na", func(a *marketplace.AppCredentials) { a.Region = "na" }, "", "https://sellercentral.amazon.com", nil},
		{"marketplace NL", func(a *marketplace.AppCredentials) { a.Region = "eu"; a.MarketplaceID = "A1805IZSGTT6HS" }, "", "https://sellercentral.amazon.nl", nil},
		{"draft and redirect", func(a *marketplace.AppCredentials) {
			a.Region = "fe"
			a.Draft = true
			a.RedirectURI = "https://api.keybuzz.io/cb"
		}, "", "https://sellercentral.amazon.co.jp", url.Values{"version": {"beta"}, "redirect_uri": {"https://api.keybuzz.io/cb"}}},
		{"override", func(a *marketplace.AppCredentials) { a.Region = "eu" }, "http://127.0.0.1:4580/", "http://127.0.0.1:4580", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := base
			tt.app(&app)
			store := &memStore{}
			svc := NewStart(store, memSecrets{app: app}, StartConfig{SellerCentralURL: tt.override, Random: fixedReader(7),
				Now: func() time.Time { return time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC) }})
			res, err := svc.Run(context.Background(), StartInput{TenantID: "tenant-1"})
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(res.AuthURL)
			if got := u.Scheme + "://" + u.Host; got != tt.want || u.Path != "/apps/authorize/consent" {
				t.Errorf("host %s path %s, want %s", got, u.Path, tt.want)
			}
			q := u.Query()
			for k, v := range tt.wantQ {
				if q.Get(k) != v[0] {
					t.Errorf("%s = %q, want %q", k, q.Get(k), v[0])
				}
			}
			if !app.Draft && q.Has("version") {
				t.Error("version=beta for a published app")
			}
			if app.RedirectURI == "" && q.Has("redirect_uri") {
				t.Error("redirect_uri without one configured")
			}
			if len(store.began) != 1 || store.began[0] == q.Get("state") || store.began[0] != hashState(secret.Value(q.Get("state"))) {
				t.Errorf("stored %v for state %s", store.began, q.Get("state"))
			}
			if !res.ExpiresAt.Equal(time.Date(2026, 11, 27, 10, 15, 0, 0, time.UTC)) {
				t.Errorf("expires %v", res.ExpiresAt)
			}
		})
	}
	svc := NewStart(&memStore{}, memSecrets{app: base}, StartConfig{})
	if _, err := svc.Run(context.Background(), StartInput{TenantID: "../etc"}); !errors.Is(err, marketplace.ErrBadRequest) {
		t.Errorf("bad tenant: %v", err)
	}
}
