package relaymail

import (
	"errors"
	"regexp"
	"strings"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
)

// Kind is what an Amazon mail is about; it types the ticket message.
type Kind string

const (
	KindBuyerMessage Kind = "BUYER_MESSAGE"        // a buyer wrote through the relay
	KindCancellation Kind = "CANCELLATION_REQUEST" // donotreply@: a buyer asked to cancel
	KindReturn       Kind = "RETURN_REQUEST"       // donotreply@: a buyer asked to return
	KindAtoZ         Kind = "ATOZ_CLAIM"           // atoz-guarantee-no-reply@
	KindChargeback   Kind = "CHARGEBACK"           // cb-seller-notification@
	KindNotice       Kind = "AMAZON_NOTICE"        // another donotreply@ mail naming an order
	// KindOutgoingNotice (notice.go): Amazon did not deliver a message the
	// seller sent; Relay.Notice says why.
)

// ErrNotAmazon is a mail whose From is neither Amazon's buyer relay nor one
// of its notification senders.
var ErrNotAmazon = errors.New("sender is not Amazon's relay or notifications")

// Relay is an Amazon mail understood: who wrote, about which order, in which
// marketplace and language, and only their words.
type Relay struct {
	Kind          Kind
	MarketplaceID string
	Country       string // the marketplace's country code ("FR", "GB")
	SenderDomain  string // "marketplace.amazon.fr", "amazon.de"
	// BuyerName is the buyer's display name without " - Amazon Marketplace";
	// "" when the mail does not give it.
	BuyerName string
	// BuyerAlias is the relay address exactly as sent (replies go to it);
	// BuyerKey is the same address without its "+…" suffix, which identifies
	// the buyer across mails. Both "" for notification mails, except that an
	// OUTGOING_NOTICE naming the alias it concerns has that alias's BuyerKey
	// (so a notice naming no order threads with the buyer's mails).
	BuyerAlias string
	BuyerKey   string
	OrderID    string // "" when the mail names none
	ASIN       string
	Topic      string
	Language   string // ISO 639-1 ("fr", "ja")
	// Words is the buyer's own text: what lies between Amazon's message
	// markers, without quoted earlier messages; the whole text (less
	// Amazon's token line) when there is no marker.
	Words string
	// Marked says Words came from between Amazon's markers.
	Marked bool
	// Notice is set for KindOutgoingNotice only: why Amazon did not deliver
	// the seller's message, its order and the buyer alias it was sent to.
	Notice *Notice
}

// ThreadKey is the ticket thread the mail belongs to: the order when the
// mail names one (the same key every channel uses for an order), the buyer's
// relay alias otherwise.
func (r Relay) ThreadKey() string {
	if r.OrderID != "" {
		return r.OrderID
	}
	if r.BuyerKey != "" {
		return "buyer:" + r.BuyerKey
	}
	return ""
}

// notificationSenders are Amazon's notification mailboxes on amazon.<tld>.
// no-reply, noreply and seller-notification: notices about the seller's
// outgoing messages come from a mailbox Amazon does not document; these are
// the ones sellers' tools name. What such a mail is comes from its text.
var notificationSenders = map[string]Kind{
	"donotreply":              KindNotice,
	"do-not-reply":            KindNotice,
	"no-reply":                KindNotice,
	"noreply":                 KindNotice,
	"seller-notification":     KindNotice,
	"atoz-guarantee-no-reply": KindAtoZ,
	"cb-seller-notification":  KindChargeback,
}

