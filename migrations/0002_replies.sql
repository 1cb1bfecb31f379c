-- Replies to buyers (docs/keybuzz-contract.md): KeyBuzz's
-- MarketplaceOutboundMessage and TicketEvent are KeyBuzz's tables in
-- public, as Prisma makes them from its schema (tools/prisma/schema.prisma
-- builds them locally); the connector writes their rows and keeps its own
-- state about replies here.

-- The connector's own state about replies, in its own schema (KeyBuzz's
-- `prisma db push` on public leaves it alone), keyed by KeyBuzz's ids.
-- One row per reply (its id is the MarketplaceOutboundMessage's): what the
-- sender needs to send it once, and the details of its fate beyond
-- KeyBuzz's PENDING/SENT/FAILED.
--   state: QUEUED (waiting to be sent), SENDING (claimed: "leaseUntil"),
--   ACCEPTED (SES answered a MessageId), DELIVERED (SES's Delivery event),
--   FAILED ("reasonCode", "reason").
CREATE TABLE IF NOT EXISTS keybuzz_amazon."Reply" (
    "id"              text PRIMARY KEY,
    "tenantId"        text NOT NULL,
    "connectionId"    text NOT NULL,
    "ticketId"        text NOT NULL,
    "ticketMessageId" text NOT NULL,
    "agentId"         text,
    "idempotencyKey"  text,
    "requestHash"     text NOT NULL,
    "fromAddress"     text NOT NULL,
    "toAddress"       text NOT NULL,
    "subject"         text NOT NULL,
    "inReplyTo"       text,
    "references"      text[] NOT NULL DEFAULT '{}',
    "orderId"         text,
    "state"           text NOT NULL DEFAULT 'QUEUED'
        CHECK ("state" IN ('QUEUED', 'SENDING', 'ACCEPTED', 'DELIVERED', 'FAILED')),
    "leaseOwner"      text,
    "leaseUntil"      timestamptz(3),
    "attempts"        integer NOT NULL DEFAULT 0,
    "nextAttemptAt"   timestamptz(3) NOT NULL DEFAULT now(),
    "sesMessageId"    text,
    "acceptedAt"      timestamptz(3),
    "deliveredAt"     timestamptz(3),
    "failedAt"        timestamptz(3),
    "reasonCode"      text,
    "reason"          text,
    "queuedAt"        timestamptz(3) NOT NULL DEFAULT now(),
    "createdAt"       timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"       timestamptz(3) NOT NULL DEFAULT now()
);
-- The same Idempotency-Key twice from one tenant is one reply.
CREATE UNIQUE INDEX IF NOT EXISTS "Reply_tenantId_idempotencyKey_key" ON keybuzz_amazon."Reply" ("tenantId", "idempotencyKey")
    WHERE "idempotencyKey" IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS "Reply_sesMessageId_key" ON keybuzz_amazon."Reply" ("sesMessageId") WHERE "sesMessageId" IS NOT NULL;
CREATE INDEX IF NOT EXISTS "Reply_ticketId_idx" ON keybuzz_amazon."Reply" ("ticketId");
-- Replies to resend when their queue message was lost: queued or with a stale claim.
CREATE INDEX IF NOT EXISTS "Reply_due_idx" ON keybuzz_amazon."Reply" ("nextAttemptAt") WHERE "state" IN ('QUEUED', 'SENDING');

-- SES's sending events, once each (SNS delivers at least once): the sender
-- looks here for the Send event of a reply whose claim went stale, and the
-- consumer ignores an event older than the reply's state.
CREATE TABLE IF NOT EXISTS keybuzz_amazon."SesEvent" (
    "id"           bigserial PRIMARY KEY,
    "sesMessageId" text NOT NULL,
    "eventType"    text NOT NULL,
    "eventKey"     text NOT NULL,
    "replyId"      text,
    "tenantId"     text,
    "occurredAt"   timestamptz(3) NOT NULL,
    "payload"      jsonb NOT NULL,
    "receivedAt"   timestamptz(3) NOT NULL DEFAULT now(),
    CONSTRAINT "SesEvent_key" UNIQUE ("sesMessageId", "eventType", "eventKey")
);
CREATE INDEX IF NOT EXISTS "SesEvent_replyId_idx" ON keybuzz_amazon."SesEvent" ("replyId", "eventType");

-- The SES sending rate as a token bucket shared by every sender: "tokens"
-- as of "refilledAt", refilled at "rate" per second up to "burst"; a
-- throttled answer empties it until "throttledUntil".
CREATE TABLE IF NOT EXISTS keybuzz_amazon."SendBudget" (
    "name"           text PRIMARY KEY,
    "tokens"         double precision NOT NULL,
    "rate"           double precision NOT NULL,
    "burst"          integer NOT NULL,
    "refilledAt"     timestamptz(6) NOT NULL,
    "throttledUntil" timestamptz(3),
    "updatedAt"      timestamptz(3) NOT NULL DEFAULT now()
);

-- Amazon's refusals of a tenant's sending address (a notice "sender not
-- approved"), per inbound address: the status route tells the frontend to
-- approve it under Messaging Permissions. Nothing from Amazon says an
-- address became approved (SES's Delivery only means Amazon's mail server
-- took the mail; its refusal notice comes after): the flag stays with the
-- time of the last refusal ("noticedAt").
CREATE TABLE IF NOT EXISTS keybuzz_amazon."SenderApproval" (
    "tenantId"     text NOT NULL,
    "emailAddress" text NOT NULL,
    "needed"       boolean NOT NULL,
    "reason"       text,
    "noticedAt"    timestamptz(3) NOT NULL,
    "updatedAt"    timestamptz(3) NOT NULL DEFAULT now(),
    PRIMARY KEY ("tenantId", "emailAddress")
);
