package inboundmail_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
)

// TestSandboxBuyerMessageBecomesATicket: the sandbox plays Amazon's relay
// through its admin API (the seller's forwarding address, a buyer's
// message with an attachment); the mail reaches the stack's SMTP receiver
// and becomes a ticket with the order's buyer and only their words.
func TestSandboxBuyerMessageBecomesATicket(t *testing.T) {
	m := newStackMail(t)
	sandboxURL := testenv.Env(t, "AMAZON_SANDBOX_URL")
	tenant, _, addrs := m.tenant("CONNECTED", "A13V1IB3VIYZZH")

	var sellers struct {
		Sellers []struct{ ID, Region string } `json:"sellers"`
	}
	call(t, http.MethodGet, sandboxURL+"/_sandbox/sellers", nil, &sellers)
	seller := "" // the last EU seller: it sells on Amazon.fr
	for _, s := range sellers.Sellers {
		if s.Region == "eu" {
			seller = s.ID
		}
	}
	call(t, http.MethodPut, sandboxURL+"/_sandbox/sellers/"+seller+"/forwarding", map[string]string{"address": addrs[0].EmailAddress}, nil)
	var order struct{ OrderID string }
	call(t, http.MethodPost, sandboxURL+"/_sandbox/sellers/"+seller+"/orders", map[string]any{"marketplaceId": "A13V1IB3VIYZZH"}, &order)

	var sent struct{ OrderID, From, Subject string }
	call(t, http.MethodPost, sandboxURL+"/_sandbox/sellers/"+seller+"/buyer-messages", map[string]any{
		"orderId": order.OrderID, "language": "fr", "text": "Bonjour, le colis est arrivé abîmé. Photo jointe.",
		"attachment": map[string]string{"filename": "colis.png", "contentType": "image/png", "base64": base64.StdEncoding.EncodeToString([]byte("\x89PNG fake"))},
	}, &sent)
	if sent.OrderID != order.OrderID || !strings.Contains(sent.Subject, "Demande de renseignements") {
		t.Fatalf("relayed %+v", sent)
	}
	m.drain()
	got := m.tickets(tenant)
	if len(got) != 1 || got[0].ExternalID != order.OrderID || got[0].CustomerEmail != sent.From ||
		got[0].CustomerName == "" || got[0].CustomerName == "Amazon Buyer" ||
		len(got[0].Bodies) != 1 || got[0].Bodies[0] != "Bonjour, le colis est arrivé abîmé. Photo jointe." {
		t.Fatalf("tickets %+v", got)
	}
	var atts int
	if err := m.pool.QueryRow(t.Context(), `SELECT count(*) FROM keybuzz_amazon."InboundMailAttachment" WHERE "tenantId" = $1 AND "filename" = 'colis.png'`, tenant).Scan(&atts); err != nil || atts != 1 {
		t.Errorf("attachments %d %v", atts, err)
	}
}

func call(t *testing.T, method, url string, in, out any) {
	t.Helper()
	var body bytes.Buffer
	if in != nil {
		_ = json.NewEncoder(&body).Encode(in)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, url, &body)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e bytes.Buffer
		_, _ = e.ReadFrom(resp.Body)
		t.Fatalf("%s %s: %s %s", method, url, resp.Status, e.String())
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}
