-- Polling: one poller per connection (a lease column, which works behind RDS
-- Proxy where advisory locks would pin connections), per-connection counters,
-- and the persisted SP-API rate budget (a token bucket per connection and
-- operation). See docs/polling.md.

ALTER TABLE "MarketplaceSyncState"
    -- The poller holding the connection until "leaseUntil"; a poll takes it
    -- with UPDATE … WHERE "leaseUntil" IS NULL OR "leaseUntil" < now.
    ADD COLUMN "leaseOwner"          text,
    ADD COLUMN "leaseUntil"          timestamptz(3),
    ADD COLUMN "pollCount"           bigint NOT NULL DEFAULT 0,
    ADD COLUMN "pageCount"           bigint NOT NULL DEFAULT 0,
    ADD COLUMN "eventCount"          bigint NOT NULL DEFAULT 0,
    ADD COLUMN "errorCount"          bigint NOT NULL DEFAULT 0,
    ADD COLUMN "consecutiveFailures" integer NOT NULL DEFAULT 0,
    ADD COLUMN "lastErrorAt"         timestamptz(3);

-- A token bucket mirroring Amazon's usage plan for (connection, operation):
-- "tokens" as of "refilledAt", refilled at "rate" per second up to "burst".
-- A 429 empties it and sets "throttledUntil".
CREATE TABLE "MarketplaceRateBudget" (
    "id"              text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "connectionId"    text NOT NULL REFERENCES "MarketplaceConnection" ("id") ON DELETE CASCADE,
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
    CONSTRAINT "MarketplaceRateBudget_connectionId_operation_key" UNIQUE ("connectionId", "operation")
);

-- The fan-out claims due connections in chunks in ("nextPollAt", "id")
-- order, each chunk starting after the previous one (keyset), so 100,000
-- tenants cost one index range scan, not a rescan per chunk.
CREATE INDEX "MarketplaceConnection_due_id_idx" ON "MarketplaceConnection" ("nextPollAt", "id") WHERE "status" = 'CONNECTED';

-- Ticket lookups by the ExternalMessage row that created them.
CREATE INDEX "ExternalMessage_ticketId_idx" ON "ExternalMessage" ("ticketId");
