package reply

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The codes of a refused reply text, each naming the rule it broke; the
// send-reply route answers them with 400 and stores nothing.
const (
	CodeEmpty          = "empty_message"             // nothing left after trimming
	CodeTooLong        = "message_too_long"          // over Rules.MaxChars characters after trimming
	CodeBlockedKeyword = "blocked_keyword"           // a word of the keyword screen
	CodeLink           = "link_not_allowed"          // a link whose host is not Amazon's (nor allowed)
	CodeEmailAddress   = "email_address_not_allowed" // an email address
	CodePhoneNumber    = "phone_number_not_allowed"  // a phone number
)

// Violation is a reply text that breaks a rule: Code names the rule, Message
// says it to the agent, Match is the part of the text that broke it.
type Violation struct {
	Code    string
	Message string
	Match   string
}

func (v *Violation) Error() string { return v.Code + ": " + v.Message }

// DefaultMaxChars is KeyBuzz's limit on a reply, in characters after trimming.
const DefaultMaxChars = 2000

// DefaultBlockedKeywords is KeyBuzz's keyword screen (its backend's
// amazonReply.routes.ts): replies naming one are not sent.
var DefaultBlockedKeywords = []string{
	"refund", "legal action", "lawsuit", "attorney", "lawyer", "court", "fraud", "scam", "police",
}

// DefaultAllowedLinkDomains are the domains whose links a reply may carry:
// Amazon's stores (amazon.<tld> and its subdomains) and its short links.
// Amazon's guidelines refuse every other link but those an order needs.
var DefaultAllowedLinkDomains = []string{"amzn.to", "amzn.eu", "amzn.com", "a.co"}

// Rules are what a reply's text must satisfy before it is queued: Amazon's
// content rules (no link but Amazon's, no email address, no phone number)
// and KeyBuzz's (1 to MaxChars characters, its keyword screen). The zero
// value is not usable; start from DefaultRules.
type Rules struct {
	// MaxChars is the longest text, in characters after trimming.
	MaxChars int
	// BlockedKeywords is the keyword screen, matched case-insensitively as
	// whole words ("court" does not block "courtesy"); empty screens nothing.
	BlockedKeywords []string
	// AllowedLinkDomains are the domains (and their subdomains) a link may
	// point at besides Amazon's stores (amazon.<tld>, always allowed).
	AllowedLinkDomains []string
}

// DefaultRules are KeyBuzz's limits and keyword list with Amazon's links.
func DefaultRules() Rules {
	return Rules{
		MaxChars:           DefaultMaxChars,
		BlockedKeywords:    append([]string(nil), DefaultBlockedKeywords...),
		AllowedLinkDomains: append([]string(nil), DefaultAllowedLinkDomains...),
	}
}

var (
	// emailRe finds an address (local@domain.tld).
	emailRe = regexp.MustCompile(`(?i)[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}`)
	// linkRe finds a URL with a scheme, a www. host, a bare host on a
	// top-level domain that is not also a common word, or any bare host
	// followed by a path ("shop.de/x"): "Hello.it works" is no link.
	linkRe = regexp.MustCompile(`(?i)\b(?:https?://|ftp://|www\.)[^\s<>"]+` +
		`|\b(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+(?:com|net|org|info|biz|io|ly|shop|store|online|site|app|eu|fr|nl|uk|pl|se|ie|ch|ca|mx|br|jp|au)\b(?:/[^\s<>"]*)?` +
		`|\b(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+[a-z]{2,}/[^\s<>"]*`)
	// phoneRe finds a run of digits that may be written with separators,
	// optionally after + or an opening parenthesis.
	phoneRe = regexp.MustCompile(`(?:\+|\(\+?)?\d[\d \t.\-()/]*\d`)
	// orderIDRe is an Amazon order id (also 3-7-7 digits).
	orderIDRe = regexp.MustCompile(`^\d{3}-\d{7}-\d{7}$`)
	// orderIDAnyRe finds order ids inside a text.
	orderIDAnyRe = regexp.MustCompile(`\b\d{3}-\d{7}-\d{7}\b`)
	// dateRe is a date written with separators (2026-12-07, 07/12/2026, 07.12.2026).
	dateRe = regexp.MustCompile(`^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$`)
)

