-- The connector's own schema (docs/keybuzz-contract.md, "Layout").
--
-- KeyBuzz's backend owns the schema `public` and manages it with Prisma
-- (prisma/schema.prisma; `prisma db push` drops whatever the file does not
-- declare). The connector reads and writes KeyBuzz's tables there as they
-- are and never creates, alters, constrains or re-types anything in it:
-- everything it needs besides them lives here, in `keybuzz_amazon`, keyed
-- by KeyBuzz's ids. No foreign key points from here into `public` (it would
-- refuse or cascade KeyBuzz's own deletes); rows here refer to KeyBuzz's by
-- id, and the statements of shared/postgres keep them consistent.
--
-- Applies on KeyBuzz's database with data in it, and again as a no-op
-- (shared/migrate records it). Times here are timestamptz; KeyBuzz's are
-- timestamp(3) holding UTC.

-- The schema itself is created by shared/migrate when missing (a
-- deployment may create it beforehand, owned by the connector's role, which
-- then needs no CREATE on the database: docs/deploy.md).

-- A text id in the shape of Prisma's cuid() (a "c" and 24 lowercase
-- alphanumerics, here 96 random bits), for the rows the connector inserts
-- into KeyBuzz's tables, whose ids Prisma's client draws itself.
CREATE OR REPLACE FUNCTION keybuzz_amazon.cuid() RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT 'c' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 24)
$$;

-- What the connector knows about a KeyBuzz MarketplaceConnection it manages:
-- one per tenant and marketplace type (the connection the connector's start
-- created or adopted), the seller, the application, the consent, the
-- re-authorization reason (KeyBuzz's status is then ERROR: its enum has no
-- NEEDS_REAUTH), poll scheduling and the ORDER_CHANGE subscription.
CREATE TABLE IF NOT EXISTS keybuzz_amazon."Connection" (
    "connectionId"       text PRIMARY KEY,           -- KeyBuzz's MarketplaceConnection.id
    "tenantId"           text NOT NULL,
    "type"               text NOT NULL DEFAULT 'AMAZON',
    -- The seller and the region of its consent (one seller per tenant).
    "sellingPartnerId"   text,
    "sellerRegion"       text,
    -- The SP-API application that authorized the connection.
    "appSource"          text NOT NULL DEFAULT 'external_test' CHECK ("appSource" IN ('external_test', 'keybuzz')),
    "connectedAt"        timestamptz(3),
    -- When the seller last consented: a public app's authorization lasts 365 days.
    "authorizedAt"       timestamptz(3),
    -- Why the seller must consent again (revoked, app_migration,
    -- authorization_expired) while KeyBuzz's status is ERROR; NULL otherwise.
    "reauthReason"       text,
    -- Poll scheduling: "pollable" while the connector knows the connection
    -- CONNECTED; due when "nextPollAt" <= now; the fan-out claims a due
    -- connection until "pollClaimedUntil" so overlapping runs skip it.
    "pollable"           boolean NOT NULL DEFAULT false,
    "nextPollAt"         timestamptz(3) NOT NULL DEFAULT now(),
    "pollClaimedUntil"   timestamptz(3),
    -- The ORDER_CHANGE subscription (docs/push.md).
    "pushSubscriptionId" text,
    "pushDestinationId"  text,
    "pushSubscribedAt"   timestamptz(3),
    "pushAttemptAt"      timestamptz(3),
    "pushError"          text,
    "lastNotificationAt" timestamptz(3),
    "createdAt"          timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"          timestamptz(3) NOT NULL DEFAULT now(),
    CONSTRAINT "Connection_tenantId_type_key" UNIQUE ("tenantId", "type")
) WITH (fillfactor = 50);
-- One seller account belongs to one tenant (disconnect clears the seller).
CREATE UNIQUE INDEX IF NOT EXISTS "Connection_seller_key"
    ON keybuzz_amazon."Connection" ("type", "sellingPartnerId", lower(COALESCE("sellerRegion", '')))
    WHERE "sellingPartnerId" IS NOT NULL;
-- The fan-out claims due connections in ("nextPollAt", "connectionId") keyset order.
CREATE INDEX IF NOT EXISTS "Connection_due_idx"
    ON keybuzz_amazon."Connection" ("nextPollAt", "connectionId") WHERE "pollable";
CREATE UNIQUE INDEX IF NOT EXISTS "Connection_pushSubscriptionId_key"
    ON keybuzz_amazon."Connection" ("pushSubscriptionId") WHERE "pushSubscriptionId" IS NOT NULL;
CREATE INDEX IF NOT EXISTS "Connection_authorizedAt_idx"
    ON keybuzz_amazon."Connection" ("authorizedAt") WHERE "authorizedAt" IS NOT NULL;

