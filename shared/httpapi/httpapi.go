// Package httpapi serves the connector's routes as http.Handlers. The
// Lambda functions wrap them with httpadapter.NewV2; the local server mounts
// the same handlers on a ServeMux.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// The routes, as API Gateway and the local server see them.
const (
	StartPath      = "/api/v1/marketplaces/amazon/oauth/start"
	CallbackPath   = "/api/v1/marketplaces/amazon/oauth/callback"
	LoginPath      = "/api/v1/marketplaces/amazon/oauth/login"
	StatusPath     = "/api/v1/marketplaces/amazon/status"
	DisconnectPath = "/api/v1/marketplaces/amazon/disconnect"
	// InboundAddressPath answers the tenant's inbound address for one
	// marketplace country (?country=XX), KeyBuzz's route.
	InboundAddressPath = "/api/v1/marketplaces/amazon/inbound-address"
)

// StartMessage is the seed's message in start's answer.
const StartMessage = "Redirect the seller to authUrl to authorize KeyBuzz on Amazon Seller Central"

// Authenticator finds the tenant of a request (auth.Verifier).
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Claims, error)
}

// Route is one route: the handler and the path API Gateway and the local
// server serve it on. A Lambda function serves one Route (through
// httpadapter.NewV2); the local server mounts them all (Mux).
type Route struct {
	Path string
	http.Handler
}

// Mux mounts routes on one handler (the local server).
func Mux(routes ...Route) *http.ServeMux {
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.Handle(r.Path, r.Handler)
	}
	return mux
}

// base is what every route's middleware needs: who calls (for the routes
// a tenant calls) and where to log.
type base struct {
	auth Authenticator
	log  *slog.Logger
}

// Starter is the start flow (connect.Start).
type Starter interface {
	Run(ctx context.Context, in connect.StartInput) (connect.StartResult, error)
}

// Callbacker is the callback flow (connect.Callback).
type Callbacker interface {
	Run(ctx context.Context, in connect.CallbackInput) (connect.CallbackResult, error)
}

// LoginFlow is the Appstore log-in flow (connect.Login).
type LoginFlow interface {
	Run(ctx context.Context, in connect.LoginInput) (connect.LoginResult, error)
}

// StatusFlow is the status flow (connect.Status).
type StatusFlow interface {
	Run(ctx context.Context, tenantID string) (connect.StatusResult, error)
}

// Disconnector is the disconnect flow (connect.Disconnect).
type Disconnector interface {
	Run(ctx context.Context, tenantID string) (connect.DisconnectResult, error)
}

type startRequest struct {
	ReturnURL     string `json:"return_url"`
	AppstoreLogin string `json:"appstore_login"`
}

type startResponse struct {
	Success   bool      `json:"success"`
	AuthURL   string    `json:"authUrl"`
	State     string    `json:"state"`
	ExpiresAt time.Time `json:"expiresAt"`
	Message   string    `json:"message"`
}

// StartRoute serves POST StartPath with flow, for the tenant authn names:
// an optional JSON body {return_url, appstore_login}; the answer sets the
// browser binding cookie (so the frontend calls it with credentials) and
// carries the consent URL.
func StartRoute(flow Starter, authn Authenticator, log *slog.Logger) Route {
	a := &base{auth: authn, log: log}
	return Route{StartPath, a.wrapTenant(http.MethodPost, func(w http.ResponseWriter, r *http.Request, claims auth.Claims) {
		var body startRequest
		if err := readJSON(r, &body); err != nil {
			writeError(w, r, a.log, err)
			return
		}
		res, err := flow.Run(r.Context(), connect.StartInput{
			TenantID: claims.TenantID, ReturnURL: body.ReturnURL, AppstoreLogin: secret.Value(body.AppstoreLogin),
		})
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		setBinding(w, r, res.Binding, res.ExpiresAt)
		a.log.InfoContext(r.Context(), "oauth start", "expires_at", res.ExpiresAt, "appstore", body.AppstoreLogin != "")
		writeJSON(w, http.StatusOK, startResponse{Success: true, AuthURL: res.AuthURL, State: res.State.Reveal(),
			ExpiresAt: res.ExpiresAt, Message: StartMessage})
	})}
}

// readJSON decodes an optional JSON body into v (an empty body is none).
func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return errors.Join(marketplace.ErrBadRequest, fmt.Errorf("read body: %w", err))
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errors.Join(marketplace.ErrBadRequest, errors.New("body is not a JSON object"))
	}
	return nil
}

