-- Replies to buyers.
--
-- KeyBuzz's two models the replies write, MarketplaceOutboundMessage and
-- TicketEvent, with their enums, exactly as Prisma creates them from
-- KeyBuzz's schema.prisma (cuid ids and "updatedAt" filled by the writer,
-- CURRENT_TIMESTAMP and enum defaults in the database). Created only when
-- missing: on KeyBuzz's database Prisma has made them, and these
-- statements do nothing.
DO $$ BEGIN CREATE TYPE "OutboundMessageStatus" AS ENUM ('PENDING', 'SENT', 'FAILED');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE TYPE "TicketEventType" AS ENUM ('MESSAGE_RECEIVED', 'MESSAGE_SENT', 'STATUS_CHANGED', 'PRIORITY_CHANGED',
    'SLA_BREACHED', 'SLA_RESTORED', 'ASSIGNMENT_CHANGED', 'AI_SUGGESTION_CREATED', 'AI_REPLY_SENT', 'AI_RULE_EXECUTED',
    'TICKET_AUTO_CLOSED', 'OUTBOUND_SENT', 'OUTBOUND_FAILED');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE TYPE "EventActorType" AS ENUM ('CUSTOMER', 'AGENT', 'AI', 'SYSTEM');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

CREATE TABLE IF NOT EXISTS "MarketplaceOutboundMessage" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "connectionId" TEXT,
    "ticketId" TEXT,
    "channel" "TicketChannel" NOT NULL DEFAULT 'AMAZON',
    "marketplaceType" "MarketplaceType" NOT NULL DEFAULT 'AMAZON',
    "externalThreadId" TEXT,
    "orderId" TEXT,
    "toAddress" TEXT NOT NULL,
    "subject" TEXT,
    "body" TEXT NOT NULL,
    "bodyHash" TEXT NOT NULL,
    "status" "OutboundMessageStatus" NOT NULL DEFAULT 'PENDING',
    "providerMessageId" TEXT,
    "error" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sentAt" TIMESTAMP(3),
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "MarketplaceOutboundMessage_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX IF NOT EXISTS "MarketplaceOutboundMessage_connectionId_ticketId_bodyHash_key"
    ON "MarketplaceOutboundMessage" ("connectionId", "ticketId", "bodyHash");
CREATE INDEX IF NOT EXISTS "MarketplaceOutboundMessage_tenantId_status_idx" ON "MarketplaceOutboundMessage" ("tenantId", "status");
CREATE INDEX IF NOT EXISTS "MarketplaceOutboundMessage_ticketId_idx" ON "MarketplaceOutboundMessage" ("ticketId");

CREATE TABLE IF NOT EXISTS "TicketEvent" (
    "id" TEXT NOT NULL,
    "ticketId" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "type" "TicketEventType" NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actorType" "EventActorType" NOT NULL,
    "actorId" TEXT,
    "payload" JSONB,
    CONSTRAINT "TicketEvent_pkey" PRIMARY KEY ("id")
);
DO $$ BEGIN
    ALTER TABLE "TicketEvent" ADD CONSTRAINT "TicketEvent_ticketId_fkey" FOREIGN KEY ("ticketId") REFERENCES "Ticket" ("id")
        ON DELETE RESTRICT ON UPDATE CASCADE;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

-- The connector's own state about replies, in its own schema (KeyBuzz's
-- `prisma db push` on public leaves it alone), keyed by KeyBuzz's ids.
CREATE SCHEMA IF NOT EXISTS keybuzz_amazon;

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
