-- The contract with the rest of KeyBuzz (docs/keybuzz-contract.md): the
-- seed's MarketplaceConnection, MarketplaceSyncState and ExternalMessage
-- column for column, KeyBuzz's Ticket and TicketMessage, its inbound mail
-- tables, and its enums as PostgreSQL enum types with Prisma's names.
-- Prisma String -> text, DateTime -> timestamp(3) (UTC wall clock, as Prisma
-- stores it), Json -> jsonb. What only the connector needs sits in extra
-- columns (nullable or defaulted, so KeyBuzz's own writes never fail on
-- them) and in tables of its own ("TicketThread"). Every row already there is kept
-- and its values carried into the contract's columns.

-- Enum types. Where KeyBuzz's own database already has a type, it is kept
-- and only the connector's addition (NEEDS_REAUTH) is added.
DO $$ BEGIN CREATE TYPE "MarketplaceType" AS ENUM ('AMAZON', 'FNAC', 'CDISCOUNT', 'OTHER');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE TYPE "MarketplaceConnectionStatus" AS ENUM ('PENDING', 'CONNECTED', 'ERROR', 'DISABLED', 'NEEDS_REAUTH');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
ALTER TYPE "MarketplaceConnectionStatus" ADD VALUE IF NOT EXISTS 'NEEDS_REAUTH';
DO $$ BEGIN CREATE TYPE "TicketStatus" AS ENUM ('OPEN', 'PENDING', 'WAITING_CUSTOMER', 'RESOLVED', 'ESCALATED', 'CLOSED');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE TYPE "TicketPriority" AS ENUM ('LOW', 'NORMAL', 'HIGH', 'URGENT');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE TYPE "TicketChannel" AS ENUM ('AMAZON', 'CDISCOUNT', 'FNAC', 'MANOMANO', 'RAKUTEN', 'VINTED', 'BACKMARKET', 'MANUAL', 'OTHER');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE TYPE "MessageSenderType" AS ENUM ('CUSTOMER', 'AGENT', 'AI', 'SYSTEM');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE TYPE "MessageSource" AS ENUM ('MARKETPLACE', 'KEYBUZZ_UI', 'API', 'AI', 'EMAIL', 'OTHER');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE TYPE "InboundValidationStatus" AS ENUM ('PENDING', 'VALIDATED', 'FAILED');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE TYPE "InboundConnectionStatus" AS ENUM ('DRAFT', 'WAITING_EMAIL', 'WAITING_AMAZON', 'READY', 'DEGRADED', 'ERROR');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

