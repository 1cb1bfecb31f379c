// Package sandbox is KeyBuzz's own stand-in for Amazon: one http.Handler
// that answers like Login with Amazon (POST /auth/o2/token), Seller
// Central's consent page (/apps/authorize/consent), SP-API Orders
// v2026-01-01 (searchOrders, getOrder) and Sellers v1
// (getMarketplaceParticipations: the calling seller's marketplaces, all
// participating, storeName = the seller's name), with Amazon's usage-plan
// rate limits, injectable faults and a clock tests can drive. The connector
// reaches it only through AMAZON_LWA_TOKEN_URL, AMAZON_SPAPI_ENDPOINT and
// AMAZON_SELLER_CENTRAL_URL; nothing in the connector knows it is a sandbox.
//
// # Sellers
//
// Sellers are deterministic: seller n (1-based) has id SellerID(n), is in the
// EU region ("eu", the sellingpartnerapi-eu host) and sells on Amazon.fr
// (A13V1IB3VIYZZH) plus one or two of Amazon.de (A1PA6795UKMFR9), Amazon.it
// (APJ6JRA9NG5V4) and Amazon.es (A1RKKUPIHCS9HS). The default three:
//
//	n  id              marketplaces
//	1  A13YSNECFL0GHD  FR A13V1IB3VIYZZH, ES A1RKKUPIHCS9HS, IT APJ6JRA9NG5V4
//	2  A4KLYWTDN4PI5K  FR A13V1IB3VIYZZH, ES A1RKKUPIHCS9HS, IT APJ6JRA9NG5V4
//	3  ADU3UQCEINCRK4  FR A13V1IB3VIYZZH, DE A1PA6795UKMFR9, IT APJ6JRA9NG5V4
//
// # Orders
//
// Each seller's orders are generated from its id (seeded PRNG) relative to the
// sandbox time at New(): 8 to 13 orders a day over the previous 30 days, about
// one in ten with a buyer cancellation request on one item. Answers carry
// only the datasets asked for in includedData, as Amazon does: BUYER adds
// buyer (name and the anonymized @marketplace.amazon.<tld> address),
// CANCELLATION adds orderItems[].cancellation.cancellationRequest
// (requester BUYER, cancelReason), FULFILLMENT and PROCEEDS their blocks.
// searchOrders returns orders with lastUpdatedTime (or createdTime) in
// [after, before), before defaulting to now minus two minutes, sorted by that
// time then orderId. Pagination tokens are opaque, kept server-side, replay
// the first query's filters and expire after 24 hours of sandbox time.
//
// # Test controls
//
// The exported methods (RevokeSeller, ExpireAccessTokens, RotateRefreshTokens,
// SetRatePlan, InjectFault, AddOrder, AddCancellationRequest, BuyerEvents,
// IssuedSecrets, Stats) are also served as JSON under /_sandbox/; see
// cmd/amazon-sandbox/README.md.
package sandbox
