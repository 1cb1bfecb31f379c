// Package devui is the small page the local server shows a person at "/":
// pick a tenant, press Connect Amazon, come back from the consent page and
// see the connection's status and tickets. It drives the real handlers with
// a dev token, exactly as the frontend would. It is never deployed.
package devui

import (
	"context"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

const tenantCookie = "kb_dev_tenant"

// TicketLister lists a tenant's tickets (postgres.Store).
type TicketLister interface {
	ListTickets(ctx context.Context, tenantID string, limit int) ([]marketplace.TicketSummary, error)
}

// Page serves the local page.
type Page struct {
	API     *httpapi.API
	Token   func(tenantID string) (string, error) // a dev Bearer JWT
	Tickets TicketLister
	Log     *slog.Logger
}

// Handler serves GET / and POST /dev/connect.
func (p *Page) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.index)
	mux.HandleFunc("POST /dev/connect", p.connect)
	return mux
}

type view struct {
	Tenant  string
	Outcome string
	Error   string
	Status  map[string]any
	Tickets []marketplace.TicketSummary
}

func (p *Page) index(w http.ResponseWriter, r *http.Request) {
	v := view{Tenant: r.URL.Query().Get("tenant"), Outcome: r.URL.Query().Get("status"), Error: r.URL.Query().Get("error")}
	if v.Tenant == "" {
		if c, err := r.Cookie(tenantCookie); err == nil {
			v.Tenant = c.Value
		}
	}
	if v.Tenant == "" {
		v.Tenant = "tenant-demo"
	}
	if marketplace.ValidTenantID(v.Tenant) {
		rec, err := p.call(r.Context(), http.MethodGet, httpapi.StatusPath, v.Tenant, p.API.Status())
		if err == nil {
			_ = json.Unmarshal(rec.Body.Bytes(), &v.Status)
		}
		if p.Tickets != nil {
			v.Tickets, _ = p.Tickets.ListTickets(r.Context(), v.Tenant, 50)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := page.Execute(w, v); err != nil {
		p.Log.ErrorContext(r.Context(), "render dev page", "error", err.Error())
	}
}

func (p *Page) connect(w http.ResponseWriter, r *http.Request) {
	tenant := r.PostFormValue("tenant")
	if !marketplace.ValidTenantID(tenant) {
		http.Error(w, "tenant id: 1-128 letters, digits, '-' or '_'", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: tenantCookie, Value: tenant, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	rec, err := p.call(r.Context(), http.MethodPost, httpapi.StartPath, tenant, p.API.Start())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var out struct {
		AuthURL string `json:"authUrl"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.AuthURL == "" {
		http.Redirect(w, r, "/?tenant="+url.QueryEscape(tenant)+"&status=error&error=start_failed", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, out.AuthURL, http.StatusSeeOther)
}

// call runs one of the real handlers with a dev token for tenant.
func (p *Page) call(ctx context.Context, method, path, tenant string, h http.Handler) (*httptest.ResponseRecorder, error) {
	tok, err := p.Token(tenant)
	if err != nil {
		return nil, err
	}
	req := httptest.NewRequestWithContext(ctx, method, path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, nil
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>KeyBuzz × Amazon (local)</title>
<style>body{font:15px system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}
.ok{color:#070}.err{color:#a00}button{font-size:1rem;padding:.4rem 1rem}</style></head>
<body><h1>KeyBuzz × Amazon — local</h1>
<p>Local development page, never deployed. It calls the real <code>oauth/start</code> and <code>status</code> handlers with a dev token.</p>
{{if eq .Outcome "connected"}}<p class="ok">Amazon account connected.</p>{{end}}
{{if eq .Outcome "error"}}<p class="err">Connection failed: {{.Error}}</p>{{end}}
<form method="post" action="/dev/connect">
<label>Tenant <input name="tenant" value="{{.Tenant}}" pattern="[A-Za-z0-9][A-Za-z0-9_-]{0,127}" required></label>
<button type="submit">Connect Amazon</button></form>
<h2>Status of {{.Tenant}}</h2>
{{with .Status}}<table>{{range $k, $v := .}}<tr><th>{{$k}}</th><td>{{$v}}</td></tr>{{end}}</table>{{else}}<p>unknown</p>{{end}}
<h2>Tickets</h2>
{{if .Tickets}}<table><tr><th>Subject</th><th>Order</th><th>Buyer</th><th>Messages</th><th>Last message</th></tr>
{{range .Tickets}}<tr><td>{{.Subject}}</td><td>{{.OrderID}}</td><td>{{.CustomerName}}</td><td>{{.Messages}}</td><td>{{with .LastMessageAt}}{{.Format "2006-01-02 15:04"}}{{end}}</td></tr>{{end}}</table>
{{else}}<p>No tickets yet: they appear after the next poll.</p>{{end}}
<p><a href="/?tenant={{.Tenant}}">Refresh</a></p>
</body></html>`))
