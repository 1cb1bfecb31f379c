-- Push: Amazon's ORDER_CHANGE notifications delivered to our SQS queue, with
-- polling as the fallback. See docs/push.md.

-- The notifications destination of the application for one queue in one
-- region: created once (createDestination with a grantless token) by
-- whichever function needs it first, then read by every function.
CREATE TABLE "MarketplaceNotificationDestination" (
    "id"            text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "applicationId" text NOT NULL,
    "region"        text NOT NULL,
    "queueArn"      text NOT NULL,
    "destinationId" text NOT NULL,
    "createdAt"     timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"     timestamptz(3) NOT NULL DEFAULT now(),
    CONSTRAINT "MarketplaceNotificationDestination_app_region_arn_key" UNIQUE ("applicationId", "region", "queueArn")
);

-- The connection's ORDER_CHANGE subscription (created with the seller's
-- token): notifications are routed by "pushSubscriptionId", and a
-- connection that has one is polled at the fallback interval.
ALTER TABLE "MarketplaceConnection"
    ADD COLUMN "pushSubscriptionId"  text,
    ADD COLUMN "pushDestinationId"   text,
    ADD COLUMN "pushSubscribedAt"    timestamptz(3),
    -- The last subscription attempt and its failure, so that retries are spaced.
    ADD COLUMN "pushAttemptAt"       timestamptz(3),
    ADD COLUMN "pushError"           text,
    ADD COLUMN "lastNotificationAt"  timestamptz(3);

CREATE UNIQUE INDEX "MarketplaceConnection_pushSubscriptionId_key"
    ON "MarketplaceConnection" ("pushSubscriptionId") WHERE "pushSubscriptionId" IS NOT NULL;

-- Every notification received, once per NotificationId (the SQS message id
-- when the body has none), with what was done with it: stored, a duplicate,
-- ignored, or why it was dropped (unknown subscription, seller mismatch,
-- connection not connected, malformed). Never the buyer's data.
CREATE TABLE "MarketplaceNotification" (
    "id"               text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "notificationId"   text NOT NULL,
    "notificationType" text,
    "subscriptionId"   text,
    "connectionId"     text REFERENCES "MarketplaceConnection" ("id") ON DELETE SET NULL,
    "tenantId"         text,
    "orderId"          text,
    "changeType"       text,
    "outcome"          text NOT NULL,
    "detail"           text,
    "eventTime"        timestamptz(3),
    "messagesCreated"  integer NOT NULL DEFAULT 0,
    "receivedCount"    integer NOT NULL DEFAULT 1,
    "createdAt"        timestamptz(3) NOT NULL DEFAULT now(),
    "updatedAt"        timestamptz(3) NOT NULL DEFAULT now(),
    CONSTRAINT "MarketplaceNotification_notificationId_key" UNIQUE ("notificationId")
);
CREATE INDEX "MarketplaceNotification_connectionId_createdAt_idx" ON "MarketplaceNotification" ("connectionId", "createdAt");