// Sender classifies a From address: the Kind its mails have (KindBuyerMessage
// for the relay, the notification kind otherwise), the marketplace, and the
// domain. ok is false for anything not exactly an Amazon store domain
// ("marketplace.amazon.fr.example.com" is not Amazon).
func Sender(addr string) (kind Kind, mp amazon.Marketplace, domain string, ok bool) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "", amazon.Marketplace{}, "", false
	}
	local, domain := strings.ToLower(addr[:at]), strings.ToLower(addr[at+1:])
	if rest, found := strings.CutPrefix(domain, "marketplace.amazon."); found {
		if mp, ok := amazon.MarketplaceForDomain(rest); ok {
			return KindBuyerMessage, mp, domain, true
		}
		return "", amazon.Marketplace{}, domain, false
	}
	if rest, found := strings.CutPrefix(domain, "amazon."); found {
		k, known := notificationSenders[local]
		if mp, ok := amazon.MarketplaceForDomain(rest); ok && known {
			return k, mp, domain, true
		}
	}
	return "", amazon.Marketplace{}, domain, false
}

// IsAmazonSender says the address claims one of Amazon's senders.
func IsAmazonSender(addr string) bool {
	_, _, _, ok := Sender(addr)
	return ok
}

var (
	orderIDRe = regexp.MustCompile(`(?:^|[^0-9])(\d{3}-\d{7}-\d{7})(?:[^0-9]|$)`)
	asinRe    = regexp.MustCompile(`ASIN\s*[:：]\s*([A-Z0-9]{10})\b`)
	// A marker line: ten or more dashes, a label, ten or more dashes (Amazon
	// writes 13). Mail clients' separators have fewer (Thunderbird's
	// "-------- Original Message --------" 8, Outlook's 5) and their labels
	// are refused by name too (clientSeparatorRe).
	markerRe   = regexp.MustCompile(`^\s*-{10,}\s*([^-].*?)\s*-{10,}\s*$`)
	dashesRe   = regexp.MustCompile(`^\s*-{10,}\s*$`)
	tokenRe    = regexp.MustCompile(`\[commMgrTok:[^\]]*\]`)
	replyRe    = regexp.MustCompile(`(?i)^\s*((re|aw|tr|rv|sv|odp|antw|ynt|fw|fwd|wg)\s*:\s*)+`)
	nameSuffix = regexp.MustCompile(`(?i)\s*[-–—]\s*amazon(\s+marketplace|\s*マーケットプレイス|\.\S+)?\s*$`)
)

// subjectPhrases are the relay subject's "… from Amazon customer <Name>"
// phrase per language: the text before it is the topic, the text after it
// (up to the order parenthesis) the buyer's name.
var subjectPhrases = []struct{ lang, phrase string }{
	{"en", "inquiry from Amazon customer"},
	{"en", "enquiry from Amazon customer"}, // Amazon.co.uk, .ie: British spelling
	{"en", "message from Amazon customer"},
	{"fr", "de la part du client Amazon"},
	{"de", "von Amazon-Kunde"},
	{"de", "von Amazon-Kundin"},
	{"it", "dal cliente Amazon"},
	{"es", "del cliente de Amazon"},
	{"pt", "do cliente da Amazon"},
	{"nl", "van Amazon-klant"},
	{"sv", "från Amazon-kunden"},
	{"sv", "från Amazon-kund"},
	{"pl", "od klienta Amazon"},
	{"tr", "Amazon müşterisi"},
	{"ja", "Amazonのお客様"},
	{"ja", "Amazon カスタマー"},
}

// marketplaceLanguage is the language a marketplace writes in when the mail
// itself does not say.
var marketplaceLanguage = map[string]string{
	"US": "en", "CA": "en", "MX": "es", "BR": "pt", "FR": "fr", "DE": "de", "GB": "en", "IT": "it",
	"ES": "es", "NL": "nl", "BE": "fr", "SE": "sv", "PL": "pl", "IE": "en", "TR": "tr", "EG": "ar",
	"SA": "ar", "AE": "en", "IN": "en", "ZA": "en", "JP": "ja", "AU": "en", "SG": "en",
}