-- Pending OAuth states of the Connect flow: only a SHA-256 of the state,
-- single use, 15 minutes, bound to the tenant and to the browser that
-- started (KeyBuzz's own OAuth state table keeps its plain states: the connector
-- never writes it).
CREATE TABLE IF NOT EXISTS keybuzz_amazon."ConnectState" (
    "stateHash"        text PRIMARY KEY,
    "tenantId"         text NOT NULL,
    "connectionId"     text NOT NULL REFERENCES keybuzz_amazon."Connection" ("connectionId") ON DELETE CASCADE,
    "bindingHash"      text NOT NULL,
    "returnUrl"        text,
    "appSource"        text NOT NULL,
    "sellingPartnerId" text,
    "expiresAt"        timestamptz(3) NOT NULL,
    "consumedAt"       timestamptz(3),
    "createdAt"        timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS "ConnectState_tenantId_expiresAt_idx" ON keybuzz_amazon."ConnectState" ("tenantId", "expiresAt");
CREATE INDEX IF NOT EXISTS "ConnectState_connectionId_idx" ON keybuzz_amazon."ConnectState" ("connectionId");

-- Appstore-initiated log-ins, kept until the signed-in tenant starts the
-- consent (single use, 15 minutes; a SHA-256 of the log-in id).
CREATE TABLE IF NOT EXISTS keybuzz_amazon."AppstoreLogin" (
    "loginHash"         text PRIMARY KEY,
    "amazonCallbackUri" text NOT NULL,
    "amazonState"       text NOT NULL,
    "sellingPartnerId"  text,
    "version"           text,
    "expiresAt"         timestamptz(3) NOT NULL,
    "consumedAt"        timestamptz(3),
    "createdAt"         timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS "AppstoreLogin_expiresAt_idx" ON keybuzz_amazon."AppstoreLogin" ("expiresAt");

-- A connection's poll: one poller at a time (a lease column, which works
-- behind RDS Proxy where advisory locks would pin), the time cursor, the
-- pagination token with the filters that produced it (Amazon requires them
-- again with the token), counters, and the id of the KeyBuzz
-- MarketplaceSyncState row the connector keeps in the seed's form.
CREATE TABLE IF NOT EXISTS keybuzz_amazon."SyncState" (
    "connectionId"        text PRIMARY KEY REFERENCES keybuzz_amazon."Connection" ("connectionId") ON DELETE CASCADE,
    "tenantId"            text NOT NULL,
    "syncStateId"         text NOT NULL UNIQUE,    -- KeyBuzz's MarketplaceSyncState.id
    "leaseOwner"          text,
    "leaseUntil"          timestamptz(3),
    "cursorAt"            timestamptz(3),
    "paginationToken"     text,
    "pageWindowStart"     timestamptz(3),
    "pageMarketplaceIds"  text[],
    "lastPolledAt"        timestamptz(3),
    "lastSuccessAt"       timestamptz(3),
    "lastError"           text,
    "lastErrorAt"         timestamptz(3),
    "pollCount"           bigint NOT NULL DEFAULT 0,
    "pageCount"           bigint NOT NULL DEFAULT 0,
    "eventCount"          bigint NOT NULL DEFAULT 0,
    "errorCount"          bigint NOT NULL DEFAULT 0,
    "consecutiveFailures" integer NOT NULL DEFAULT 0,
    "createdAt"           timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"           timestamptz(3) NOT NULL DEFAULT now()
);

-- A token bucket mirroring Amazon's usage plan for (connection, operation).
CREATE TABLE IF NOT EXISTS keybuzz_amazon."RateBudget" (
    "connectionId"    text NOT NULL REFERENCES keybuzz_amazon."Connection" ("connectionId") ON DELETE CASCADE,
    "operation"       text NOT NULL,
    "tokens"          double precision NOT NULL,
    "rate"            double precision NOT NULL,
    "burst"           integer NOT NULL,
    "refilledAt"      timestamptz(6) NOT NULL,
    "throttledUntil"  timestamptz(3),
    "count429"        bigint NOT NULL DEFAULT 0,
    "consecutive429"  integer NOT NULL DEFAULT 0,
    "callCount"       bigint NOT NULL DEFAULT 0,
    "lastThrottledAt" timestamptz(3),
    "createdAt"       timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"       timestamptz(3) NOT NULL DEFAULT now(),
    PRIMARY KEY ("connectionId", "operation")
);

-- One KeyBuzz Ticket per tenant and thread (the order id, or a relay
-- mail's buyer alias when it names no order), whatever channel brings the
-- next message.
CREATE TABLE IF NOT EXISTS keybuzz_amazon."TicketThread" (
    "tenantId"      text NOT NULL,
    "threadKey"     text NOT NULL,
    "ticketId"      text NOT NULL UNIQUE,           -- KeyBuzz's Ticket.id
    "orderId"       text,
    "lastMessageAt" timestamptz(3),
    "createdAt"     timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"     timestamptz(3) NOT NULL DEFAULT now(),
    PRIMARY KEY ("tenantId", "threadKey")
);
CREATE INDEX IF NOT EXISTS "TicketThread_tenantId_lastMessageAt_idx" ON keybuzz_amazon."TicketThread" ("tenantId", "lastMessageAt" DESC);

-- What the connector knows of each ExternalMessage it stored: the
-- TicketMessage written for it, the marketplace, the subject, the text as
-- the buyer sent it and the thread key (KeyBuzz's model has none of these
-- columns; the TicketMessage's body is KeyBuzz's to show).
CREATE TABLE IF NOT EXISTS keybuzz_amazon."Message" (
    "externalMessageId" text PRIMARY KEY,           -- KeyBuzz's ExternalMessage.id
    "tenantId"          text NOT NULL,
    "connectionId"      text NOT NULL,
    "ticketId"          text NOT NULL,
    "ticketMessageId"   text UNIQUE,                -- KeyBuzz's TicketMessage.id
    "threadKey"         text NOT NULL,
    "marketplaceId"     text,
    "subject"           text,
    "body"              text,
    "createdAt"         timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS "Message_ticketId_idx" ON keybuzz_amazon."Message" ("ticketId");

-- The relay-mail intake (docs/inbound-mail.md): one row per received mail
-- and recipient with its outcome and the verdicts that decided it.
CREATE TABLE IF NOT EXISTS keybuzz_amazon."InboundMail" (
    "id"                text PRIMARY KEY DEFAULT keybuzz_amazon.cuid(),
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
    "externalMessageId" text,
    "ticketId"          text,
    "receivedAt"        timestamptz(3) NOT NULL,
    "createdAt"         timestamptz(3) NOT NULL DEFAULT now(),
    CONSTRAINT "InboundMail_sesMessageId_recipient_key" UNIQUE ("sesMessageId", "recipient")
);
CREATE INDEX IF NOT EXISTS "InboundMail_tenantId_createdAt_idx" ON keybuzz_amazon."InboundMail" ("tenantId", "createdAt" DESC);
CREATE INDEX IF NOT EXISTS "InboundMail_outcome_createdAt_idx" ON keybuzz_amazon."InboundMail" ("outcome", "createdAt" DESC);

-- Attachments of an accepted mail: each an object of its own in the bucket.
CREATE TABLE IF NOT EXISTS keybuzz_amazon."InboundMailAttachment" (
    "id"                text PRIMARY KEY DEFAULT keybuzz_amazon.cuid(),
    "tenantId"          text NOT NULL,
    "externalMessageId" text NOT NULL,
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
CREATE INDEX IF NOT EXISTS "InboundMailAttachment_tenantId_idx" ON keybuzz_amazon."InboundMailAttachment" ("tenantId");

-- The order context a ticket gets after it exists: PENDING until getOrder
-- succeeds within the connection's rate budget, then DONE.
CREATE TABLE IF NOT EXISTS keybuzz_amazon."TicketOrderContext" (
    "ticketId"      text PRIMARY KEY,
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
CREATE INDEX IF NOT EXISTS "TicketOrderContext_pending_idx" ON keybuzz_amazon."TicketOrderContext" ("nextAttemptAt") WHERE "status" = 'PENDING';

-- The application's notifications destination per queue and region.
CREATE TABLE IF NOT EXISTS keybuzz_amazon."NotificationDestination" (
    "applicationId" text NOT NULL,
    "region"        text NOT NULL,
    "queueArn"      text NOT NULL,
    "destinationId" text NOT NULL,
    "createdAt"     timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"     timestamptz(3) NOT NULL DEFAULT now(),
    PRIMARY KEY ("applicationId", "region", "queueArn")
);

-- Every ORDER_CHANGE notification received, once per NotificationId, with
-- what was done with it. Never the buyer's data.
CREATE TABLE IF NOT EXISTS keybuzz_amazon."Notification" (
    "notificationId"   text PRIMARY KEY,
    "notificationType" text,
    "subscriptionId"   text,
    "connectionId"     text,
    "tenantId"         text,
    "orderId"          text,
    "changeType"       text,
    "outcome"          text NOT NULL,
    "detail"           text,
    "eventTime"        timestamptz(3),
    "messagesCreated"  integer NOT NULL DEFAULT 0,
    "receivedCount"    integer NOT NULL DEFAULT 1,
    "createdAt"        timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"        timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS "Notification_connectionId_createdAt_idx" ON keybuzz_amazon."Notification" ("connectionId", "createdAt");
