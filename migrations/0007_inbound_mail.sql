-- The relay-mail intake (docs/inbound-mail.md): one row per received mail
-- and recipient with its outcome and the verdicts that decided it, the
-- attachments kept from accepted mails, the order context tickets get
-- later, and a case-insensitive lookup of inbound addresses (the
-- inbound_addresses table is KeyBuzz's, from 0004).

CREATE TABLE "InboundMail" (
    "id"                text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    -- SES's message id (the S3 object's name), or "sqs:<id>" for a queue
    -- message that was no SES notification.
    "sesMessageId"      text NOT NULL,
    "recipient"         text NOT NULL DEFAULT '',
    "bucket"            text,
    "objectKey"         text,
    "size"              bigint,
    "tenantId"          text,
    "connectionId"      text,
    "addressId"         text,
    "messageId"         text,
    "from"              text,
    "subject"           text,
    "orderId"           text,
    "kind"              text,
    "outcome"           text NOT NULL CHECK ("outcome" IN ('TICKETED', 'DUPLICATE', 'REJECTED_SENDER', 'SPOOFED',
                                                           'QUARANTINED', 'UNKNOWN_RECIPIENT', 'TOO_LARGE', 'MALFORMED')),
    "decision"          text,
    "spamVerdict"       text,
    "virusVerdict"      text,
    "spfVerdict"        text,
    "dkimVerdict"       text,
    "dmarcVerdict"      text,
    "dmarcPolicy"       text,
    "externalMessageId" text REFERENCES "ExternalMessage" ("id") ON DELETE SET NULL,
    "ticketId"          text REFERENCES "Ticket" ("id") ON DELETE SET NULL,
    "receivedAt"        timestamptz(3) NOT NULL,
    "createdAt"         timestamptz(3) NOT NULL DEFAULT now(),
    CONSTRAINT "InboundMail_sesMessageId_recipient_key" UNIQUE ("sesMessageId", "recipient")
);
CREATE INDEX "InboundMail_tenantId_createdAt_idx" ON "InboundMail" ("tenantId", "createdAt" DESC);
CREATE INDEX "InboundMail_outcome_createdAt_idx" ON "InboundMail" ("outcome", "createdAt" DESC);

-- Attachments of an accepted mail: each an object of its own in the mail
-- bucket, never inlined into a text column.
CREATE TABLE "InboundMailAttachment" (
    "id"                text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "tenantId"          text NOT NULL,
    "externalMessageId" text NOT NULL REFERENCES "ExternalMessage" ("id") ON DELETE CASCADE,
    "bucket"            text NOT NULL,
    "objectKey"         text NOT NULL,
    "filename"          text,
    "contentType"       text NOT NULL,
    "contentId"         text,
    "inline"            boolean NOT NULL DEFAULT false,
    "size"              bigint NOT NULL,
    "sha256"            text NOT NULL,
    "createdAt"         timestamptz(3) NOT NULL DEFAULT now(),
    CONSTRAINT "InboundMailAttachment_externalMessageId_objectKey_key" UNIQUE ("externalMessageId", "objectKey")
);
CREATE INDEX "InboundMailAttachment_tenantId_idx" ON "InboundMailAttachment" ("tenantId");

-- The order context a ticket gets after it exists: PENDING until getOrder
-- succeeds within the connection's rate budget ("nextAttemptAt"), then DONE
-- with what Amazon said.
CREATE TABLE "TicketOrderContext" (
    "ticketId"      text PRIMARY KEY REFERENCES "Ticket" ("id") ON DELETE CASCADE,
    "tenantId"      text NOT NULL,
    "connectionId"  text NOT NULL,
    "orderId"       text NOT NULL,
    "status"        text NOT NULL DEFAULT 'PENDING' CHECK ("status" IN ('PENDING', 'DONE', 'FAILED')),
    "context"       jsonb,
    "attempts"      integer NOT NULL DEFAULT 0,
    "lastError"     text,
    "nextAttemptAt" timestamptz(3) NOT NULL DEFAULT now(),
    "createdAt"     timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"     timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX "TicketOrderContext_pending_idx" ON "TicketOrderContext" ("nextAttemptAt") WHERE "status" = 'PENDING';

-- A recipient finds its address whatever the case SES reports it in.
CREATE UNIQUE INDEX "inbound_addresses_emailAddress_lower_key" ON "inbound_addresses" (lower("emailAddress"));
