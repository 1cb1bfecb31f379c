package relaymail

import (
	"regexp"
	"strings"
)

// A buyer answering the seller's reply writes in a mail client that quotes
// the message it answers below a separator of its own; Amazon relays the
// whole text. The buyer's words are what comes before the first separator.
// The separators are the common clients' defaults, in each marketplace
// language, as the clients' own sources and localisation files write them
// (Thunderbird's mailnews "mailnews.reply_header_*" and
// "mailnews.forward_header_*" strings, Apple Mail's and Gmail's attribution
// lines, Outlook's header block, the mobile clients' signatures); each is
// covered by a corpus mail under testdata/mail (see its README).

// attributionRes are the one-line attributions ("On … wrote:") of Gmail,
// Apple Mail, Thunderbird and the mobile clients. Gmail wraps a long one
// over two lines: those are tried joined too.
var attributionRes = []*regexp.Regexp{
	regexp.MustCompile(`(?i)^\s*on .+ wrote:\s*$`),                // en: Gmail, Apple Mail, Thunderbird
	regexp.MustCompile(`(?i)^\s*le .+ a écrit\s*:\s*$`),           // fr
	regexp.MustCompile(`(?i)^\s*am .+ schrieb .*:\s*$`),           // de
	regexp.MustCompile(`(?i)^.+ schrieb am .+:\s*$`),              // de: Outlook.com, some webmails
	regexp.MustCompile(`(?i)^\s*el .+ escribió:\s*$`),             // es
	regexp.MustCompile(`(?i)^\s*(il giorno )?.+ ha scritto:\s*$`), // it
	regexp.MustCompile(`(?i)^\s*op .+ schreef .*:\s*$`),           // nl
	regexp.MustCompile(`(?i)^\s*den .+ skrev .*:\s*$`),            // sv
	regexp.MustCompile(`(?i)^.+ napisał(\(a\)|a)?:\s*$`),          // pl: Gmail
	regexp.MustCompile(`(?i)^\s*w dniu .+ pisze:\s*$`),            // pl: Thunderbird
	regexp.MustCompile(`(?i)^.+ tarihinde şunu yazdı:\s*$`),       // tr: Gmail
	regexp.MustCompile(`(?i)^.+ yazdı:\s*$`),                      // tr: Thunderbird, Apple Mail
	regexp.MustCompile(`(?i)^\s*em .+ escreveu:\s*$`),             // pt
	regexp.MustCompile(`^\s*\d{4}年.+[:：]\s*$`),                    // ja: Gmail
	regexp.MustCompile(`^.+のメール[:：]\s*$`),                         // ja: Apple Mail
	regexp.MustCompile(`(?i)^\s*(begin forwarded message|début du message réexpédié|anfang der weitergeleiteten nachricht|inizio messaggio inoltrato|inicio del mensaje reenviado|begin doorgestuurd bericht|vidarebefordrat mejl|początek przekazanej wiadomości|iletilen e-posta|転送されたメッセージ)\s*:\s*$`), // Apple Mail forwards
}

// clientSeparatorRe is the label of a dashed separator line a client writes
// above the quoted mail (Thunderbird, Samsung Email, Outlook's plain text,
// Gmail's forwards).
var clientSeparatorRe = regexp.MustCompile(`(?i)^\s*(original message|forwarded message|message d'origine|message transféré|ursprüngliche nachricht|weitergeleitete nachricht|originalnachricht|messaggio originale|messaggio inoltrato|mensaje original|mensaje reenviado|oorspronkelijk bericht|doorgestuurd bericht|origineel bericht|ursprungligt meddelande|vidarebefordrat meddelande|originalmeddelande|oryginalna wiadomość|wiadomość przekazana|przekazana wiadomość|orijinal mesaj|özgün ileti|iletilen ileti|iletilen mesaj|元のメッセージ|転送メッセージ|mensagem original)\s*:?\s*$`)

var dashedLabelRe = regexp.MustCompile(`^\s*-{2,}\s*(.+?)\s*-{2,}\s*$`)

