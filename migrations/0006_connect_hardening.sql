-- Connect, hardened (docs/connect.md): the consent bound to the browser that
-- started it, the Appstore-initiated log-in, one seller per tenant,
-- disconnect, each connection's own application, renewal before expiry.
-- Only additions: no contract column is renamed, retyped or dropped.

-- Disconnect sets KeyBuzz's DISABLED. When "status" is still text with the
-- CHECK of migration 0001 (migration 0004 makes it KeyBuzz's enum type, which has
-- DISABLED), widen the CHECK; an enum column is left as it is.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'MarketplaceConnection' AND column_name = 'status' AND data_type = 'text') THEN
        ALTER TABLE "MarketplaceConnection" DROP CONSTRAINT IF EXISTS "MarketplaceConnection_status_check";
        ALTER TABLE "MarketplaceConnection" ADD CONSTRAINT "MarketplaceConnection_status_check"
            CHECK ("status" IN ('PENDING', 'CONNECTED', 'NEEDS_REAUTH', 'ERROR', 'DISABLED', 'DISCONNECTED'));
    END IF;
END $$;

ALTER TABLE "MarketplaceConnection"
    -- The SP-API application that authorized the connection: its refresh
    -- token works only with that app's LWA credentials.
    ADD COLUMN "appSource"    text NOT NULL DEFAULT 'external_test'
                              CHECK ("appSource" IN ('external_test', 'keybuzz')),
    -- When the seller last consented: a public app's authorization lasts 365 days.
    ADD COLUMN "authorizedAt" timestamptz(3),
    -- Why the seller must consent again (app_migration, authorization_expired,
    -- revoked); NULL otherwise. renewal_due is computed, never stored.
    ADD COLUMN "reauthReason" text;

-- Connections made before this migration consented when they connected.
UPDATE "MarketplaceConnection" SET "authorizedAt" = "connectedAt"
WHERE "authorizedAt" IS NULL AND "connectedAt" IS NOT NULL;

-- One seller account (selling partner id and region) belongs to one tenant.
-- Nothing checked it before this migration: of duplicates the most recently connected keeps
-- the seller, the others lose it (ERROR, their seller id cleared) and must
-- reconnect.
WITH ranked AS (
    SELECT "id", row_number() OVER (
               PARTITION BY "type", "sellingPartnerId", lower(COALESCE("region", ''))
               ORDER BY "connectedAt" DESC NULLS LAST, "updatedAt" DESC, "id") AS n
    FROM "MarketplaceConnection" WHERE "sellingPartnerId" IS NOT NULL
)
UPDATE "MarketplaceConnection" c SET
    "sellingPartnerId" = NULL,
    "status" = 'ERROR',
    "lastError" = 'This Amazon seller account is connected to another KeyBuzz account',
    "updatedAt" = now()
FROM ranked WHERE ranked."id" = c."id" AND ranked.n > 1;

-- Disconnect clears "sellingPartnerId", so a disconnected seller may connect
-- to another tenant.
CREATE UNIQUE INDEX "MarketplaceConnection_seller_key"
    ON "MarketplaceConnection" ("type", "sellingPartnerId", lower(COALESCE("region", '')))
    WHERE "sellingPartnerId" IS NOT NULL;

-- Renewal: connections ordered by consent time (the status metric and the
-- fan-out's expiry step read this range).
CREATE INDEX "MarketplaceConnection_authorizedAt_idx"
    ON "MarketplaceConnection" ("authorizedAt") WHERE "authorizedAt" IS NOT NULL;

ALTER TABLE "MarketplaceOAuthState"
    -- SHA-256 of the browser binding (the value of the cookie start set):
    -- the callback completes only in the browser that holds it.
    ADD COLUMN "bindingHash" text,
    -- The frontend page to come back to (an allowlisted absolute URL).
    ADD COLUMN "returnUrl"   text,
    -- The application whose consent this state started.
    ADD COLUMN "appSource"   text NOT NULL DEFAULT 'external_test',
    -- The seller Amazon named at the Appstore log-in, when it started there.
    ADD COLUMN "sellingPartnerId" text;

-- Appstore-initiated log-ins: Amazon's parameters, kept until the signed-in
-- tenant starts the consent (single use, 15 minutes; only a SHA-256 of the
-- log-in id is stored).
CREATE TABLE "MarketplaceAppstoreLogin" (
    "id"                text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "loginHash"         text NOT NULL UNIQUE,
    "amazonCallbackUri" text NOT NULL,
    "amazonState"       text NOT NULL,
    "sellingPartnerId"  text,
    "version"           text,
    "expiresAt"         timestamptz(3) NOT NULL,
    "consumedAt"        timestamptz(3),
    "createdAt"         timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX "MarketplaceAppstoreLogin_expiresAt_idx" ON "MarketplaceAppstoreLogin" ("expiresAt");
