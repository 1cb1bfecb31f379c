package inboundmail

import (
	"fmt"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
)

func verdicts(r sesmail.Receipt) marketplace.MailVerdicts {
	return marketplace.MailVerdicts{
		Spam: r.SpamVerdict.Status, Virus: r.VirusVerdict.Status, SPF: r.SPFVerdict.Status,
		DKIM: r.DKIMVerdict.Status, DMARC: r.DMARCVerdict.Status, DMARCPolicy: r.DMARCPolicy,
	}
}

// quarantined: SES found a virus or spam. The verdict that decided is
// returned for the record.
func quarantined(v marketplace.MailVerdicts) (bool, string) {
	switch {
	case v.Virus == sesmail.Fail:
		return true, "virusVerdict=FAIL"
	case v.Spam == sesmail.Fail:
		return true, "spamVerdict=FAIL"
	}
	return false, ""
}

// spoofed judges a mail whose From claims one of Amazon's senders. Which
// DKIM domain relay mails carry is not documented, so no single check is
// required to pass; a mail is spoofed when DMARC fails for its From domain,
// or when neither SPF nor DKIM passes and at least one of them fails. GRAY
// and PROCESSING_FAILED alone (SES could not tell) do not condemn a mail.
func spoofed(v marketplace.MailVerdicts) (bool, string) {
	if v.DMARC == sesmail.Fail {
		if v.DMARCPolicy != "" {
			return true, fmt.Sprintf("dmarcVerdict=FAIL (policy %s)", v.DMARCPolicy)
		}
		return true, "dmarcVerdict=FAIL"
	}
	if v.SPF != sesmail.Pass && v.DKIM != sesmail.Pass && (v.SPF == sesmail.Fail || v.DKIM == sesmail.Fail) {
		return true, fmt.Sprintf("spfVerdict=%s dkimVerdict=%s", v.SPF, v.DKIM)
	}
	return false, ""
}
