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
	"strings"

	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

const tenantCookie = "kb_dev_tenant"

// TicketLister lists a tenant's tickets (postgres.Store).
type TicketLister interface {
	ListTickets(ctx context.Context, tenantID string, limit int) ([]marketplace.TicketSummary, error)
}

// MessageLister lists tickets' messages (postgres.Store).
type MessageLister interface {
	TicketMessages(ctx context.Context, tenantID string, ticketIDs []string) ([]marketplace.TicketMessageView, error)
}

// Page serves the local page.
type Page struct {
	// Start, Status and Disconnect are the connector's routes the page
	// calls (httpapi.StartRoute, StatusRoute, DisconnectRoute).
	Start, Status, Disconnect http.Handler
	Token                     func(tenantID string) (string, error) // a dev Bearer JWT
	Tickets                   TicketLister
	// Messages lists the tickets' messages; nil shows tickets without them.
	Messages MessageLister
	// SMTPAddr, when set, says where the SMTP receiver playing SES listens
	// (INBOUND_SMTP_ADDR), for the relay-mail hint.
	SMTPAddr string
	Log      *slog.Logger
	// SandboxURL is the Amazon sandbox: the page links to its Appstore
	// start (an Appstore-initiated authorization through the log-in route).
	SandboxURL string
	// Apps lists the connections on another app than AppSource (the app
	// migration's dry run, make migrate-app); nil hides the section.
	Apps      OldAppLister
	AppSource marketplace.AppSource
	// SendReply and Outbound are the reply routes (httpapi.SendReplyRoute,
	// OutboundRoute); nil hides the reply box.
	SendReply, Outbound http.Handler
}

// OldAppLister lists connections on another application (postgres.Store).
type OldAppLister interface {
	OldAppConnections(ctx context.Context, target marketplace.AppSource, after string, limit int) ([]postgres.OldAppConnection, error)
}

// Handler serves GET /, POST /dev/connect and POST /dev/disconnect.
func (p *Page) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.index)
	mux.HandleFunc("POST /dev/connect", p.connect)
	mux.HandleFunc("POST /dev/disconnect", p.disconnect)
	mux.HandleFunc("POST /dev/reply", p.reply)
	return mux
}

type view struct {
	Tenant        string
	AppstoreLogin string
	AppstoreStart string
	AppSource     marketplace.AppSource
	OldApps       []postgres.OldAppConnection
	ShowMigration bool
	Outcome       string
	Error         string
	Status        map[string]any
	Tickets       []marketplace.TicketSummary
	Messages      map[string][]marketplace.TicketMessageView
	Inbound       []inboundView
	SMTPAddr      string
	SandboxURL    string
	// Replies: the reply box is shown (the routes are there); Sent are
	// each ticket's replies, newest first; ReplyOutcome is the last send's.
	Replies      bool
	Sent         map[string][]reply.Outbound
	ReplyOutcome string
}

// inboundView is one inbound address with its Seller Central step.
type inboundView struct {
	Country, EmailAddress, PipelineStatus, MarketplaceStatus, LastInboundAt string
}

