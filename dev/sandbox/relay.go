package sandbox

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
)

// The sandbox plays Amazon's buyer-message relay: a seller sets the address
// buyer messages are forwarded to (Seller Central > Settings > Notification
// Preferences > Messaging > Buyer Messages), and a buyer writes about an
// order; the sandbox composes the mail in the relay's shape (the shapes of
// testdata/mail) and sends it by SMTP to the forwarding address, through
// Config.RelaySMTP (the local SMTP receiver that plays SES).

// relay is the sandbox's relay state; guarded by its own lock.
type relay struct {
	mu         sync.Mutex
	forwarding map[string]string // seller id -> address
	sent       []RelayedMessage
}

// RelayedMessage is a buyer message the sandbox relayed.
type RelayedMessage struct {
	SellerID      string    `json:"sellerId"`
	To            string    `json:"to"`
	From          string    `json:"from"`
	MessageID     string    `json:"messageId"`
	Subject       string    `json:"subject"`
	OrderID       string    `json:"orderId"`
	MarketplaceID string    `json:"marketplaceId"`
	Language      string    `json:"language"`
	SentAt        time.Time `json:"sentAt"`
}

// BuyerMessage is what a buyer writes.
type BuyerMessage struct {
	OrderID       string `json:"orderId"`       // "" picks the seller's latest order
	MarketplaceID string `json:"marketplaceId"` // "" is the order's
	Language      string `json:"language"`      // "" is the marketplace's
	Topic         string `json:"topic"`         // "Shipping", "Retour"…; "" is a generic one
	Text          string `json:"text"`
	Attachment    *struct {
		Filename    string `json:"filename"`
		ContentType string `json:"contentType"`
		Base64      string `json:"base64"`
	} `json:"attachment,omitempty"`
}

// relayLanguage is the subject and body wording per language: the
// documented English, French and German shapes, and the others as
// testdata/mail writes them.
var relayLanguage = map[string]struct{ subject, orderLabel, topic string }{
	"en": {"%s inquiry from Amazon customer %s (Order: %s)", "Order ID: %s", "Shipping"},
	"fr": {"%s : Demande de renseignements de la part du client Amazon %s (Commande : %s)", "Numéro de commande : %s", "Livraison"},
	"de": {"%s: Anfrage von Amazon-Kunde %s (Bestellung: %s)", "Bestellnummer: %s", "Versand"},
	"it": {"%s: Richiesta dal cliente Amazon %s (Ordine: %s)", "Numero ordine: %s", "Spedizione"},
	"es": {"%s: Consulta del cliente de Amazon %s (Pedido: %s)", "Número de pedido: %s", "Envío"},
}

// SetForwarding sets where a seller's buyer messages go ("" stops them).
func (s *Server) SetForwarding(sellerID, address string) {
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	if address == "" {
		delete(s.relay.forwarding, sellerID)
		return
	}
	s.relay.forwarding[sellerID] = strings.TrimSpace(address)
}

// Forwarding is the seller's forwarding address ("" when none).
func (s *Server) Forwarding(sellerID string) string {
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	return s.relay.forwarding[sellerID]
}