type callbackResponse struct {
	Success          bool   `json:"success"`
	Message          string `json:"message"`
	TenantID         string `json:"tenantId,omitempty"`
	SellingPartnerID string `json:"sellingPartnerId,omitempty"`
}

// CallbackRoute serves GET CallbackPath with flow: Amazon's redirect of the
// seller's browser (no JWT: the state and the browser binding). returnURL
// (FRONTEND_RETURN_URL) is where the browser goes when start named no
// return_url; empty: the answer is JSON.
func CallbackRoute(flow Callbacker, log *slog.Logger, returnURL string) Route {
	a := &callback{base: base{log: log}, returnURL: returnURL}
	return Route{CallbackPath, a.wrap(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		// Amazon's advice for the page that receives the code, and no cache
		// may keep an answer that depended on it.
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-store")
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			a.callbackDone(w, r, connect.CallbackResult{}, errors.Join(marketplace.ErrBadRequest, errors.New("malformed query")))
			return
		}
		for _, k := range []string{"state", "spapi_oauth_code", "code", "selling_partner_id"} {
			if len(q[k]) > 1 {
				a.callbackDone(w, r, connect.CallbackResult{}, errors.Join(marketplace.ErrBadRequest, errors.New("repeated "+k)))
				return
			}
		}
		code := q.Get("spapi_oauth_code")
		if code == "" {
			code = q.Get("code") // KeyBuzz's backend accepts either name
		}
		if e := q.Get("error"); e != "" && code == "" {
			// The seller declined, or Amazon refused the app.
			a.callbackDone(w, r, connect.CallbackResult{}, errors.Join(marketplace.ErrBadRequest, errors.New("consent refused")))
			return
		}
		res, err := flow.Run(r.Context(), connect.CallbackInput{
			Code:             secret.Value(code),
			State:            secret.Value(q.Get("state")),
			SellingPartnerID: q.Get("selling_partner_id"),
			Binding:          readBinding(r),
		})
		if res.TenantID != "" {
			r = r.WithContext(logging.WithTenantID(r.Context(), res.TenantID))
		}
		if err == nil || !errors.Is(err, marketplace.ErrBrowserMismatch) {
			clearBinding(w, r) // the starter's browser is done with it
		}
		a.callbackDone(w, r, res, err)
	})}
}

type callback struct {
	base
	returnURL string
}

// callbackDone sends the browser to the start's return URL (or
// FRONTEND_RETURN_URL) with KeyBuzz's parameters, amazon_connected=true and
// tenant_id on success, amazon_error=<code> on failure; with neither it
// answers JSON.
func (a *callback) callbackDone(w http.ResponseWriter, r *http.Request, res connect.CallbackResult, err error) {
	if err != nil {
		e, _ := classify(err)
		a.log.InfoContext(r.Context(), "oauth callback failed", "code", e.Code, "error", err.Error())
	} else {
		a.log.InfoContext(r.Context(), "oauth callback connected", "selling_partner_id", res.SellingPartnerID,
			"replaced_selling_partner_id", res.ReplacedSellingPartnerID)
	}
	target := res.ReturnURL
	if target == "" {
		target = a.returnURL
	}
	if u, perr := url.Parse(target); target != "" && perr == nil && u.IsAbs() {
		q := u.Query()
		for _, k := range []string{"amazon_connected", "amazon_error", "tenant_id"} {
			q.Del(k)
		}
		if err != nil {
			e, _ := classify(err)
			q.Set("amazon_error", e.Code)
		} else {
			q.Set("amazon_connected", "true")
			q.Set("tenant_id", res.TenantID)
		}
		u.RawQuery = q.Encode()
		u.Fragment = ""
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, callbackResponse{Success: true, Message: "Amazon account connected",
		TenantID: res.TenantID, SellingPartnerID: res.SellingPartnerID})
}

type loginResponse struct {
	Success       bool      `json:"success"`
	AppstoreLogin string    `json:"appstoreLogin"`
	ExpiresAt     time.Time `json:"expiresAt"`
	Message       string    `json:"message"`
}

// LoginMessage tells an API-only caller what to do with the log-in id.
const LoginMessage = "Sign in to KeyBuzz, then POST oauth/start with {\"appstore_login\": appstoreLogin} and send the browser to authUrl"

