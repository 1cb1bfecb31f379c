package relaymail

import (
	"regexp"
	"sort"
	"strings"
	"unicode"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
)

// Where an Amazon notification mail (donotreply@ and its siblings) comes
// from. One sender address can serve every marketplace (AMAZON.md, "Other
// Amazon senders"), so its domain is the last resort, after what the mail
// itself states:
//  1. Content-Language (RFC 3282): with a region ("fr-FR", "en-GB") it
//     names the country, alone the language;
//  2. the store domains its text names, mostly in its links
//     (sellercentral.amazon.de, www.amazon.co.uk): the most named wins;
//     amazon.com is no evidence (it is also Amazon's global domain, and
//     sellercentral-europe.amazon.com serves every EU store);
//  3. the language of its text, whose home marketplace (fr -> Amazon.fr)
//     is taken when the text names no store: English keeps the sender's.
// A relay mail's sender domain (marketplace.amazon.<tld>) is the buyer's
// marketplace itself and is not second-guessed.

// origin is the marketplace and language of a notification mail.
func origin(m *Mail, sender amazon.Marketplace) (amazon.Marketplace, string) {
	text := m.Subject + "\n" + m.Text
	lang := detectLanguage(m.Subject + "\n" + cutFooter(m.Text)) // the footer may be Amazon's English one
	if cl := header(m, "Content-Language"); cl != "" {
		tag := strings.TrimSpace(strings.SplitN(cl, ",", 2)[0])
		l, region, _ := strings.Cut(strings.ReplaceAll(tag, "_", "-"), "-")
		if l = strings.ToLower(l); len(l) == 2 {
			lang = l
		}
		if len(region) == 2 {
			cc := strings.ToUpper(region)
			if cc == "UK" {
				cc = "GB"
			}
			if mp, ok := amazon.MarketplaceForCountry(cc); ok {
				return mp, orDefault(lang, mp.Language)
			}
		}
	}
	if mp, ok := namedStore(text); ok {
		return mp, orDefault(lang, mp.Language)
	}
	if m, ok := amazon.HomeMarketplace(lang); ok && lang != sender.Language {
		return m, lang
	}
	return sender, orDefault(lang, sender.Language)
}

func orDefault(s, d string) string {
	if s != "" {
		return s
	}
	return d
}

var storeRe = regexp.MustCompile(`(?i)\bamazon\.(com\.(?:be|tr|mx|br|au)|co\.(?:uk|jp|za)|com|ca|fr|de|it|es|nl|se|pl|ie|eg|sa|ae|in|sg)\b`)

// namedStore is the store domain, other than amazon.com, the text names
// most.
func namedStore(text string) (amazon.Marketplace, bool) {
	counts := map[string]int{}
	for _, m := range storeRe.FindAllStringSubmatch(text, -1) {
		counts[strings.ToLower(m[1])]++
	}
	var best string
	suffixes := make([]string, 0, len(counts))
	for s := range counts {
		suffixes = append(suffixes, s)
	}
	sort.Strings(suffixes)
	for _, s := range suffixes {
		if s == "com" {
			continue
		}
		if best == "" || counts[s] > counts[best] {
			best = s
		}
	}
	if best == "" {
		return amazon.Marketplace{}, false
	}
	return amazon.MarketplaceForDomain(best)
}

// stopwords are frequent short words of each marketplace language; the
// language with the most of them in a text is the text's.
var stopwords = map[string][]string{
	"en": {"the", "and", "you", "your", "order", "please", "we", "for", "has", "this", "of", "to", "is", "with", "buyer"},
	"fr": {"le", "la", "les", "des", "et", "vous", "votre", "commande", "pour", "est", "une", "nous", "du", "pas", "acheteur"},
	"de": {"der", "die", "das", "und", "sie", "ihre", "bestellung", "ist", "nicht", "für", "wir", "eine", "bitte", "den", "käufer"},
	"it": {"il", "di", "che", "la", "per", "ordine", "non", "sono", "una", "della", "gentile", "è", "acquirente", "del", "suo"},
	"es": {"el", "la", "que", "y", "en", "los", "pedido", "su", "por", "una", "para", "del", "comprador", "hemos", "las"},
	"nl": {"de", "het", "een", "en", "van", "uw", "bestelling", "niet", "voor", "wij", "met", "koper", "is", "dat", "u"},
	"sv": {"och", "att", "det", "som", "är", "för", "din", "beställning", "inte", "vi", "med", "köparen", "har", "en", "av"},
	"pl": {"i", "w", "na", "nie", "się", "z", "do", "zamówienie", "jest", "że", "dla", "kupujący", "prosimy", "zamówienia", "od"},
	"tr": {"ve", "bir", "bu", "için", "sipariş", "siparişi", "ile", "olarak", "değil", "alıcı", "lütfen", "siparişiniz", "tarafından", "da", "mi"},
	"pt": {"o", "de", "que", "e", "do", "da", "em", "pedido", "seu", "para", "não", "uma", "comprador", "os", "por"},
}

// detectLanguage is the text's language by its stopwords (Japanese by its
// kana); "" when no language stands out.
func detectLanguage(text string) string {
	kana := 0
	for _, r := range text {
		if unicode.In(r, unicode.Hiragana, unicode.Katakana) {
			kana++
		}
	}
	if kana >= 3 {
		return "ja"
	}
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) })
	seen := map[string]int{}
	for _, w := range words {
		seen[w]++
	}
	best, bestN, second := "", 0, 0
	langs := make([]string, 0, len(stopwords))
	for l := range stopwords {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	for _, l := range langs {
		n := 0
		for _, w := range stopwords[l] {
			n += seen[w]
		}
		switch {
		case n > bestN:
			best, bestN, second = l, n, bestN
		case n > second:
			second = n
		}
	}
	if bestN < 3 || bestN*2 < second*3 { // too few, or no clear lead
		return ""
	}
	return best
}

// header is a header's first value, its name matched case-insensitively.
func header(m *Mail, name string) string {
	for k, v := range m.Headers {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
	}
	return ""
}