// SendBuyerMessage relays a buyer's message about one of the seller's
// orders to the seller's forwarding address.
func (s *Server) SendBuyerMessage(sellerID string, m BuyerMessage) (RelayedMessage, error) {
	to := s.Forwarding(sellerID)
	if to == "" {
		return RelayedMessage{}, fmt.Errorf("seller %s has no forwarding address for buyer messages", sellerID)
	}
	if s.cfg.RelaySMTP == "" {
		return RelayedMessage{}, fmt.Errorf("the sandbox has no SMTP relay (--relay-smtp)")
	}
	if strings.TrimSpace(m.Text) == "" && m.Attachment == nil {
		return RelayedMessage{}, fmt.Errorf("a buyer message needs text or an attachment")
	}
	s.mu.Lock()
	idx, ok := s.sellerBy[sellerID]
	if !ok {
		s.mu.Unlock()
		return RelayedMessage{}, fmt.Errorf("unknown seller %s", sellerID)
	}
	st := s.storeLocked(s.sellers[idx])
	var o *order
	if m.OrderID != "" {
		o = st.byID[m.OrderID]
	} else if len(st.orders) > 0 {
		o = st.orders[len(st.orders)-1]
	}
	if o == nil {
		s.mu.Unlock()
		return RelayedMessage{}, fmt.Errorf("seller %s has no order %q", sellerID, m.OrderID)
	}
	orderID, buyerName, buyerEmail, mp := o.id, o.buyerName, o.buyerEmail, o.marketplaceID
	var title, asin string
	if len(o.items) > 0 {
		title, asin = o.items[0].title, o.items[0].asin
	}
	s.mu.Unlock()
	if m.MarketplaceID != "" {
		mp = m.MarketplaceID
	}
	lang := m.Language
	if _, ok := relayLanguage[lang]; !ok {
		lang = marketplaceInfo[mp].tld
		if _, ok := relayLanguage[lang]; !ok {
			lang = "en"
		}
	}
	raw, msg, err := composeRelay(relayParts{
		to: to, buyerName: buyerName, buyerEmail: buyerEmail, tld: marketplaceInfo[mp].tld, lang: lang,
		topic: m.Topic, orderID: orderID, title: title, asin: asin, text: m.Text, at: s.clock.Now().UTC(),
		attachment: m.Attachment,
	})
	if err != nil {
		return RelayedMessage{}, err
	}
	if err := smtpses.Send(s.cfg.RelaySMTP, "bounce@marketplace.amazon."+marketplaceInfo[mp].tld, []string{to}, raw); err != nil {
		return RelayedMessage{}, fmt.Errorf("relay to %s: %w", to, err)
	}
	msg.SellerID, msg.MarketplaceID = sellerID, mp
	s.relay.mu.Lock()
	s.relay.sent = append(s.relay.sent, msg)
	s.relay.mu.Unlock()
	s.log.Info("sandbox: buyer message relayed", "seller", sellerID, "order", orderID, "language", lang)
	return msg, nil
}

type relayParts struct {
	to, buyerName, buyerEmail, tld, lang, topic, orderID, title, asin, text string
	at                                                                      time.Time
	attachment                                                              *struct {
		Filename    string `json:"filename"`
		ContentType string `json:"contentType"`
		Base64      string `json:"base64"`
	}
}

// composeRelay writes a relay mail: From "<Name> - Amazon Marketplace"
// <alias>, the localised subject with the order, the order label, the item
// line, the buyer's text between Amazon's markers, Amazon's footer with a
// commMgrTok token; UTF-8 quoted-printable, multipart/mixed with an
// attachment when there is one.
func composeRelay(p relayParts) ([]byte, RelayedMessage, error) {
	w := relayLanguage[p.lang]
	topic := p.topic
	if topic == "" {
		topic = w.topic
	}
	subject := fmt.Sprintf(w.subject, topic, p.buyerName, p.orderID)
	idb := make([]byte, 12)
	_, _ = rand.Read(idb)
	msgID := fmt.Sprintf("0102019c%s-sandbox@eu-west-1.amazonses.com", hex.EncodeToString(idb))
	tok := sha256.Sum256([]byte(msgID))
	body := fmt.Sprintf("%s\n1 x %s [ASIN: %s]\n\n------------- Begin message -------------\n\n%s\n\n------------- End message -------------\n\n"+
		"For Your Information: To help arrive at a successful resolution, please respond to this message within 24 hours.\n\n"+
		"Was this email helpful?\nhttps://sellercentral.amazon.%s/messaging/inbox\n\n"+
		"Copyright %d Amazon, Inc. or its affiliates. All rights reserved.\n[commMgrTok:%s]\n",
		fmt.Sprintf(w.orderLabel, p.orderID), p.title, p.asin, strings.TrimSpace(p.text), p.tld, p.at.Year(), strings.ToUpper(hex.EncodeToString(tok[:8])))
	var qp bytes.Buffer
	qw := quotedprintable.NewWriter(&qp)
	_, _ = qw.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n")))
	_ = qw.Close()

	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s <%s>\r\n", mime.QEncoding.Encode("utf-8", p.buyerName+" - Amazon Marketplace"), p.buyerEmail)
	fmt.Fprintf(&b, "To: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: %s\r\nMIME-Version: 1.0\r\n",
		p.to, mime.QEncoding.Encode("utf-8", subject), msgID, p.at.Format(time.RFC1123Z))
	textPart := "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp.String()
	if p.attachment == nil {
		b.WriteString(textPart)
	} else {
		data, err := base64.StdEncoding.DecodeString(p.attachment.Base64)
		if err != nil {
			return nil, RelayedMessage{}, fmt.Errorf("attachment: %w", err)
		}
		if len(data) > 10<<20 {
			return nil, RelayedMessage{}, fmt.Errorf("attachment above Amazon's 10 MB")
		}
		ct := p.attachment.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		name := mime.QEncoding.Encode("utf-8", p.attachment.Filename)
		bnd := "----=_Part_" + hex.EncodeToString(idb[:6])
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n%s\r\n--%s\r\n", bnd, bnd, textPart, bnd)
		fmt.Fprintf(&b, "Content-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", ct, name, name)
		enc := base64.StdEncoding.EncodeToString(data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n--" + bnd + "--\r\n")
	}
	return b.Bytes(), RelayedMessage{To: p.to, From: p.buyerEmail, MessageID: msgID, Subject: subject, OrderID: p.orderID,
		Language: p.lang, SentAt: p.at}, nil
}

func (s *Server) relayRoutes(m *http.ServeMux) {
	m.HandleFunc("PUT /_sandbox/sellers/{id}/forwarding", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		var in struct {
			Address string `json:"address"`
		}
		if !decode(w, r, &in) {
			return
		}
		if in.Address != "" && !strings.Contains(in.Address, "@") {
			adminError(w, http.StatusBadRequest, "address: want an e-mail address")
			return
		}
		s.SetForwarding(id, in.Address)
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"sellerId": id, "address": in.Address})
	}))
	m.HandleFunc("GET /_sandbox/sellers/{id}/forwarding", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"sellerId": id, "address": s.Forwarding(id)})
	}))
	m.HandleFunc("POST /_sandbox/sellers/{id}/buyer-messages", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		var in BuyerMessage
		if !decode(w, r, &in) {
			return
		}
		msg, err := s.SendBuyerMessage(id, in)
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, jsonType, msg)
	}))
	m.HandleFunc("GET /_sandbox/buyer-messages", func(w http.ResponseWriter, r *http.Request) {
		s.relay.mu.Lock()
		sent := append([]RelayedMessage{}, s.relay.sent...)
		s.relay.mu.Unlock()
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"messages": sent})
	})
	m.HandleFunc("GET /_sandbox/relay", s.handleRelayPage)
}

