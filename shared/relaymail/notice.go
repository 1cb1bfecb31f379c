package relaymail

import (
	"regexp"
	"strings"
)

// KindOutgoingNotice is Amazon telling the seller that a message the
// seller SENT (a reply through the relay, a Buyer-Seller Messaging mail)
// did not reach the buyer: Relay.Notice says why, about which order and
// which buyer alias.
const KindOutgoingNotice Kind = "OUTGOING_NOTICE"

// NoticeReason is why Amazon did not deliver a seller's message.
type NoticeReason string

const (
	// NoticeBuyerOptedOut: the buyer opted out of unsolicited messages
	// (a reply on the buyer's own thread still goes through).
	NoticeBuyerOptedOut NoticeReason = "BUYER_OPTED_OUT"
	// NoticeContentRefused: the message broke the Buyer-Seller Messaging
	// communication guidelines (links, addresses, marketing…).
	NoticeContentRefused NoticeReason = "CONTENT_REFUSED"
	// NoticeSenderNotApproved: sent from an address that is neither the
	// seller's registered one nor approved under Messaging Permissions.
	NoticeSenderNotApproved NoticeReason = "SENDER_NOT_APPROVED"
	// NoticeDeliveryFailed: not delivered, for another or no stated reason.
	NoticeDeliveryFailed NoticeReason = "DELIVERY_FAILED"
)

// Notice is what an OUTGOING_NOTICE mail says about the seller's message.
type Notice struct {
	Reason  NoticeReason
	OrderID string // "" when the notice names none
	// Alias is the buyer's relay address the refused message was sent to,
	// exactly as the notice gives it; "" when it names none.
	Alias string
}

// noticePhrases recognise a notice about an outgoing message, by reason,
// most specific first (an opt-out notice also says "unable to deliver").
// The English ones are Amazon's own wording as sellers and their tools have
// published it: "We were unable to deliver the message you sent for order
// […] because the buyer has chosen to opt out of receiving unsolicited
// messages from sellers" (2017 notices quoted by Viral Launch, Counting On
// Sales, Egility); "This message was not sent as it did not meet the
// Buyer-Seller Messaging communication guidelines" and "The buyer opted out
// from receiving this message" (Seller Labs' support article); messages
// "not coming from the account's registered email address … or from an
// authorized email address will be rejected" (Seller Central help
// 201054220). The other languages are our translations of the same
// sentences, not observed text.
var noticePhrases = []struct {
	reason  NoticeReason
	phrases []string
}{
	{NoticeBuyerOptedOut, []string{
		"opt out of receiving unsolicited messages", "opted out of receiving", "opted out from receiving", "opted out of unsolicited",
		"ne pas recevoir de messages non sollicités", "refusé de recevoir des messages non sollicités",
		"keine unaufgeforderten nachrichten", "keine unerwünschten nachrichten",
		"non ricevere messaggi non richiesti", "no recibir mensajes no solicitados",
		"geen ongevraagde berichten", "inte ta emot oönskade meddelanden", "nie otrzymywać niezamówionych wiadomości",
		"istenmeyen mesajları almamayı", "未承諾のメッセージを受け取らない",
	}},
	{NoticeContentRefused, []string{
		"did not meet the buyer-seller messaging", "did not meet our guidelines", "did not meet amazon's communication guidelines",
		"did not meet the communication guidelines", "violates our communication guidelines",
		"ne respectait pas les consignes", "ne respecte pas les consignes", "ne respectait pas les règles",
		"nicht den kommunikationsrichtlinien", "nicht den richtlinien",
		"non rispettava le linee guida", "non rispetta le linee guida",
		"no cumplía las directrices", "no cumple las directrices", "no cumplía las pautas",
		"voldeed niet aan de richtlijnen", "uppfyllde inte riktlinjerna", "nie spełniała wytycznych",
		"yönergelerine uymadığı", "ガイドラインを満たしていない",
	}},
	{NoticeSenderNotApproved, []string{
		"not coming from the account's registered email address", "not from an authorized email address",
		"not an approved sender", "not been approved to send", "sender is not authorized", "from an unauthorized email address",
		"adresse e-mail non autorisée", "adresse e-mail non approuvée", "nicht autorisierten e-mail-adresse",
		"indirizzo e-mail non autorizzato", "dirección de correo electrónico no autorizada",
		"niet-geautoriseerd e-mailadres", "ej godkänd e-postadress", "nieautoryzowanego adresu e-mail",
		"yetkisiz bir e-posta adresinden", "承認されていないメールアドレス",
	}},
	// About the message, not a parcel: "the item could not be delivered"
	// in a return notice is no notice about an outgoing message.
	{NoticeDeliveryFailed, []string{
		"unable to deliver the message", "unable to deliver your message", "message could not be delivered",
		"message was not delivered", "message not delivered", "message delivery failure", "message delivery failed",
		"could not deliver your message", "e-mail could not be delivered", "email could not be delivered",
		"message n'a pas pu être remis", "message n'a pas pu être délivré", "message n'a pas été remis", "échec de remise du message",
		"nachricht konnte nicht zugestellt werden", "nachricht wurde nicht zugestellt",
		"messaggio non è stato recapitato", "messaggio non è stato consegnato", "impossibile recapitare il messaggio",
		"mensaje no se ha podido entregar", "mensaje no se pudo entregar", "no hemos podido entregar el mensaje",
		"bericht kon niet worden afgeleverd", "bericht is niet afgeleverd", "meddelande kunde inte levereras",
		"wiadomość nie mogła zostać dostarczona", "wiadomość nie została dostarczona", "mesajınız teslim edilemedi",
		"mesaj teslim edilemedi", "メッセージを配信できませんでした", "メッセージをお届けできませんでした",
	}},
}

var relayAddrRe = regexp.MustCompile(`(?i)[a-z0-9][a-z0-9._%+-]*@marketplace\.amazon\.[a-z]{2,3}(?:\.[a-z]{2})?\b`)

// outgoingNotice reads a notice about a message the seller sent, from the
// subject and the text; ok is false when the mail is not one. from is the
// mail's sender: a bounce sent by the buyer's alias itself names it.
func outgoingNotice(subject, text string, from string) (Notice, bool) {
	s := strings.ToLower(subject + "\n" + text)
	s = strings.NewReplacer("’", "'", "\u00a0", " ").Replace(s)
	for _, r := range noticePhrases {
		for _, p := range r.phrases {
			if strings.Contains(s, p) {
				n := Notice{Reason: r.reason, OrderID: findOrderID(subject)}
				if n.OrderID == "" {
					n.OrderID = findOrderID(text)
				}
				if a := relayAddrRe.FindString(text); a != "" {
					n.Alias = a
				} else if a := relayAddrRe.FindString(subject); a != "" {
					n.Alias = a
				} else if relayAddrRe.MatchString(from) {
					n.Alias = from
				}
				return n, true
			}
		}
	}
	return Notice{}, false
}
