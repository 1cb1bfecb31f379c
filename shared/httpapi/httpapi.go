// Package httpapi serves the connector's three routes as http.Handlers. The
// Lambda functions wrap them with httpadapter.NewV2; the local server mounts
// the same handlers on a ServeMux.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// The routes, as API Gateway and the local server see them.
const (
	StartPath    = "/api/v1/marketplaces/amazon/oauth/start"
	CallbackPath = "/api/v1/marketplaces/amazon/oauth/callback"
	StatusPath   = "/api/v1/marketplaces/amazon/status"
)

// StartMessage is the seed's message in start's answer.
const StartMessage = "Redirect the seller to authUrl to authorize KeyBuzz on Amazon Seller Central"

// Authenticator finds the tenant of a request (auth.Verifier).
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Claims, error)
}

// Connector is the Connect flow (connect.Service).
type Connector interface {
	Start(ctx context.Context, tenantID string) (connect.StartResult, error)
	Callback(ctx context.Context, in connect.CallbackInput) (connect.CallbackResult, error)
	Status(ctx context.Context, tenantID string) (connect.Status, error)
}

// API holds what the handlers share.
type API struct {
	Connect   Connector
	Auth      Authenticator
	Log       *slog.Logger
	ReturnURL string // FRONTEND_RETURN_URL: callback redirects there when set
}

type startResponse struct {
	AuthURL   string    `json:"authUrl"`
	ExpiresAt time.Time `json:"expiresAt"`
	Message   string    `json:"message"`
}

// Start serves POST StartPath.
func (a *API) Start() http.Handler {
	return a.wrap(http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
		claims, err := a.Auth.Authenticate(r)
		if err != nil {
			writeError(w, r, a.Log, err)
			return
		}
		r = r.WithContext(logging.WithTenantID(r.Context(), claims.TenantID))
		res, err := a.Connect.Start(r.Context(), claims.TenantID)
		if err != nil {
			writeError(w, r, a.Log, err)
			return
		}
		a.Log.InfoContext(r.Context(), "oauth start", "expires_at", res.ExpiresAt)
		writeJSON(w, http.StatusOK, startResponse{AuthURL: res.AuthURL, ExpiresAt: res.ExpiresAt, Message: StartMessage})
	})
}

type callbackResponse struct {
	Success          bool   `json:"success"`
	Message          string `json:"message"`
	SellingPartnerID string `json:"sellingPartnerId,omitempty"`
}

// Callback serves GET CallbackPath: Amazon's redirect of the seller's browser.
func (a *API) Callback() http.Handler {
	return a.wrap(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		// Amazon's advice for the page that receives the code, and no cache
		// may keep an answer that depended on it.
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-store")
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			a.callbackDone(w, r, connect.CallbackResult{}, errors.Join(marketplace.ErrBadRequest, errors.New("malformed query")))
			return
		}
		for _, k := range []string{"state", "spapi_oauth_code", "selling_partner_id"} {
			if len(q[k]) > 1 {
				a.callbackDone(w, r, connect.CallbackResult{}, errors.Join(marketplace.ErrBadRequest, errors.New("repeated "+k)))
				return
			}
		}
		if e := q.Get("error"); e != "" && q.Get("spapi_oauth_code") == "" {
			// The seller declined, or Amazon refused the app.
			a.callbackDone(w, r, connect.CallbackResult{}, errors.Join(marketplace.ErrBadRequest, errors.New("consent refused")))
			return
		}
		res, err := a.Connect.Callback(r.Context(), connect.CallbackInput{
			Code:             secret.Value(q.Get("spapi_oauth_code")),
			State:            secret.Value(q.Get("state")),
			SellingPartnerID: q.Get("selling_partner_id"),
		})
		if res.TenantID != "" {
			r = r.WithContext(logging.WithTenantID(r.Context(), res.TenantID))
		}
		a.callbackDone(w, r, res, err)
	})
}

func (a *API) callbackDone(w http.ResponseWriter, r *http.Request, res connect.CallbackResult, err error) {
	if a.ReturnURL != "" {
		u, perr := url.Parse(a.ReturnURL)
		if perr == nil {
			q := u.Query()
			q.Del("status")
			q.Del("error")
			if err != nil {
				e, _ := classify(err)
				a.Log.InfoContext(r.Context(), "oauth callback failed", "code", e.Code, "error", err.Error())
				q.Set("status", "error")
				q.Set("error", e.Code)
			} else {
				a.Log.InfoContext(r.Context(), "oauth callback connected", "selling_partner_id", res.SellingPartnerID)
				q.Set("status", "connected")
			}
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return
		}
	}
	if err != nil {
		writeError(w, r, a.Log, err)
		return
	}
	a.Log.InfoContext(r.Context(), "oauth callback connected", "selling_partner_id", res.SellingPartnerID)
	writeJSON(w, http.StatusOK, callbackResponse{Success: true, Message: "Amazon account connected", SellingPartnerID: res.SellingPartnerID})
}

type statusResponse struct {
	Connected   bool       `json:"connected"`
	Status      *string    `json:"status"`
	DisplayName *string    `json:"displayName"`
	Region      *string    `json:"region"`
	LastSyncAt  *time.Time `json:"lastSyncAt"`
	LastError   *string    `json:"lastError"`
}

// Status serves GET StatusPath.
func (a *API) Status() http.Handler {
	return a.wrap(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		claims, err := a.Auth.Authenticate(r)
		if err != nil {
			writeError(w, r, a.Log, err)
			return
		}
		r = r.WithContext(logging.WithTenantID(r.Context(), claims.TenantID))
		st, err := a.Connect.Status(r.Context(), claims.TenantID)
		if err != nil {
			writeError(w, r, a.Log, err)
			return
		}
		resp := statusResponse{Connected: st.Connected}
		if c := st.Connection; c != nil {
			s := string(c.Status)
			resp.Status = &s
			resp.DisplayName = nonEmpty(c.DisplayName)
			resp.Region = nonEmpty(c.Region)
			resp.LastSyncAt = c.LastSyncAt
			resp.LastError = nonEmpty(c.LastError)
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// Routes mounts the three routes on one handler (the local server).
func (a *API) Routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(StartPath, a.Start())
	mux.Handle(CallbackPath, a.Callback())
	mux.Handle(StatusPath, a.Status())
	return mux
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	// aws-lambda-go-api-proxy would guess text/plain: say what it is.
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