// handleRelayPage is the consent-side page of the relay: per seller, the
// Seller Central step (the forwarding address) and a buyer's message form.
func (s *Server) handleRelayPage(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	b.WriteString(`<!doctype html><meta charset="utf-8"><title>Amazon sandbox: buyer messages</title>
<style>body{font-family:sans-serif;max-width:52em;margin:2em auto}fieldset{margin:1em 0}label{display:block;margin:.3em 0}input,textarea,select{width:100%}</style>
<h1>Buyer messages (sandbox of Amazon's relay)</h1>
<p>Seller Central &gt; Settings &gt; Notification Preferences &gt; Messaging &gt; Buyer Messages: the address buyer messages are forwarded to.</p>`)
	for _, sl := range s.Sellers() {
		id := html.EscapeString(sl.ID)
		fmt.Fprintf(&b, `<fieldset><legend>%s (%s)</legend>
<form onsubmit="event.preventDefault();send('PUT','/_sandbox/sellers/%s/forwarding',{address:this.address.value},this)">
<label>Forwarding address <input name="address" value="%s" placeholder="amazon.&lt;tenant&gt;.fr.&lt;token&gt;@inbound.keybuzz.test"></label><button>Save</button></form>
<form onsubmit="event.preventDefault();sendMessage('%s',this)">
<label>Order id (empty: the latest order) <input name="orderId"></label>
<label>Language <select name="language"><option value="">the marketplace's</option><option>en</option><option>fr</option><option>de</option><option>it</option><option>es</option></select></label>
<label>Message <textarea name="text" rows="3">Bonjour, où en est ma commande ?</textarea></label>
<label>Attachment (optional) <input type="file" name="file"></label><button>Send as the buyer</button></form><output></output></fieldset>`,
			html.EscapeString(sl.Name), id, id, html.EscapeString(s.Forwarding(sl.ID)), id)
	}
	b.WriteString(`<script>
async function send(method,url,body,form){const r=await fetch(url,{method,headers:{'Content-Type':'application/json'},body:JSON.stringify(body)});form.parentNode.querySelector('output').textContent=r.status+' '+await r.text()}
async function sendMessage(id,f){const body={orderId:f.orderId.value,language:f.language.value,text:f.text.value};const file=f.file.files[0];
if(file){const buf=new Uint8Array(await file.arrayBuffer());let s='';for(const c of buf)s+=String.fromCharCode(c);body.attachment={filename:file.name,contentType:file.type,base64:btoa(s)}}
send('POST','/_sandbox/sellers/'+id+'/buyer-messages',body,f)}
</script>`)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}