// Understand reads an Amazon mail. ErrNotAmazon: the sender is not Amazon
// (the caller records that and makes no ticket). It never fails otherwise:
// a shape it does not know keeps the whole text as the message.
func Understand(m *Mail) (Relay, error) {
	kind, mp, domain, ok := Sender(m.From.Address)
	if !ok {
		return Relay{}, ErrNotAmazon
	}
	r := Relay{Kind: kind, MarketplaceID: mp.ID, Country: mp.CountryCode, SenderDomain: domain}
	subject := replyRe.ReplaceAllString(m.Subject, "")
	lang, topic, subjectName := readSubject(subject)
	r.Language = lang
	if r.Language == "" {
		r.Language = marketplaceLanguage[mp.CountryCode]
	}
	r.OrderID = findOrderID(subject)
	if r.OrderID == "" {
		r.OrderID = findOrderID(m.Text)
	}
	if a := asinRe.FindStringSubmatch(m.Text); a != nil {
		r.ASIN = a[1]
	}
	if kind == KindBuyerMessage && systemMailbox(m.From.Address) {
		// Not a buyer: Amazon's own mailbox on the relay domain.
		if n, ok := outgoingNotice(subject, m.Text, ""); ok {
			r.Kind, r.Notice, r.Topic, r.Words = KindOutgoingNotice, &n, strings.TrimSpace(subject), cutFooter(m.Text)
			if r.OrderID == "" {
				r.OrderID = n.OrderID
			}
			if n.Alias != "" {
				r.BuyerKey = aliasKey(n.Alias)
			}
			r.Language = orDefault(detectLanguage(subject+"\n"+m.Text), r.Language)
			return r, nil
		}
	}
	if kind == KindBuyerMessage {
		r.BuyerAlias = m.From.Address
		r.BuyerKey = aliasKey(m.From.Address)
		r.BuyerName = strings.TrimSpace(nameSuffix.ReplaceAllString(m.From.Name, ""))
		if r.BuyerName == "" || strings.EqualFold(r.BuyerName, "amazon") {
			r.BuyerName = subjectName
		}
		r.Topic = topic
		r.Words, r.Marked = buyerWords(m.Text)
		return r, nil
	}
	r.Topic = strings.TrimSpace(subject)
	mp, r.Language = origin(m, mp)
	r.MarketplaceID, r.Country = mp.ID, mp.CountryCode
	if n, ok := outgoingNotice(subject, m.Text, m.From.Address); ok {
		r.Kind, r.Notice = KindOutgoingNotice, &n
		if r.OrderID == "" {
			r.OrderID = n.OrderID
		}
		if n.Alias != "" {
			r.BuyerKey = aliasKey(n.Alias)
		}
		r.Words = cutFooter(m.Text)
		return r, nil
	}
	if kind == KindNotice {
		r.Kind = noticeKind(subject)
	}
	r.BuyerName = labelledName(m.Text)
	r.Words = cutFooter(m.Text)
	return r, nil
}

// systemMailbox says the address's local part is a mailbox of Amazon's, not
// a buyer's alias (donotreply@marketplace.amazon.fr, mailer-daemon@…).
func systemMailbox(addr string) bool {
	local, _, _ := strings.Cut(strings.ToLower(addr), "@")
	switch local {
	case "donotreply", "do-not-reply", "no-reply", "noreply", "mailer-daemon", "postmaster":
		return true
	}
	return false
}

func findOrderID(s string) string {
	if m := orderIDRe.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// aliasKey is the relay address without a "+…" suffix on its local part.
func aliasKey(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return strings.ToLower(addr)
	}
	local := addr[:at]
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	return strings.ToLower(local + addr[at:])
}

func readSubject(s string) (lang, topic, name string) {
	for _, p := range subjectPhrases {
		i := strings.Index(strings.ToLower(s), strings.ToLower(p.phrase))
		if i < 0 {
			continue
		}
		topic = trimTopic(s[:i])
		rest := s[i+len(p.phrase):]
		if j := strings.IndexAny(rest, "(（"); j >= 0 {
			rest = rest[:j]
		}
		name = strings.TrimSpace(strings.Trim(strings.TrimSpace(rest), ":"))
		return p.lang, topic, name
	}
	if i := strings.IndexAny(s, "(（"); i > 0 {
		topic = strings.TrimSpace(s[:i])
	} else {
		topic = strings.TrimSpace(s)
	}
	return "", topic, ""
}

