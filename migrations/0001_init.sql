-- The seed's Prisma models (the contract with the rest of KeyBuzz) and the
-- pending OAuth states of the Connect flow.

CREATE TABLE "MarketplaceConnection" (
    "id"               text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "tenantId"         text NOT NULL,
    "type"             text NOT NULL DEFAULT 'AMAZON',
    "status"           text NOT NULL DEFAULT 'PENDING'
                       CHECK ("status" IN ('PENDING', 'CONNECTED', 'NEEDS_REAUTH', 'ERROR', 'DISCONNECTED')),
    "displayName"      text,
    "region"           text,
    "marketplaceId"    text,
    "sellingPartnerId" text,
    "vaultPath"        text,
    "lastSyncAt"       timestamptz(3),
    "lastError"        text,
    "connectedAt"      timestamptz(3),
    -- Poll scheduling: due when "nextPollAt" <= now(); fan-out claims a due
    -- connection until "pollClaimedUntil" so overlapping runs skip it.
    "nextPollAt"       timestamptz(3) NOT NULL DEFAULT now(),
    "pollClaimedUntil" timestamptz(3),
    "createdAt"        timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"        timestamptz(3) NOT NULL DEFAULT now(),
    CONSTRAINT "MarketplaceConnection_tenantId_type_key" UNIQUE ("tenantId", "type")
);
CREATE INDEX "MarketplaceConnection_due_idx" ON "MarketplaceConnection" ("nextPollAt") WHERE "status" = 'CONNECTED';

CREATE TABLE "MarketplaceSyncState" (
    "id"              text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "connectionId"    text NOT NULL UNIQUE REFERENCES "MarketplaceConnection" ("id") ON DELETE CASCADE,
    "tenantId"        text NOT NULL,
    "cursor"          timestamptz(3),
    "paginationToken" text,
    "lastSyncAt"      timestamptz(3),
    "lastSuccessAt"   timestamptz(3),
    "lastError"       text,
    "createdAt"       timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"       timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE "Ticket" (
    "id"               text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "tenantId"         text NOT NULL,
    "channel"          text NOT NULL DEFAULT 'AMAZON',
    "externalThreadId" text,
    "orderId"          text,
    "subject"          text NOT NULL,
    "status"           text NOT NULL DEFAULT 'OPEN',
    "customerName"     text,
    "customerEmail"    text,
    "lastMessageAt"    timestamptz(3),
    "createdAt"        timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"        timestamptz(3) NOT NULL DEFAULT now(),
    CONSTRAINT "Ticket_tenantId_channel_externalThreadId_key" UNIQUE ("tenantId", "channel", "externalThreadId")
);
CREATE INDEX "Ticket_tenantId_lastMessageAt_idx" ON "Ticket" ("tenantId", "lastMessageAt" DESC);

CREATE TABLE "ExternalMessage" (
    "id"            text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "tenantId"      text NOT NULL,
    "connectionId"  text NOT NULL REFERENCES "MarketplaceConnection" ("id") ON DELETE CASCADE,
    "type"          text NOT NULL,
    "externalId"    text NOT NULL,
    "threadId"      text NOT NULL,
    "orderId"       text,
    "marketplaceId" text,
    "direction"     text NOT NULL DEFAULT 'INBOUND',
    "authorName"    text,
    "authorEmail"   text,
    "subject"       text,
    "body"          text NOT NULL,
    "receivedAt"    timestamptz(3) NOT NULL,
    "raw"           jsonb,
    "ticketId"      text REFERENCES "Ticket" ("id") ON DELETE SET NULL,
    "createdAt"     timestamptz(3) NOT NULL DEFAULT now(),
    CONSTRAINT "ExternalMessage_type_connectionId_externalId_key" UNIQUE ("type", "connectionId", "externalId")
);
CREATE INDEX "ExternalMessage_tenantId_receivedAt_idx" ON "ExternalMessage" ("tenantId", "receivedAt");

CREATE TABLE "TicketMessage" (
    "id"                text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "ticketId"          text NOT NULL REFERENCES "Ticket" ("id") ON DELETE CASCADE,
    "tenantId"          text NOT NULL,
    "externalMessageId" text UNIQUE REFERENCES "ExternalMessage" ("id") ON DELETE SET NULL,
    "direction"         text NOT NULL DEFAULT 'INBOUND',
    "authorName"        text,
    "authorEmail"       text,
    "body"              text NOT NULL,
    "receivedAt"        timestamptz(3) NOT NULL,
    "createdAt"         timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX "TicketMessage_ticketId_receivedAt_idx" ON "TicketMessage" ("ticketId", "receivedAt");

-- Pending OAuth states: only a SHA-256 of the state is stored; single use
-- ("consumedAt"), 15-minute TTL ("expiresAt"), bound to a tenant.
CREATE TABLE "MarketplaceOAuthState" (
    "id"           text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "stateHash"    text NOT NULL UNIQUE,
    "tenantId"     text NOT NULL,
    "connectionId" text NOT NULL REFERENCES "MarketplaceConnection" ("id") ON DELETE CASCADE,
    "expiresAt"    timestamptz(3) NOT NULL,
    "consumedAt"   timestamptz(3),
    "createdAt"    timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX "MarketplaceOAuthState_expiresAt_idx" ON "MarketplaceOAuthState" ("expiresAt");