// Check trims the text and returns it when it satisfies every rule, or a
// *Violation naming the first rule it breaks, in this order: empty, too
// long, keyword, email address, link, phone number. An Amazon order id
// (123-1234567-1234567), an ASIN (B0…, or ten digits) or a tracking number
// (letters and digits, or one unbroken run of digits) is none of these.
func (r Rules) Check(text string) (string, error) {
	t := strings.TrimSpace(text)
	if t == "" {
		return "", &Violation{Code: CodeEmpty, Message: "the reply is empty"}
	}
	if n := utf8.RuneCountInString(t); n > r.MaxChars {
		return "", &Violation{Code: CodeTooLong, Message: fmt.Sprintf("the reply has %d characters; Amazon takes at most %d", n, r.MaxChars)}
	}
	if k := r.blockedKeyword(t); k != "" {
		return "", &Violation{Code: CodeBlockedKeyword, Message: fmt.Sprintf("the keyword %q is not allowed in a reply", k), Match: k}
	}
	if m := emailRe.FindString(t); m != "" {
		return "", &Violation{Code: CodeEmailAddress, Message: "Amazon does not allow email addresses in messages to buyers", Match: m}
	}
	// Addresses are checked first; what remains of them must not read as links.
	stripped := emailRe.ReplaceAllString(t, " ")
	for _, m := range linkRe.FindAllString(stripped, -1) {
		if !r.linkAllowed(m) {
			return "", &Violation{Code: CodeLink, Message: "Amazon allows only links to Amazon in messages to buyers", Match: m}
		}
	}
	withoutLinks := linkRe.ReplaceAllString(stripped, " ")
	// Order ids are blanked first, so that one beside a number
	// neither hides it nor is read with it as a phone number.
	plain := orderIDAnyRe.ReplaceAllString(withoutLinks, " ; ")
	if m := findPhone(plain); m != "" {
		return "", &Violation{Code: CodePhoneNumber, Message: "Amazon does not allow phone numbers in messages to buyers", Match: m}
	}
	return t, nil
}

func (r Rules) blockedKeyword(t string) string {
	lower := strings.ToLower(t)
	for _, k := range r.BlockedKeywords {
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" {
			continue
		}
		for from := 0; ; {
			i := strings.Index(lower[from:], k)
			if i < 0 {
				break
			}
			start, end := from+i, from+i+len(k)
			if wordEdge(lower, start, true) && wordEdge(lower, end, false) {
				return k
			}
			from = start + 1
		}
	}
	return ""
}

// wordEdge says whether position i of s is the start (or end) of a word.
func wordEdge(s string, i int, start bool) bool {
	var r rune
	if start {
		if i == 0 {
			return true
		}
		r, _ = utf8.DecodeLastRuneInString(s[:i])
	} else {
		if i >= len(s) {
			return true
		}
		r, _ = utf8.DecodeRuneInString(s[i:])
	}
	return !unicode.IsLetter(r) && !unicode.IsDigit(r)
}

func (r Rules) linkAllowed(link string) bool {
	raw := link
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(strings.TrimRight(raw, ".,;:!?)"))
	if err != nil || u.Hostname() == "" {
		return false
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if IsAmazonHost(host) {
		return true
	}
	for _, d := range r.AllowedLinkDomains {
		d = strings.ToLower(d)
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// amazonStoreSuffixes are the top-level parts of Amazon's store domains.
var amazonStoreSuffixes = []string{
	"com", "ca", "com.mx", "com.br", "fr", "de", "co.uk", "it", "es", "nl", "com.be", "se", "pl", "ie",
	"com.tr", "eg", "sa", "ae", "in", "co.za", "co.jp", "com.au", "sg", "cn",
}

// IsAmazonHost says whether host is amazon.<store tld> or one of its subdomains.
func IsAmazonHost(host string) bool {
	host = strings.ToLower(host)
	for _, s := range amazonStoreSuffixes {
		d := "amazon." + s
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// findPhone returns the first phone number in t: 8 to 15 digits written
// with separators (spaces, dots, dashes, parentheses, slashes), or an
// unbroken run after + or 00. It is not a phone number when it is an
// order id, a date, part of a word (a tracking number's letters), or one
// unbroken run of digits with no international prefix (an ASIN, a
// tracking or invoice number).
func findPhone(t string) string {
	for _, loc := range phoneRe.FindAllStringIndex(t, -1) {
		m := strings.TrimRight(t[loc[0]:loc[1]], " \t.-/(")
		if attachedToWord(t, loc[0], loc[0]+len(m)) {
			continue
		}
		core := strings.Trim(m, "()+ ")
		if orderIDRe.MatchString(core) || dateRe.MatchString(core) {
			continue
		}
		digits := 0
		separated := false
		for _, c := range m {
			switch {
			case c >= '0' && c <= '9':
				digits++
			case c == '+':
			default:
				separated = true
			}
		}
		if digits < 8 || digits > 15 {
			continue
		}
		international := strings.HasPrefix(m, "+") || strings.HasPrefix(m, "(+") || strings.HasPrefix(m, "00")
		if !separated && !international {
			continue
		}
		// An order id among other text with separators inside is still no phone.
		if orderIDRe.MatchString(strings.TrimSpace(m)) {
			continue
		}
		return m
	}
	return ""
}

// attachedToWord says whether t[start:end] touches a letter or digit on
// either side (it is then part of a longer token: a tracking number such as
// 1Z999AA10123456784, a reference).
func attachedToWord(t string, start, end int) bool {
	if start > 0 {
		r, _ := utf8.DecodeLastRuneInString(t[:start])
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' {
			return true
		}
	}
	if end < len(t) {
		r, _ := utf8.DecodeRuneInString(t[end:])
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' {
			return true
		}
	}
	return false
}
