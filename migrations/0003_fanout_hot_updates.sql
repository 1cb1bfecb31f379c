-- Fan-out claims update only "pollClaimedUntil", which no index covers: with
-- free space left on each page PostgreSQL can make those updates HOT (no
-- index writes). The first due index is superseded by
-- "MarketplaceConnection_due_id_idx" (keyset claiming on nextPollAt, id).
DROP INDEX IF EXISTS "MarketplaceConnection_due_idx";
ALTER TABLE "MarketplaceConnection" SET (fillfactor = 70);