func (p *Page) index(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := view{Tenant: q.Get("tenant_id"), Error: q.Get("amazon_error"), AppstoreLogin: q.Get("amazon_appstore_login")}
	switch {
	case q.Get("amazon_connected") == "true":
		v.Outcome = "connected"
	case v.Error != "":
		v.Outcome = "error"
	case q.Get("disconnected") == "true":
		v.Outcome = "disconnected"
	}
	if v.Tenant == "" {
		v.Tenant = q.Get("tenant")
	}
	if v.Tenant == "" {
		if c, err := r.Cookie(tenantCookie); err == nil {
			v.Tenant = c.Value
		}
	}
	if v.Tenant == "" {
		v.Tenant = "tenant-demo"
	}
	if p.SandboxURL != "" {
		v.AppstoreStart = strings.TrimRight(p.SandboxURL, "/") + "/_sandbox/appstore/authorize"
	}
	if p.Apps != nil {
		v.ShowMigration, v.AppSource = true, p.AppSource
		v.OldApps, _ = p.Apps.OldAppConnections(r.Context(), p.AppSource, "", 20)
	}
	if marketplace.ValidTenantID(v.Tenant) {
		rec, err := p.call(r.Context(), http.MethodGet, httpapi.StatusPath, v.Tenant, p.Status)
		if err == nil {
			_ = json.Unmarshal(rec.Body.Bytes(), &v.Status)
		}
		if p.Tickets != nil {
			v.Tickets, _ = p.Tickets.ListTickets(r.Context(), v.Tenant, 50)
		}
		if p.Messages != nil && len(v.Tickets) > 0 {
			ids := make([]string, len(v.Tickets))
			for i, t := range v.Tickets {
				ids[i] = t.ID
			}
			list, _ := p.Messages.TicketMessages(r.Context(), v.Tenant, ids)
			v.Messages = map[string][]marketplace.TicketMessageView{}
			for _, m := range list {
				v.Messages[m.TicketID] = append(v.Messages[m.TicketID], m)
			}
		}
		if p.SendReply != nil && p.Outbound != nil {
			v.Replies, v.Sent, v.ReplyOutcome = true, map[string][]reply.Outbound{}, q.Get("reply")
			for _, t := range v.Tickets {
				rec, err := p.call(r.Context(), http.MethodGet, "/api/v1/marketplaces/amazon/tickets/"+url.PathEscape(t.ID)+"/outbound", v.Tenant, p.Outbound)
				var out struct {
					Messages []reply.Outbound `json:"messages"`
				}
				if err == nil && rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &out) == nil {
					v.Sent[t.ID] = out.Messages
				}
			}
		}
		if list, ok := v.Status["inboundAddresses"].([]any); ok {
			for _, a := range list {
				m, _ := a.(map[string]any)
				str := func(k string) string { s, _ := m[k].(string); return s }
				v.Inbound = append(v.Inbound, inboundView{Country: str("country"), EmailAddress: str("emailAddress"),
					PipelineStatus: str("pipelineStatus"), MarketplaceStatus: str("marketplaceStatus"), LastInboundAt: str("lastInboundAt")})
			}
			delete(v.Status, "inboundAddresses")
		}
		v.SMTPAddr, v.SandboxURL = p.SMTPAddr, p.SandboxURL
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
	body := ""
	if login := r.PostFormValue("appstore_login"); login != "" {
		b, _ := json.Marshal(map[string]string{"appstore_login": login})
		body = string(b)
	}
	rec, err := p.callBody(r, http.MethodPost, httpapi.StartPath, tenant, body, p.Start)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var out struct {
		AuthURL string `json:"authUrl"`
		Error   struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.AuthURL == "" {
		code := out.Error.Code
		if code == "" {
			code = "start_failed"
		}
		http.Redirect(w, r, "/?tenant="+url.QueryEscape(tenant)+"&amazon_error="+url.QueryEscape(code), http.StatusSeeOther)
		return
	}
	// The page and the API share one origin here, so the browser binding
	// cookie start set goes to this browser, as a frontend's credentialed
	// fetch would receive it.
	for _, c := range rec.Result().Cookies() {
		http.SetCookie(w, c)
	}
	http.Redirect(w, r, out.AuthURL, http.StatusSeeOther)
}

func (p *Page) disconnect(w http.ResponseWriter, r *http.Request) {
	tenant := r.PostFormValue("tenant")
	if !marketplace.ValidTenantID(tenant) {
		http.Error(w, "tenant id: 1-128 letters, digits, '-' or '_'", http.StatusBadRequest)
		return
	}
	rec, err := p.callBody(r, http.MethodPost, httpapi.DisconnectPath, tenant, "", p.Disconnect)
	if err != nil || rec.Code != http.StatusOK {
		http.Redirect(w, r, "/?tenant="+url.QueryEscape(tenant)+"&amazon_error=disconnect_failed", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/?tenant="+url.QueryEscape(tenant)+"&disconnected=true", http.StatusSeeOther)
}

// reply sends the reply box's text through the real send-reply route and
// comes back with its outcome (the status, or the error's code).
func (p *Page) reply(w http.ResponseWriter, r *http.Request) {
	tenant, ticket := r.PostFormValue("tenant"), r.PostFormValue("ticket")
	if !marketplace.ValidTenantID(tenant) || ticket == "" || p.SendReply == nil {
		http.Error(w, "tenant and ticket required", http.StatusBadRequest)
		return
	}
	body, _ := json.Marshal(map[string]string{"message": r.PostFormValue("message")})
	rec, err := p.callBody(r, http.MethodPost, "/api/v1/marketplaces/amazon/tickets/"+url.PathEscape(ticket)+"/send-reply", tenant, string(body), p.SendReply)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var out struct {
		Status string `json:"status"`
		Error  struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	outcome := "queued " + out.Status
	if rec.Code != http.StatusAccepted {
		outcome = "refused " + out.Error.Code
	}
	http.Redirect(w, r, "/?tenant="+url.QueryEscape(tenant)+"&reply="+url.QueryEscape(outcome), http.StatusSeeOther)
}

// callBody runs one of the real handlers for the browser's request r with a
// dev token for tenant, a JSON body, and r's cookies and host.
func (p *Page) callBody(r *http.Request, method, path, tenant, body string, h http.Handler) (*httptest.ResponseRecorder, error) {
	tok, err := p.Token(tenant)
	if err != nil {
		return nil, err
	}
	req := httptest.NewRequestWithContext(r.Context(), method, path, strings.NewReader(body))
	req.Host = r.Host
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, nil
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
{{if eq .Outcome "connected"}}<p class="ok" id="outcome">Amazon account connected.</p>{{end}}
{{if eq .Outcome "error"}}<p class="err" id="outcome">Connection failed: <code id="error-code">{{.Error}}</code></p>{{end}}
{{if eq .Outcome "disconnected"}}<p class="ok" id="outcome">Amazon account disconnected.</p>{{end}}
{{if .AppstoreLogin}}<p>You arrive from the Amazon Appstore: sign in (type your tenant) and continue to Amazon.</p>{{end}}
<form method="post" action="/dev/connect">
<label>Tenant <input id="tenant" name="tenant" value="{{.Tenant}}" pattern="[A-Za-z0-9][A-Za-z0-9_-]{0,127}" required></label>
{{if .AppstoreLogin}}<input type="hidden" name="appstore_login" value="{{.AppstoreLogin}}">
<button id="connect" type="submit">Continue to Amazon</button>{{else}}<button id="connect" type="submit">Connect Amazon</button>{{end}}</form>
<form method="post" action="/dev/disconnect"><input type="hidden" name="tenant" value="{{.Tenant}}">
<button id="disconnect" type="submit">Disconnect</button></form>
<p>Connect Amazon again at any time to reconnect (another seller replaces the current one).</p>
{{with .AppstoreStart}}<p><a id="appstore-start" href="{{.}}">Start from the Amazon Appstore (sandbox)</a>: the sandbox sends you to the log-in route, then back here to sign in.</p>{{end}}
<h2>Status of {{.Tenant}}</h2>
{{with .Status}}<table>{{range $k, $v := .}}<tr><th>{{$k}}</th><td>{{$v}}</td></tr>{{end}}</table>{{else}}<p>unknown</p>{{end}}
<h2>Buyer messages by e-mail</h2>
{{if .Inbound}}<p>One step per marketplace in Seller Central: <b>Settings &gt; Notification Preferences &gt; Messaging &gt; Buyer Messages</b>, add the address (and under Return and Claim Notifications too).</p>
<table id="inbound"><tr><th>Country</th><th>Forward to</th><th>Pipeline</th><th>Amazon</th><th>Last mail</th></tr>
{{range .Inbound}}<tr><td>{{.Country}}</td><td><code class="inbound-address">{{.EmailAddress}}</code></td><td>{{.PipelineStatus}}</td><td>{{.MarketplaceStatus}}</td><td>{{.LastInboundAt}}</td></tr>{{end}}</table>
{{if .SMTPAddr}}<p>Locally the SMTP receiver playing SES listens on <code>{{.SMTPAddr}}</code>: <code>make mail FILE=testdata/mail/en-us-utf8-qp.eml TENANT={{.Tenant}}</code>{{if .SandboxURL}}, or let the <a href="{{.SandboxURL}}/_sandbox/relay">sandbox's buyer</a> write (set the forwarding address there first){{end}}.</p>{{end}}
{{else}}<p>No inbound address yet: they come when the connection is CONNECTED.</p>{{end}}
<h2>Tickets</h2>
{{with .ReplyOutcome}}<p id="reply-outcome">Reply {{.}}</p>{{end}}
{{if .Tickets}}{{$msgs := .Messages}}<table id="tickets"><tr><th>Subject</th><th>Order</th><th>Buyer</th><th>Messages</th><th>Last message</th></tr>
{{range .Tickets}}<tr><td>{{.Subject}}</td><td>{{.OrderID}}</td><td>{{.CustomerName}}</td><td>{{.Messages}}</td><td>{{with .LastMessageAt}}{{.Format "2006-01-02 15:04"}}{{end}}</td></tr>
{{with index $msgs .ID}}<tr><td colspan="5"><ol class="messages">{{range .}}<li><b>{{.SenderName}}</b> ({{.SenderType}}{{if .Internal}}, internal{{end}}, {{.SentAt.Format "2006-01-02 15:04"}}):<pre style="white-space:pre-wrap;margin:.2rem 0">{{.Body}}</pre></li>{{end}}</ol></td></tr>{{end}}
{{if $.Replies}}<tr><td colspan="5">{{with index $.Sent .ID}}<ul class="replies">{{range .}}<li class="reply-status" data-status="{{.Status}}"><b>{{.Status}}</b>{{with .ProviderMessageID}} (SES {{.}}){{end}}{{with .Error}} <span class="err">{{.}}</span>{{end}}: {{.Body}}</li>{{end}}</ul>{{end}}
<form class="reply-box" method="post" action="/dev/reply"><input type="hidden" name="tenant" value="{{$.Tenant}}"><input type="hidden" name="ticket" value="{{.ID}}">
<textarea name="message" rows="3" style="width:100%" placeholder="Reply to the buyer (sent by e-mail to the buyer's relay alias)"></textarea><button type="submit" class="send-reply">Send reply</button></form></td></tr>{{end}}{{end}}</table>
{{else}}<p>No tickets yet: they appear after the next poll or relayed mail.</p>{{end}}
{{if .ShowMigration}}<h2>App migration (dry run)</h2>
<p>Connections still on another application than <code>{{.AppSource}}</code> (they keep polling on theirs);
<code>make migrate-app ARGS=-apply</code> asks their sellers to reconnect (NEEDS_REAUTH, app_migration).</p>
{{if .OldApps}}<table id="old-apps"><tr><th>Tenant</th><th>App</th><th>Status</th><th>Seller</th></tr>
{{range .OldApps}}<tr><td>{{.TenantID}}</td><td>{{.AppSource}}</td><td>{{.Status}}</td><td>{{.SellingPartnerID}}</td></tr>{{end}}</table>
{{else}}<p id="old-apps">None: every connection is on {{.AppSource}}.</p>{{end}}{{end}}
<p><a href="/?tenant={{.Tenant}}">Refresh</a></p>
</body></html>`))