// Outlook's header block: a From line, then within a few lines a Sent (or
// Date) line, in the client's language. "De" is French, Spanish and
// Portuguese; "Da" Italian; "Od" Polish.
var (
	headerFromRe = regexp.MustCompile(`(?i)^\s*\*?(from|de|von|da|van|från|od|kimden|差出人|送信者)\s*\*?\s*[:：]`)
	headerSentRe = regexp.MustCompile(`(?i)^\s*\*?(sent|date|envoyé|gesendet|datum|inviato|data|enviado|enviada|fecha|verzonden|skickat|wysłano|wysłane|gönderildi|gönderilme tarihi|tarih|送信日時|日付)\s*\*?\s*[:：]`)
	underscoreRe = regexp.MustCompile(`^\s*_{10,}\s*$`)
)

// signatureRes are the mobile clients' default signatures: not the buyer's
// words, and usually right above the quoted mail.
var signatureRes = regexp.MustCompile(`(?i)^\s*(sent from my (iphone|ipad|samsung.*|galaxy.*|mobile.*|android.*|huawei.*)|sent from (outlook|mail) for (ios|android|windows)|get outlook for (ios|android)|sent from yahoo mail.*|envoyé de mon (iphone|ipad|samsung.*|smartphone.*)|envoyé depuis mon (iphone|ipad|smartphone.*|mobile.*)|von meinem (iphone|ipad|samsung.*|smartphone.*) gesendet|gesendet von meinem (iphone|ipad|samsung.*|smartphone.*)|gesendet mit der .+ app|inviato da (iphone|ipad)|inviato dal mio (iphone|ipad|samsung.*|smartphone.*)|enviado desde mi (iphone|ipad|samsung.*|smartphone.*)|verzonden (vanaf|met) mijn (iphone|ipad|samsung.*|smartphone.*)|verstuurd vanaf mijn (iphone|ipad|samsung.*|smartphone.*)|skickat från min (iphone|ipad|samsung.*|mobil.*)|wysłane z (iphone'a|mojego .+)|iphone'umdan gönderildi|iphoneから送信|ipadから送信)\s*$`)

// stripQuoted cuts a reply at the first client separator that follows the
// reply's own text: an attribution ("On … wrote:", or Gmail's wrapped over
// two lines), a dashed client label ("-------- Original Message --------"),
// Outlook's header block (with or without its underscore line), a mobile
// signature, or a ">"-quoted line.
func stripQuoted(lines []string) []string {
	seenText := false
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if isAttribution(l) {
			return lines[:i]
		}
		if i+1 < len(lines) && t != "" {
			// Gmail's wrap: the attribution's first half, often ending in
			// the address's "<", then the rest.
			next := lines[i+1]
			joined := isAttribution(l + " " + strings.TrimSpace(next))
			if joined && (!isAttribution(next) || strings.HasSuffix(t, "<")) {
				return lines[:i]
			}
		}
		if m := dashedLabelRe.FindStringSubmatch(l); m != nil && clientSeparatorRe.MatchString(m[1]) {
			return lines[:i]
		}
		if underscoreRe.MatchString(l) && outlookBlockAt(lines, i+1) {
			return lines[:i]
		}
		if headerFromRe.MatchString(l) && outlookBlockAt(lines, i) {
			return lines[:i]
		}
		if seenText && signatureRes.MatchString(l) {
			return lines[:i]
		}
		if strings.HasPrefix(t, ">") && seenText {
			return lines[:i]
		}
		if t != "" && !strings.HasPrefix(t, ">") {
			seenText = true
		}
	}
	return lines
}

func isAttribution(l string) bool {
	for _, re := range attributionRes {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// outlookBlockAt says lines[i] (after blank lines) opens Outlook's header
// block: a From line followed within four lines by a Sent or Date line.
func outlookBlockAt(lines []string, i int) bool {
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	if i >= len(lines) || !headerFromRe.MatchString(lines[i]) {
		return false
	}
	for j := i + 1; j < len(lines) && j <= i+4; j++ {
		if headerSentRe.MatchString(lines[j]) {
			return true
		}
	}
	return false
}
