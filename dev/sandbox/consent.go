package sandbox

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// consentRequest is what the consent URL (and the approve form) carries.
type consentRequest struct {
	ApplicationID string
	State         string
	Version       string
	RedirectURI   string // as given; empty = first registered
	SellerID      string
}

type consentError struct {
	Code    string // Amazon's error code (MD1000, MD5101, MD5110) or a sandbox label
	Title   string
	Message string
}

func consentParams(v url.Values) consentRequest {
	return consentRequest{
		ApplicationID: v.Get("application_id"),
		State:         v.Get("state"),
		Version:       v.Get("version"),
		RedirectURI:   v.Get("redirect_uri"),
		SellerID:      v.Get("sandbox_seller"),
	}
}

// check validates the request and returns the redirect URI to use.
func (s *Server) checkConsent(c consentRequest) (string, *consentError) {
	if _, ok := s.appByID(c.ApplicationID); !ok {
		return "", &consentError{"UNKNOWN_APPLICATION", "Application not found",
			"We could not find the application you are trying to authorize. Contact the developer of the application."}
	}
	if s.cfg.Draft && c.Version != "beta" {
		return "", &consentError{"MD1000", "Authorization error",
			"The application is in Draft state and cannot be authorized without version=beta."}
	}
	redirect := ""
	if len(s.cfg.RedirectURIs) > 0 {
		redirect = s.cfg.RedirectURIs[0]
	}
	if c.RedirectURI != "" {
		if strings.Contains(c.RedirectURI, "#") {
			return "", &consentError{"MD5110", "Authorization error",
				"The redirect URI contains a fragment."}
		}
		if !slices.Contains(s.cfg.RedirectURIs, c.RedirectURI) {
			return "", &consentError{"MD5101", "Authorization error",
				"The redirect URI does not match one of the redirect URIs registered for the application."}
		}
		redirect = c.RedirectURI
	}
	if redirect == "" {
		return "", &consentError{"MD9100", "Authorization error",
			"The application has no OAuth redirect URI."}
	}
	if c.State == "" {
		return "", &consentError{"MISSING_STATE", "Authorization error",
			"The request is missing the state parameter."}
	}
	return redirect, nil
}

// consent checks the request as both the page and its Confirm button do,
// and returns the redirect URI and the seller (the first when none is
// picked).
func (s *Server) consent(c consentRequest) (string, Seller, *consentError) {
	redirect, cerr := s.checkConsent(c)
	if cerr != nil {
		return "", Seller{}, cerr
	}
	if c.SellerID == "" {
		return redirect, s.sellers[0], nil
	}
	seller, ok := s.seller(c.SellerID)
	if !ok {
		return "", Seller{}, &consentError{"UNKNOWN_SELLER", "Account not found",
			"The sandbox has no seller " + c.SellerID + "."}
	}
	return redirect, seller, nil
}

// handleConsentPage serves GET /apps/authorize/consent.
func (s *Server) handleConsentPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := consentParams(q)
	redirect, seller, cerr := s.consent(c)
	if cerr == nil {
		cerr = regionConsent(r, seller)
	}
	if cerr != nil {
		s.renderConsentError(w, cerr)
		return
	}
	if s.cfg.AutoApprove || q.Get("sandbox_auto_approve") == "true" {
		s.approve(w, r, c, redirect, seller.ID)
		return
	}
	s.renderConsent(w, c, seller)
}

// renderConsent shows the consent page for c, seller preselected.
func (s *Server) renderConsent(w http.ResponseWriter, c consentRequest, seller Seller) {
	data := struct {
		AppName, AppID string
		Req            consentRequest
		Selected       Seller
		Sellers        []Seller
	}{s.cfg.AppName, s.cfg.ApplicationID, c, seller, s.sellers}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := consentTmpl.Execute(w, data); err != nil {
		s.log.Error("render consent page", "err", err)
	}
}

// handleConsentApprove serves the Confirm button (POST /apps/authorize/consent).
func (s *Server) handleConsentApprove(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	c := consentParams(r.PostForm)
	redirect, seller, cerr := s.consent(c)
	if cerr == nil {
		cerr = regionConsent(r, seller)
	}
	if cerr != nil {
		s.renderConsentError(w, cerr)
		return
	}
	s.approve(w, r, c, redirect, seller.ID)
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request, c consentRequest, redirect, sellerID string) {
	u, err := url.Parse(redirect)
	if err != nil {
		s.renderConsentError(w, &consentError{"MD5101", "Authorization error", "The redirect URI is invalid."})
		return
	}
	q := u.Query()
	q.Set("state", c.State)
	q.Set("selling_partner_id", sellerID)
	app, _ := s.appByID(c.ApplicationID)
	q.Set("spapi_oauth_code", s.issueCode(sellerID, app.ClientID, c.RedirectURI))
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Server) renderConsentError(w http.ResponseWriter, e *consentError) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	if err := consentErrorTmpl.Execute(w, e); err != nil {
		s.log.Error("render consent error", "err", err)
	}
}

var consentTmpl = template.Must(template.New("consent").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {{.AppName}} - Seller Central (sandbox)</title></head>
<body>
<h1>Authorize {{.AppName}}</h1>
<p><strong>{{.AppName}}</strong> ({{.AppID}}) is requesting access to your selling account
<strong id="seller-account">{{.Selected.Name}} ({{.Selected.ID}})</strong>.</p>
<form method="post" action="/apps/authorize/consent">
<input type="hidden" name="application_id" value="{{.Req.ApplicationID}}">
<input type="hidden" name="state" value="{{.Req.State}}">
<input type="hidden" name="version" value="{{.Req.Version}}">
<input type="hidden" name="redirect_uri" value="{{.Req.RedirectURI}}">
<label for="sandbox_seller">Selling account</label>
<select id="sandbox_seller" name="sandbox_seller">
{{- range .Sellers}}
<option value="{{.ID}}"{{if eq .ID $.Selected.ID}} selected{{end}}>{{.Name}} ({{.ID}})</option>
{{- end}}
</select>
<p>I direct Amazon to provide {{.AppName}} with access to my Amazon selling account.</p>
<button type="submit" name="approve" value="true">Confirm</button>
</form>
</body></html>
`))

var consentErrorTmpl = template.Must(template.New("consent-error").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} - Seller Central (sandbox)</title></head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
<p>Error code: <code id="error-code">{{.Code}}</code></p>
</body></html>
`))