// LoginRoute serves GET LoginPath with flow, the app's log-in URI for
// Appstore-initiated authorization: it keeps Amazon's parameters and sends
// the browser to loginURL, the frontend's sign-in page (FRONTEND_LOGIN_URL,
// else FRONTEND_RETURN_URL), with amazon_appstore_login=<id>; with no
// loginURL it answers JSON. It never redirects to amazon_callback_uri
// itself; a refused one is a JSON error.
func LoginRoute(flow LoginFlow, log *slog.Logger, loginURL string) Route {
	a := &base{log: log}
	return Route{LoginPath, a.wrap(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-store")
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			writeError(w, r, a.log, errors.Join(marketplace.ErrBadRequest, errors.New("malformed query")))
			return
		}
		for _, k := range []string{"amazon_callback_uri", "amazon_state", "selling_partner_id", "version"} {
			if len(q[k]) > 1 {
				writeError(w, r, a.log, errors.Join(marketplace.ErrBadRequest, errors.New("repeated "+k)))
				return
			}
		}
		res, err := flow.Run(r.Context(), connect.LoginInput{
			AmazonCallbackURI: q.Get("amazon_callback_uri"), AmazonState: q.Get("amazon_state"),
			SellingPartnerID: q.Get("selling_partner_id"), Version: q.Get("version"),
		})
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		a.log.InfoContext(r.Context(), "appstore log-in", "selling_partner_id", q.Get("selling_partner_id"))
		if u, perr := url.Parse(loginURL); loginURL != "" && perr == nil && u.IsAbs() {
			uq := u.Query()
			uq.Set("amazon_appstore_login", res.LoginID.Reveal())
			u.RawQuery = uq.Encode()
			u.Fragment = ""
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return
		}
		writeJSON(w, http.StatusOK, loginResponse{Success: true, AppstoreLogin: res.LoginID.Reveal(), ExpiresAt: res.ExpiresAt, Message: LoginMessage})
	})}
}

type statusResponse struct {
	Connected   bool       `json:"connected"`
	Status      string     `json:"status"`
	DisplayName *string    `json:"displayName"`
	Region      *string    `json:"region"`
	LastSyncAt  *time.Time `json:"lastSyncAt"`
	LastError   *string    `json:"lastError"`
	// Additions to the seed's answer.
	AppSource *string `json:"appSource"`
	// ReauthRequired: the seller must consent again (Amazon refused the
	// refresh token, the authorization expired, the app changed); status is
	// then KeyBuzz's ERROR, whose enum has no re-authorization value.
	ReauthRequired         bool       `json:"reauthRequired"`
	ReauthReason           *string    `json:"reauthReason"`
	AuthorizationExpiresAt *time.Time `json:"authorizationExpiresAt"`
	// Push (ORDER_CHANGE notifications): live subscription, last notification.
	Push               bool       `json:"push"`
	LastNotificationAt *time.Time `json:"lastNotificationAt"`
	PushError          *string    `json:"pushError,omitempty"`
	// The seller's one Seller Central step per marketplace: forward buyer
	// messages to these addresses (inboundEmail: the primary marketplace's).
	InboundEmail     *string              `json:"inboundEmail"`
	InboundAddresses []inboundAddressJSON `json:"inboundAddresses"`
}

type inboundAddressJSON struct {
	Country           string     `json:"country"`
	MarketplaceID     string     `json:"marketplaceId,omitempty"`
	EmailAddress      string     `json:"emailAddress"`
	PipelineStatus    string     `json:"pipelineStatus"`
	MarketplaceStatus string     `json:"marketplaceStatus"`
	LastInboundAt     *time.Time `json:"lastInboundAt"`
	// ReplyApprovalNeeded: Amazon refused a reply from this address; the
	// seller must approve it under Messaging Permissions (replyApprovalReason says so).
	ReplyApprovalNeeded bool    `json:"replyApprovalNeeded"`
	ReplyApprovalReason *string `json:"replyApprovalReason"`
}

// StatusRoute serves GET StatusPath with flow, for the tenant authn names.
func StatusRoute(flow StatusFlow, authn Authenticator, log *slog.Logger) Route {
	return tenantRoute(StatusPath, http.MethodGet, authn, log, flow.Run, func(st connect.StatusResult) any { return statusBody(st) })
}

// inboundAddressResponse is KeyBuzz's answer: the address, its country and
// its pipeline status (PENDING, VALIDATED, FAILED).
type inboundAddressResponse struct {
	Address string `json:"address"`
	Country string `json:"country"`
	Status  string `json:"status"`
}

