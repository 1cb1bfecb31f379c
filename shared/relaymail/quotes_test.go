package relaymail

import (
	"strings"
	"testing"
)

func TestStripQuoted(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"gmail pl wrapped", "Dziękuję.\n\nwt., 1 gru 2026 o 09:00 Sklep <\nsklep@inbound.example> napisał(a):\n> Proszę", "Dziękuję.\n"},
		{"gmail en wrapped", "Fine.\nOn Tue, Dec 1, 2026 at 9:00 AM Seller Support <\nseller@inbound.example> wrote:\n> Hi", "Fine."},
		{"buyer's last line kept before an attribution", "Grazie,\nGiulia\nIl 01/12/2026 09:00, Negozio ha scritto:\n> ok", "Grazie,\nGiulia"},
		{"words that merely start like an attribution", "On Monday the parcel was late.\nPlease check.", "On Monday the parcel was late.\nPlease check."},
		{"a From: line in the buyer's words is no header block", "From: my neighbour, who took it in.\nThanks", "From: my neighbour, who took it in.\nThanks"},
		{"signature only after text", "Sent from my iPhone", "Sent from my iPhone"},
		{"outlook block in Italian", "Va bene.\n\nDa: Negozio <n@inbound.example>\nInviato: martedì 1 dicembre 2026 09:00\nA: g@marketplace.amazon.it\nOggetto: R: Spedizione", "Va bene.\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(stripQuoted(strings.Split(c.in, "\n")), "\n")
			if got != c.want {
				t.Errorf("stripQuoted = %q, want %q", got, c.want)
			}
		})
	}
}

func TestClientSeparatorIsNoAmazonMarker(t *testing.T) {
	text := "Order ID: 111-2223334-5556667\n------------- Message: -------------\nYes please.\n\n-------- Original Message --------\nFrom: seller\n\nShall we?\n"
	words, marked := buyerWords(text)
	if words != "Yes please." || !marked {
		t.Fatalf("buyerWords = %q, %v", words, marked)
	}
}
