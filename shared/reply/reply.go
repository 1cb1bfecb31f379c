// Package reply is the domain of replies to buyers: what a reply's text may
// say (Amazon's content rules and KeyBuzz's keyword screen), which address
// it is sent From and To, its raw MIME, the bodyHash it is stored under,
// and the words of its fate (PENDING, SENT, FAILED and the connector's
// reasons). It does no I/O; the routes, the sender and the SES-events
// consumer use it.
//
// A reply is an email to the buyer's relay alias (…@marketplace.amazon.<tld>)
// From the tenant's inbound address of the alias's marketplace country:
// Amazon accepts replies only from an address the seller approved for that
// marketplace, and SP-API has no operation that answers a buyer.
package reply

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
)

// KeyBuzz's OutboundMessageStatus: the only values its column takes.
const (
	StatusPending = "PENDING"
	StatusSent    = "SENT"
	StatusFailed  = "FAILED"
)

// BodyHash is MarketplaceOutboundMessage.bodyHash: SHA-256 (hex) of the
// reply's identity (its row id) and its text. KeyBuzz keys the table by
// (connectionId, ticketId, bodyHash); hashing the text alone would drop an
// agent's second identical reply ("Merci") on a ticket, so two replies with
// the same text are two rows. Retries of one request are told apart by the
// Idempotency-Key, not by the text.
func BodyHash(replyID, text string) string {
	h := sha256.New()
	h.Write([]byte("keybuzz-amazon reply v1\x00"))
	h.Write([]byte(replyID))
	h.Write([]byte{0})
	h.Write([]byte(text))
	return hex.EncodeToString(h.Sum(nil))
}

// ErrNotRelayAlias is an address that is not a buyer's relay alias of a
// known Amazon store.
var ErrNotRelayAlias = errors.New("not an Amazon relay alias")

// AliasMarketplace returns the Amazon store of a buyer's relay alias
// (…@marketplace.amazon.fr → Amazon.fr).
func AliasMarketplace(alias string) (amazon.Marketplace, error) {
	at := strings.LastIndexByte(alias, '@')
	if at <= 0 {
		return amazon.Marketplace{}, fmt.Errorf("%w: %q", ErrNotRelayAlias, alias)
	}
	domain := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(alias[at+1:]), ">"))
	const prefix = "marketplace.amazon."
	if !strings.HasPrefix(domain, prefix) {
		return amazon.Marketplace{}, fmt.Errorf("%w: %q", ErrNotRelayAlias, alias)
	}
	m, ok := amazon.MarketplaceForDomain(strings.TrimPrefix(domain, prefix))
	if !ok {
		return amazon.Marketplace{}, fmt.Errorf("%w: unknown store %q", ErrNotRelayAlias, domain)
	}
	return m, nil
}

// ErrNoSenderAddress is a tenant with no inbound address for the alias's
// marketplace country: Amazon would refuse (or silently drop) a reply from
// any other country's address.
var ErrNoSenderAddress = errors.New("no inbound address for the alias's marketplace country")

// SenderFor picks, among a tenant's inbound addresses by country code
// ("FR" → amazon.<tenant>.fr.<token>@…), the one of the alias's
// marketplace country.
func SenderFor(alias string, addressByCountry map[string]string) (string, error) {
	m, err := AliasMarketplace(alias)
	if err != nil {
		return "", err
	}
	for cc, a := range addressByCountry {
		if strings.EqualFold(cc, m.CountryCode) && a != "" {
			return a, nil
		}
	}
	return "", fmt.Errorf("%w: %s", ErrNoSenderAddress, m.CountryCode)
}

// Job is the outbound queue's message: one reply to send. The row holds
// everything else, so a redelivered or stale message only names it.
type Job struct {
	ReplyID  string `json:"replyId"`
	TenantID string `json:"tenantId"`
}

// The SES message tags every reply carries; SES copies them into each of
// its events (mail.tags), which is how an event finds its reply.
const (
	TagReply  = "keybuzz-reply"
	TagTenant = "keybuzz-tenant"
)

// NoticeWindow is how long after a reply's delivery to Amazon's relay an
// Amazon notice refusing it is still expected (they come within minutes).
// A reply delivered from an address that was refused as not approved, and
// not refused within this window, shows the seller has approved it since.
const NoticeWindow = 2 * time.Hour

// Outgoing is one reply as handed to SES.
type Outgoing struct {
	ReplyID  string
	TenantID string
	From     string
	To       string
	Raw      []byte // replymail.Compose's output
}

// ErrMalformedJob is a queue body that is no Job.
var ErrMalformedJob = errors.New("malformed reply job")

// EncodeJob is a job's queue body.
func EncodeJob(j Job) string {
	b, _ := json.Marshal(j)
	return string(b)
}

// DecodeJob reads a job's queue body.
func DecodeJob(body string) (Job, error) {
	var j Job
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil || j.ReplyID == "" || dec.More() {
		if len(body) > 100 {
			body = body[:100] + "…"
		}
		return Job{}, fmt.Errorf("%w: %q", ErrMalformedJob, body)
	}
	return j, nil
}

// SendError is a failed attempt to hand a reply to SES. Permanent ones
// (refused message, unverified identity) end the reply FAILED with Reason;
// the others are retried with back-off.
type SendError struct {
	Permanent bool
	Code      string // the provider's error code ("MessageRejected", "ThrottlingException", "timeout")
	Reason    string // what an agent reads
	Err       error
}

func (e *SendError) Error() string {
	kind := "transient"
	if e.Permanent {
		kind = "permanent"
	}
	return fmt.Sprintf("send reply (%s %s): %s", kind, e.Code, e.Reason)
}

func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent says whether err is a SendError that no retry will cure.
func IsPermanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Permanent
}

// Subject is "Re: <subject>", never "Re: Re: …".
func Subject(buyerSubject string) string {
	s := strings.TrimSpace(buyerSubject)
	if len(s) >= 3 && strings.EqualFold(s[:3], "re:") {
		return "Re: " + strings.TrimSpace(s[3:])
	}
	if s == "" {
		return "Re:"
	}
	return "Re: " + s
}