-- The marketplace's language, for what polling stored before "language"
-- existed (the ids of shared/amazon; ISO 639-1 as in the seed's "fr").
CREATE FUNCTION pg_temp.marketplace_language(id text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE id
        WHEN 'ATVPDKIKX0DER' THEN 'en' WHEN 'A2EUQ1WTGCTBG2' THEN 'en' WHEN 'A1AM78C64UM0Y8' THEN 'es'
        WHEN 'A2Q3Y263D00KWC' THEN 'pt' WHEN 'A13V1IB3VIYZZH' THEN 'fr' WHEN 'A1PA6795UKMFR9' THEN 'de'
        WHEN 'A1F83G8C2ARO7P' THEN 'en' WHEN 'APJ6JRA9NG5V4' THEN 'it' WHEN 'A1RKKUPIHCS9HS' THEN 'es'
        WHEN 'A1805IZSGTT6HS' THEN 'nl' WHEN 'AMEN7PMS3EDWL' THEN 'fr' WHEN 'A2NODRKZP88ZB9' THEN 'sv'
        WHEN 'A1C3SOZRARQ6R3' THEN 'pl' WHEN 'A28R8C7NBKEWEA' THEN 'en' WHEN 'A33AVAJ2PDY3EV' THEN 'tr'
        WHEN 'ARBP9OOSHTCHU' THEN 'ar' WHEN 'A17E79C6D8DWNP' THEN 'ar' WHEN 'A2VIGQ35RCS4UG' THEN 'ar'
        WHEN 'A21TJRUUN4KGV' THEN 'en' WHEN 'AE08WJ6YKNBMC' THEN 'en' WHEN 'A1VC38T7YXB528' THEN 'ja'
        WHEN 'A39IBJ37TRP1C6' THEN 'en' WHEN 'A19VAU5U5O7RUS' THEN 'en'
    END
$$;

-- MarketplaceConnection -------------------------------------------------
-- type and status become the enums; a DISCONNECTED is KeyBuzz's
-- DISABLED; region is the seed's "EU"/"NA"/"FE" (0001-0003 wrote "eu").
DROP INDEX IF EXISTS "MarketplaceConnection_due_id_idx";
DROP INDEX IF EXISTS "MarketplaceConnection_due_idx";
ALTER TABLE "MarketplaceConnection" DROP CONSTRAINT IF EXISTS "MarketplaceConnection_status_check";
UPDATE "MarketplaceConnection" SET "status" = 'DISABLED' WHERE "status" = 'DISCONNECTED';
UPDATE "MarketplaceConnection" SET "region" = upper("region") WHERE "region" IS DISTINCT FROM upper("region");
ALTER TABLE "MarketplaceConnection"
    ALTER COLUMN "type" DROP DEFAULT,
    ALTER COLUMN "type" TYPE "MarketplaceType" USING "type"::"MarketplaceType",
    ALTER COLUMN "type" SET DEFAULT 'AMAZON',
    ALTER COLUMN "status" DROP DEFAULT,
    ALTER COLUMN "status" TYPE "MarketplaceConnectionStatus" USING "status"::"MarketplaceConnectionStatus",
    ALTER COLUMN "status" SET DEFAULT 'PENDING',
    ALTER COLUMN "lastSyncAt" TYPE timestamp(3) USING "lastSyncAt" AT TIME ZONE 'UTC',
    ALTER COLUMN "createdAt" TYPE timestamp(3) USING "createdAt" AT TIME ZONE 'UTC',
    ALTER COLUMN "createdAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ALTER COLUMN "updatedAt" TYPE timestamp(3) USING "updatedAt" AT TIME ZONE 'UTC',
    ALTER COLUMN "updatedAt" SET DEFAULT (now() AT TIME ZONE 'UTC');
CREATE INDEX "MarketplaceConnection_due_id_idx" ON "MarketplaceConnection" ("nextPollAt", "id") WHERE "status" = 'CONNECTED';

-- MarketplaceSyncState --------------------------------------------------
-- The seed's "cursor" is text (Amazon's token or cursor): the connector
-- writes there the pagination token of a window part-way, or else the end
-- of the last complete window in ISO 8601. The connector reads its own
-- columns: "cursorAt" (the time cursor, the timestamptz "cursor" of 0001) and
-- "paginationToken". The seed's "lastPolledAt" is 0001's "lastSyncAt".
ALTER TABLE "MarketplaceSyncState"
    ADD COLUMN "type" "MarketplaceType" NOT NULL DEFAULT 'AMAZON',
    ADD COLUMN "cursorAt" timestamptz(3),
    ADD COLUMN "lastPolledAt" timestamp(3),
    ADD COLUMN "initialBackfillDays" integer,
    ADD COLUMN "initialBackfillDoneAt" timestamp(3),
    ADD COLUMN "initialBackfillStatus" text;
UPDATE "MarketplaceSyncState" ss SET
    "type" = c."type",
    "cursorAt" = ss."cursor",
    "lastPolledAt" = ss."lastSyncAt" AT TIME ZONE 'UTC'
FROM "MarketplaceConnection" c WHERE c."id" = ss."connectionId";
ALTER TABLE "MarketplaceSyncState"
    ALTER COLUMN "cursor" TYPE text USING COALESCE("paginationToken",
        to_char("cursor" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
    DROP COLUMN "lastSyncAt",
    ALTER COLUMN "lastSuccessAt" TYPE timestamp(3) USING "lastSuccessAt" AT TIME ZONE 'UTC',
    ALTER COLUMN "createdAt" TYPE timestamp(3) USING "createdAt" AT TIME ZONE 'UTC',
    ALTER COLUMN "createdAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ALTER COLUMN "updatedAt" TYPE timestamp(3) USING "updatedAt" AT TIME ZONE 'UTC',
    ALTER COLUMN "updatedAt" SET DEFAULT (now() AT TIME ZONE 'UTC');
CREATE INDEX "MarketplaceSyncState_tenantId_type_idx" ON "MarketplaceSyncState" ("tenantId", "type");

-- Ticket ------------------------------------------------------------------
-- KeyBuzz's Ticket. The connector's thread key (one ticket per tenant and
-- order thread, whatever channel brought the message) moves to its own
-- "TicketThread"; the order id is KeyBuzz's "externalId".
CREATE TABLE "TicketThread" (
    "tenantId"      text NOT NULL,
    "threadKey"     text NOT NULL,
    "ticketId"      text NOT NULL UNIQUE REFERENCES "Ticket" ("id") ON DELETE CASCADE,
    "orderId"       text,
    "lastMessageAt" timestamptz(3),
    "createdAt"     timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"     timestamptz(3) NOT NULL DEFAULT now(),
    PRIMARY KEY ("tenantId", "threadKey")
);
CREATE INDEX "TicketThread_tenantId_lastMessageAt_idx" ON "TicketThread" ("tenantId", "lastMessageAt" DESC);
INSERT INTO "TicketThread" ("tenantId", "threadKey", "ticketId", "orderId", "lastMessageAt", "createdAt", "updatedAt")
SELECT "tenantId", COALESCE("externalThreadId", "orderId", 'ticket:' || "id"), "id", "orderId", "lastMessageAt", "createdAt", "updatedAt"
FROM "Ticket";

ALTER TABLE "Ticket" DROP CONSTRAINT "Ticket_tenantId_channel_externalThreadId_key";
DROP INDEX IF EXISTS "Ticket_tenantId_lastMessageAt_idx";
ALTER TABLE "Ticket"
    ADD COLUMN "externalId" text,
    ADD COLUMN "priority" "TicketPriority" NOT NULL DEFAULT 'NORMAL',
    ADD COLUMN "firstResponseAt" timestamp(3),
    ADD COLUMN "resolvedAt" timestamp(3),
    ADD COLUMN "category" text,
    ADD COLUMN "sentiment" text;
UPDATE "Ticket" SET
    "externalId" = COALESCE("orderId", "externalThreadId"),
    "customerName" = COALESCE(NULLIF("customerName", ''), 'Amazon Buyer');
ALTER TABLE "Ticket"
    ALTER COLUMN "customerName" SET NOT NULL,
    ALTER COLUMN "channel" DROP DEFAULT,
    ALTER COLUMN "channel" TYPE "TicketChannel" USING "channel"::"TicketChannel",
    ALTER COLUMN "status" DROP DEFAULT,
    ALTER COLUMN "status" TYPE "TicketStatus" USING (CASE WHEN "status" IN ('OPEN', 'PENDING', 'WAITING_CUSTOMER', 'RESOLVED', 'ESCALATED', 'CLOSED') THEN "status" ELSE 'OPEN' END)::"TicketStatus",
    ALTER COLUMN "status" SET DEFAULT 'OPEN',
    ALTER COLUMN "createdAt" TYPE timestamp(3) USING "createdAt" AT TIME ZONE 'UTC',
    ALTER COLUMN "createdAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    ALTER COLUMN "updatedAt" TYPE timestamp(3) USING "updatedAt" AT TIME ZONE 'UTC',
    ALTER COLUMN "updatedAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    DROP COLUMN "externalThreadId",
    DROP COLUMN "orderId",
    DROP COLUMN "lastMessageAt";
CREATE INDEX "Ticket_tenantId_externalId_idx" ON "Ticket" ("tenantId", "externalId");

-- ExternalMessage ---------------------------------------------------------
-- The seed's names (buyerName, buyerEmail), "language", an optional
-- "threadId" (the connector writes its thread key there), a required "raw"
-- ('{}' where none was stored). "ticketMessageId" links the
-- TicketMessage the connector wrote for it (KeyBuzz's TicketMessage has no
-- column for that). The connector's "body" no longer blocks KeyBuzz's
-- writes, which do not set it.
ALTER TABLE "ExternalMessage" RENAME COLUMN "authorName" TO "buyerName";
ALTER TABLE "ExternalMessage" RENAME COLUMN "authorEmail" TO "buyerEmail";
ALTER TABLE "ExternalMessage"
    ADD COLUMN "language" text,
    ADD COLUMN "ticketMessageId" text UNIQUE;
UPDATE "ExternalMessage" SET
    "language" = pg_temp.marketplace_language("marketplaceId"),
    "raw" = COALESCE("raw", '{}'::jsonb);
ALTER TABLE "ExternalMessage"
    ALTER COLUMN "type" TYPE "MarketplaceType" USING "type"::"MarketplaceType",
    ALTER COLUMN "threadId" DROP NOT NULL,
    ALTER COLUMN "body" DROP NOT NULL,
    ALTER COLUMN "raw" SET NOT NULL,
    ALTER COLUMN "receivedAt" TYPE timestamp(3) USING "receivedAt" AT TIME ZONE 'UTC',
    ALTER COLUMN "createdAt" TYPE timestamp(3) USING "createdAt" AT TIME ZONE 'UTC',
    ALTER COLUMN "createdAt" SET DEFAULT (now() AT TIME ZONE 'UTC');

-- TicketMessage -----------------------------------------------------------
-- KeyBuzz's TicketMessage: a message stored before is the customer's,
-- from the marketplace, sent when Amazon says it was received. Its
-- authorEmail and createdAt are its ExternalMessage's buyerEmail and
-- createdAt (one statement wrote both), which keep them.
ALTER TABLE "TicketMessage"
    ADD COLUMN "senderType" "MessageSenderType",
    ADD COLUMN "senderId" text,
    ADD COLUMN "senderName" text,
    ADD COLUMN "sentAt" timestamp(3),
    ADD COLUMN "isInternal" boolean NOT NULL DEFAULT false,
    ADD COLUMN "source" "MessageSource";
UPDATE "TicketMessage" SET
    "senderType" = CASE WHEN "direction" = 'OUTBOUND' THEN 'AGENT' ELSE 'CUSTOMER' END::"MessageSenderType",
    "senderName" = COALESCE(NULLIF("authorName", ''), 'Amazon Buyer'),
    "sentAt" = "receivedAt" AT TIME ZONE 'UTC',
    "source" = 'MARKETPLACE';
UPDATE "ExternalMessage" e SET "ticketMessageId" = tm."id"
FROM "TicketMessage" tm WHERE tm."externalMessageId" = e."id";
DROP INDEX IF EXISTS "TicketMessage_ticketId_receivedAt_idx";
ALTER TABLE "TicketMessage"
    ALTER COLUMN "senderType" SET NOT NULL,
    ALTER COLUMN "source" SET NOT NULL,
    ALTER COLUMN "sentAt" SET NOT NULL,
    ALTER COLUMN "sentAt" SET DEFAULT (now() AT TIME ZONE 'UTC'),
    DROP COLUMN "externalMessageId",
    DROP COLUMN "direction",
    DROP COLUMN "authorName",
    DROP COLUMN "authorEmail",
    DROP COLUMN "receivedAt",
    DROP COLUMN "createdAt";
CREATE INDEX "TicketMessage_ticketId_sentAt_idx" ON "TicketMessage" ("ticketId", "sentAt");
ALTER TABLE "ExternalMessage" ADD CONSTRAINT "ExternalMessage_ticketMessageId_fkey"
    FOREIGN KEY ("ticketMessageId") REFERENCES "TicketMessage" ("id") ON DELETE SET NULL;

-- Inbound mail (KeyBuzz's inbound_connections and inbound_addresses) ------
CREATE TABLE "inbound_connections" (
    "id"          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "tenantId"    text NOT NULL,
    "marketplace" text NOT NULL,
    "countries"   jsonb NOT NULL,
    "status"      "InboundConnectionStatus" NOT NULL DEFAULT 'DRAFT',
    "createdAt"   timestamp(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    "updatedAt"   timestamp(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    CONSTRAINT "inbound_connections_tenantId_marketplace_key" UNIQUE ("tenantId", "marketplace")
);
CREATE INDEX "inbound_connections_status_idx" ON "inbound_connections" ("status");

CREATE TABLE "inbound_addresses" (
    "id"                      text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "connectionId"            text NOT NULL REFERENCES "inbound_connections" ("id") ON DELETE CASCADE,
    "tenantId"                text NOT NULL,
    "marketplace"             text NOT NULL,
    "country"                 text NOT NULL,
    "token"                   text NOT NULL,
    "emailAddress"            text NOT NULL,
    "validationStatus"        "InboundValidationStatus" NOT NULL DEFAULT 'PENDING',
    "pipelineStatus"          "InboundValidationStatus" NOT NULL DEFAULT 'PENDING',
    "marketplaceStatus"       "InboundValidationStatus" NOT NULL DEFAULT 'PENDING',
    "marketplaceConfiguredAt" timestamp(3),
    "marketplaceConfiguredBy" text,
    "marketplaceConfigNote"   varchar(255),
    "lastInboundAt"           timestamp(3),
    "lastInboundMessageId"    text,
    "lastError"               text,
    "createdAt"               timestamp(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    "updatedAt"               timestamp(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    CONSTRAINT "inbound_addresses_tenantId_marketplace_country_key" UNIQUE ("tenantId", "marketplace", "country")
);
CREATE INDEX "inbound_addresses_validationStatus_lastInboundAt_idx" ON "inbound_addresses" ("validationStatus", "lastInboundAt");
CREATE INDEX "inbound_addresses_pipelineStatus_marketplaceStatus_idx" ON "inbound_addresses" ("pipelineStatus", "marketplaceStatus");
