package openapicheck

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// AmazonRules are the rules of the SP-API operations the connector calls
// that their models state only in prose (parameter descriptions), written by
// hand. Everything else (paths, methods, parameter names, types, formats,
// enums, maxItems, required) is read from the model files.
//
// Orders v2026-01-01 searchOrders (orders_2026-01-01.json):
//   - exactly one of createdAfter and lastUpdatedAfter;
//   - createdBefore only with createdAfter, lastUpdatedBefore only with
//     lastUpdatedAfter (each pair excludes the other);
//   - createdBefore / lastUpdatedBefore equal to or after the matching
//     "after";
//   - maxResultsPerPage between 1 and 100;
//   - marketplaceIds present: NOT a rule of the model (it declares the
//     parameter optional); kept because Orders v0 required it, searchOrders
//     without it is unspecified, and the connector always sends it.
//
// "at least two minutes before the time of the request" (createdBefore,
// lastUpdatedBefore) needs the server's clock, and "the other parameters
// with the same values as the request that produced the token"
// (SearchOrdersResponse.pagination) needs the token's history: the sandbox
// checks those two (dev/sandbox).
var AmazonRules = []Rule{
	{
		Operation: "searchOrders",
		Text:      "You must provide exactly one of createdAfter and lastUpdatedAfter.",
		Check: func(q url.Values) error {
			if q.Has("createdAfter") == q.Has("lastUpdatedAfter") {
				return errors.New("exactly one of createdAfter and lastUpdatedAfter must be given")
			}
			return nil
		},
	},
	{
		Operation: "searchOrders",
		Text:      "If createdAfter (or createdBefore) is provided, neither lastUpdatedAfter nor lastUpdatedBefore may be provided.",
		Check: func(q url.Values) error {
			if (q.Has("createdAfter") || q.Has("createdBefore")) && (q.Has("lastUpdatedAfter") || q.Has("lastUpdatedBefore")) {
				return errors.New("created* and lastUpdated* parameters exclude each other")
			}
			return nil
		},
	},
	{
		Operation: "searchOrders",
		Text:      "createdBefore only with createdAfter; lastUpdatedBefore only with lastUpdatedAfter.",
		Check: func(q url.Values) error {
			if q.Has("createdBefore") && !q.Has("createdAfter") {
				return errors.New("createdBefore needs createdAfter")
			}
			if q.Has("lastUpdatedBefore") && !q.Has("lastUpdatedAfter") {
				return errors.New("lastUpdatedBefore needs lastUpdatedAfter")
			}
			return nil
		},
	},
	{
		Operation: "searchOrders",
		Text:      "createdBefore / lastUpdatedBefore, if provided, must be equal to or after createdAfter / lastUpdatedAfter.",
		Check: func(q url.Values) error {
			for _, p := range [][2]string{{"createdAfter", "createdBefore"}, {"lastUpdatedAfter", "lastUpdatedBefore"}} {
				a, errA := time.Parse(time.RFC3339Nano, q.Get(p[0]))
				b, errB := time.Parse(time.RFC3339Nano, q.Get(p[1]))
				if errA == nil && errB == nil && b.Before(a) {
					return fmt.Errorf("%s is before %s", p[1], p[0])
				}
			}
			return nil
		},
	},
	{
		Operation: "searchOrders",
		Text:      "maxResultsPerPage: the value must be between 1 and 100.",
		Check: func(q url.Values) error {
			if !q.Has("maxResultsPerPage") {
				return nil
			}
			if n, err := strconv.Atoi(q.Get("maxResultsPerPage")); err == nil && (n < 1 || n > 100) {
				return fmt.Errorf("maxResultsPerPage %d is not between 1 and 100", n)
			}
			return nil // a non-integer is the model's type check
		},
	},
	{
		Operation: "searchOrders",
		Text:      "marketplaceIds is required (not in the model: see AmazonRules).",
		Check: func(q url.Values) error {
			if q.Get("marketplaceIds") == "" {
				return errors.New("marketplaceIds is required")
			}
			return nil
		},
	},
}
