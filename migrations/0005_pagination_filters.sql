-- Amazon's pagination contract (Orders v2026-01-01 model,
-- SearchOrdersResponse.pagination): the next page of a searchOrders window is
-- asked with the pagination token AND every other parameter with the same
-- values as the request that produced it. With the token, the sync state
-- therefore keeps that request's filters, so a poll resumed after a crash or
-- an SQS redelivery resends them exactly: the window's start
-- (lastUpdatedAfter, to the second) and the marketplaces asked for.
-- Both are NULL when no window is open ("paginationToken" NULL).
ALTER TABLE "MarketplaceSyncState"
    ADD COLUMN "pageWindowStart"    timestamptz(3),
    ADD COLUMN "pageMarketplaceIds" text[];