// inquiryNouns end a localised subject's topic part ("Versand: Anfrage von
// Amazon-Kunde …"): the noun is not the topic.
var inquiryNouns = []string{"demande de renseignements", "anfrage", "richiesta", "consulta", "vraag", "förfrågan",
	"zapytanie", "pergunta", "soru", "inquiry", "enquiry"}

func trimTopic(s string) string {
	t := strings.TrimSpace(strings.TrimRight(strings.TrimSpace(s), ":："))
	low := strings.ToLower(t)
	for _, n := range inquiryNouns {
		if strings.HasSuffix(low, n) {
			t = t[:len(t)-len(n)]
			break
		}
	}
	return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(t), ":："))
}

// footerStarts begin Amazon's footer when a single (newer-form) marker
// opens the message and nothing closes it.
var footerStarts = []string{
	"[commmgrtok:", "was this email helpful", "for your information", "pour votre information", "to respond to this", "resolve case", "copyright", "©",
	"you can reply to this", "vous pouvez répondre", "sie können auf diese", "this message was sent",
	"cet e-mail a été envoyé", "diese e-mail wurde", "we hope to see you again", "this email was sent",
}

// buyerWords takes the text between Amazon's markers; with one marker, what
// follows it up to the footer; with none, the whole text. Quoted earlier
// messages are removed either way.
func buyerWords(text string) (string, bool) {
	lines := strings.Split(text, "\n")
	var markers []int
	for i, l := range lines {
		if m := markerRe.FindStringSubmatch(l); m != nil && !clientSeparatorRe.MatchString(m[1]) {
			markers = append(markers, i)
		}
	}
	var words []string
	marked := true
	switch {
	case len(markers) >= 2:
		words = lines[markers[0]+1 : markers[1]]
	case len(markers) == 1:
		words = lines[markers[0]+1:]
		for i, l := range words {
			if dashesRe.MatchString(l) || hasFooterStart(l) {
				words = words[:i]
				break
			}
		}
	default:
		words, marked = lines, false
	}
	out := strings.TrimSpace(tokenRe.ReplaceAllString(strings.Join(stripQuoted(words), "\n"), ""))
	return normalise(out), marked
}

// cutFooter is a notification's text up to Amazon's footer.
func cutFooter(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if hasFooterStart(l) {
			lines = lines[:i]
			break
		}
	}
	return normalise(tokenRe.ReplaceAllString(strings.Join(lines, "\n"), ""))
}

func hasFooterStart(l string) bool {
	l = strings.ToLower(strings.TrimSpace(l))
	for _, f := range footerStarts {
		if strings.HasPrefix(l, f) {
			return true
		}
	}
	return false
}

// noticeKind reads a donotreply@ subject in the marketplace languages.
func noticeKind(subject string) Kind {
	s := strings.ToLower(subject)
	for _, w := range []string{"cancel", "annul", "stornier", "storno", "cancela", "anula", "annuler", "anulow", "iptal", "キャンセル", "annuller"} {
		if strings.Contains(s, w) {
			return KindCancellation
		}
	}
	for _, w := range []string{"return", "retour", "rücksend", "rückgabe", "reso", "devoluc", "devoluç", "zwrot", "iade", "返品", "retur"} {
		if strings.Contains(s, w) {
			return KindReturn
		}
	}
	return KindNotice
}

var buyerLabelRe = regexp.MustCompile(`(?im)^\s*(buyer name|buyer|customer name|customer|nom de l'acheteur|acheteur|client|name des käufers|käufer|kunde|nome dell'acquirente|acquirente|nombre del comprador|comprador|naam koper|koper|köparens namn|imię i nazwisko kupującego|kupujący|alıcı adı|購入者名|購入者)\s*[:：]\s*(.+?)\s*$`)

// labelledName finds "Buyer name: X" (or its translation) in a notification.
func labelledName(text string) string {
	if m := buyerLabelRe.FindStringSubmatch(text); m != nil {
		return m[2]
	}
	return ""
}