// InboundAddressRoute serves GET InboundAddressPath?country=XX with the
// status flow: the tenant's inbound address for the marketplace country
// (FR when none is named, as KeyBuzz's route), provisioned with the status
// when the connection has none yet. A country the tenant does not sell on
// (no address for it), or a tenant without a connection, is 404; a country
// that is not two letters is 400.
func InboundAddressRoute(flow StatusFlow, authn Authenticator, log *slog.Logger) Route {
	a := &base{auth: authn, log: log}
	return Route{InboundAddressPath, a.wrapTenant(http.MethodGet, func(w http.ResponseWriter, r *http.Request, claims auth.Claims) {
		country := strings.ToUpper(strings.TrimSpace(r.URL.Query().Get("country")))
		if country == "" {
			country = "FR"
		}
		if len(country) != 2 || country[0] < 'A' || country[0] > 'Z' || country[1] < 'A' || country[1] > 'Z' {
			writeError(w, r, a.log, fmt.Errorf("inbound address: country %q: %w", country, marketplace.ErrBadRequest))
			return
		}
		st, err := flow.Run(r.Context(), claims.TenantID)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		for _, addr := range st.InboundAddresses {
			if strings.EqualFold(addr.Country, country) {
				writeJSON(w, http.StatusOK, inboundAddressResponse{Address: addr.EmailAddress, Country: strings.ToUpper(addr.Country), Status: addr.PipelineStatus})
				return
			}
		}
		writeError(w, r, a.log, fmt.Errorf("inbound address for %s: %w", country, marketplace.ErrNotFound))
	})}
}

// tenantRoute serves method on path for the tenant authn names: run's
// result, through body, as JSON; its error by the error table.
func tenantRoute[T any](path, method string, authn Authenticator, log *slog.Logger, run func(ctx context.Context, tenantID string) (T, error), body func(T) any) Route {
	a := &base{auth: authn, log: log}
	return Route{path, a.wrapTenant(method, func(w http.ResponseWriter, r *http.Request, claims auth.Claims) {
		res, err := run(r.Context(), claims.TenantID)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		writeJSON(w, http.StatusOK, body(res))
	})}
}

func statusBody(st connect.StatusResult) statusResponse {
	resp := statusResponse{Connected: st.Connected, Status: string(marketplace.StatusDisconnected)}
	if c := st.Connection; c != nil {
		resp.Status = string(c.Status)
		if c.Status == marketplace.StatusNeedsReauth {
			resp.Status, resp.ReauthRequired = string(marketplace.StatusError), true
		}
		resp.DisplayName = nonEmpty(c.DisplayName)
		resp.Region = nonEmpty(strings.ToUpper(c.Region)) // the seed's "EU", "NA"
		resp.LastSyncAt = c.LastSyncAt
		resp.LastError = nonEmpty(c.LastError)
		resp.AppSource = nonEmpty(string(c.AppSource))
		resp.ReauthReason = nonEmpty(string(st.ReauthReason))
		resp.AuthorizationExpiresAt = st.AuthorizationExpiresAt
	}
	if p := st.Push; p != nil {
		resp.Push, resp.LastNotificationAt, resp.PushError = p.Live, p.LastNotificationAt, nonEmpty(p.Error)
	}
	resp.InboundEmail = nonEmpty(st.InboundEmail)
	resp.InboundAddresses = []inboundAddressJSON{}
	for _, a := range st.InboundAddresses {
		reason, need := st.ReplyApprovalNeeded[strings.ToLower(a.EmailAddress)]
		resp.InboundAddresses = append(resp.InboundAddresses, inboundAddressJSON{Country: a.Country, MarketplaceID: a.MarketplaceID,
			EmailAddress: a.EmailAddress, PipelineStatus: a.PipelineStatus, MarketplaceStatus: a.MarketplaceStatus, LastInboundAt: a.LastInboundAt,
			ReplyApprovalNeeded: need, ReplyApprovalReason: nonEmpty(reason)})
	}
	return resp
}

type disconnectResponse struct {
	Success   bool    `json:"success"`
	Connected bool    `json:"connected"`
	Status    string  `json:"status"`
	LastError *string `json:"lastError"`
	Message   string  `json:"message"`
}

// DisconnectRoute serves POST DisconnectPath with flow, for the tenant authn
// names: idempotent.
func DisconnectRoute(flow Disconnector, authn Authenticator, log *slog.Logger) Route {
	return tenantRoute(DisconnectPath, http.MethodPost, authn, log, flow.Run, func(res connect.DisconnectResult) any {
		resp := disconnectResponse{Success: true, Status: string(marketplace.StatusDisconnected), Message: "Amazon account disconnected"}
		if c := res.Connection; c != nil {
			resp.Status, resp.LastError = string(c.Status), nonEmpty(c.LastError)
		}
		return resp
	})
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
