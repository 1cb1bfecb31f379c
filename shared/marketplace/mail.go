package marketplace

import (
	"errors"
	"time"
)

// Relay mail: a tenant's inbound addresses, what became of every received
// mail, and the attachments kept from it.

// InboundMarketplace is inbound_addresses.marketplace for Amazon, as
// KeyBuzz writes it (lower case, unlike the MarketplaceType enum).
const InboundMarketplace = "amazon"

// Pipeline and marketplace statuses of an inbound address (KeyBuzz's
// InboundValidationStatus).
const (
	InboundPending   = "PENDING"
	InboundValidated = "VALIDATED"
	InboundFailed    = "FAILED"
)

// InboundAddress is one inbound_addresses row: the address a seller sets in
// Seller Central for one marketplace country.
type InboundAddress struct {
	ID                string
	TenantID          string
	Country           string // upper case, "FR"
	MarketplaceID     string // the Amazon marketplace of Country ("" when unknown)
	Token             string
	EmailAddress      string
	PipelineStatus    string
	MarketplaceStatus string
	LastInboundAt     *time.Time
	LastError         string
	// ConnectionID is the tenant's MarketplaceConnection, and Accepting says
	// it is CONNECTED: a disconnected tenant's address takes no mail.
	ConnectionID string
	Accepting    bool
}

// MailOutcome is what became of one received mail for one recipient.
type MailOutcome string

const (
	MailTicketed         MailOutcome = "TICKETED"          // a new message on a ticket
	MailDuplicate        MailOutcome = "DUPLICATE"         // the same mail (Message-ID) was already ticketed
	MailRejectedSender   MailOutcome = "REJECTED_SENDER"   // not from Amazon's relay or notifications
	MailSpoofed          MailOutcome = "SPOOFED"           // claims Amazon, SES's authentication verdicts say otherwise
	MailQuarantined      MailOutcome = "QUARANTINED"       // SES's spam or virus verdict FAIL
	MailUnknownRecipient MailOutcome = "UNKNOWN_RECIPIENT" // no such address, or its tenant is not connected
	MailTooLarge         MailOutcome = "TOO_LARGE"         // above the size limit; the raw mail stays in S3
	MailMalformed        MailOutcome = "MALFORMED"         // unreadable; the raw mail stays in S3
)

// MailVerdicts are SES's verdicts on a received mail.
type MailVerdicts struct {
	Spam, Virus, SPF, DKIM, DMARC string
	DMARCPolicy                   string
}

// ReceivedMail is one "InboundMail" row: a mail SES received for one of our
// recipients, and its outcome. (SESMessageID, Recipient) is unique.
type ReceivedMail struct {
	SESMessageID string
	Recipient    string
	Bucket       string
	ObjectKey    string
	Size         int64
	TenantID     string // "" for UNKNOWN_RECIPIENT
	ConnectionID string
	AddressID    string
	MessageID    string // the mail's Message-ID header, "" when missing
	From         string
	Subject      string
	OrderID      string
	Kind         string // the relay mail kind (BUYER_MESSAGE, CANCELLATION_REQUEST…)
	Outcome      MailOutcome
	// Decision says what decided the outcome ("dmarcVerdict=FAIL",
	// "from=jane@example.com not Amazon", "parse: …").
	Decision   string
	Verdicts   MailVerdicts
	ReceivedAt time.Time
}

// MailAttachment is a file or inline image kept from a mail: its bytes are
// an object of their own in the mail bucket.
type MailAttachment struct {
	ObjectKey   string
	Filename    string
	ContentType string
	ContentID   string
	Inline      bool
	Size        int64
	SHA256      string
}

// MailResult is what storing a mail did.
type MailResult struct {
	Outcome        MailOutcome // TICKETED or DUPLICATE
	TicketID       string
	MessageCreated bool
	TicketCreated  bool
}

// ErrMailTooLarge is a stored mail above the reader's limit; its object
// stays where SES wrote it.
var ErrMailTooLarge = errors.New("mail object too large")

// ErrMailMissing is a mail object that is not (yet) in the bucket.
var ErrMailMissing = errors.New("mail object missing")

// TicketMessageView is one message of a ticket as the local page shows it.
type TicketMessageView struct {
	TicketID   string
	SenderType string // CUSTOMER, SYSTEM…
	SenderName string
	Body       string
	SentAt     time.Time
	Internal   bool
}

// OrderContext is the order a ticket is about, as getOrder told it: its
// "TicketOrderContext" row.
type OrderContext struct {
	TicketID, TenantID, ConnectionID, OrderID string
	Context                                   []byte // JSON: status, items, marketplace
	Summary                                   string // the internal SYSTEM message added to the ticket
	// NextAttemptAt is when a requested context is first due (zero: at
	// once): a budget known to be empty until then is not asked before.
	NextAttemptAt time.Time
}
