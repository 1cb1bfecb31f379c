package sandbox

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
)

const (
	pageTokenTTL  = 24 * time.Hour
	beforeMargin  = 2 * time.Minute
	maxPageSize   = 100
	jsonType      = "application/json"
	detailMissing = "Access token is missing in the request header."
	detailInvalid = "The access token you provided is revoked, malformed or invalid."
	detailExpired = "The access token you provided has expired."
)

var includedDataValues = map[string]bool{
	"BUYER": true, "RECIPIENT": true, "PROCEEDS": true, "EXPENSE": true, "PROMOTION": true,
	"CANCELLATION": true, "FULFILLMENT": true, "PACKAGES": true, "TAX": true, "PAYMENT": true,
	"FULFILLMENT_ORDERS": true,
}

var fulfillmentStatusValues = map[string]bool{
	"PENDING_AVAILABILITY": true, "PENDING": true, "UNSHIPPED": true, "PARTIALLY_SHIPPED": true,
	"SHIPPED": true, "CANCELLED": true, "UNFULFILLABLE": true,
}

var fulfilledByValues = map[string]bool{"MERCHANT": true, "AMAZON": true}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
}

func writeAPIError(w http.ResponseWriter, status int, e apiError) {
	writeJSON(w, status, jsonType, map[string][]apiError{"errors": {e}})
}

func invalidInput(msg string) *apiError {
	return &apiError{Code: "InvalidInput", Message: msg, Details: ""}
}

// newRequestID returns a random UUID-like string (version 4 layout).
func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// spCall is what the SP-API middleware hands to an operation.
type spCall struct {
	seller    Seller
	rateLimit string // value of x-amzn-RateLimit-Limit
}

// reply writes an SP-API answer; x-amzn-RateLimit-Limit only on 200/400/404
// (and not on the answers omitRateLimit picks).
func (c spCall) reply(w http.ResponseWriter, status int, body any) {
	if c.rateLimit != "" && (status == http.StatusOK || status == http.StatusBadRequest || status == http.StatusNotFound) {
		w.Header().Set("x-amzn-RateLimit-Limit", c.rateLimit)
	}
	writeJSON(w, status, jsonType, body)
}

func (c spCall) fail(w http.ResponseWriter, status int, e apiError) {
	c.reply(w, status, map[string][]apiError{"errors": {e}})
}

// spapi wraps an operation with what every SP-API call goes through:
// request id, access token, injected faults, then the rate limiter.
func (s *Server) spapi(op string, h func(http.ResponseWriter, *http.Request, spCall)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-amzn-RequestId", newRequestID())
		// Every request is checked, whatever it is answered: a violation is
		// recorded now and answered 400 where Amazon validates, after the
		// access token, injected faults and the rate limiter.
		violation := s.checkContract(r, op)
		sellerID, detail := s.authenticate(r.Header.Get("x-amz-access-token"))
		if detail != "" {
			writeAPIError(w, http.StatusForbidden, apiError{"Unauthorized", "Access to requested resource is denied.", detail})
			return
		}
		seller, _ := s.seller(sellerID)
		if wrongRegion(r, seller) {
			writeAPIError(w, http.StatusForbidden, apiError{"Unauthorized", "Access to requested resource is denied.", ""})
			return
		}
		f, faulted := s.nextFault(sellerID, op)
		if faulted {
			switch f.Kind {
			case "500":
				writeAPIError(w, http.StatusInternalServerError, apiError{"InternalFailure", "We encountered an internal error. Please try again.", ""})
				return
			case "503":
				writeAPIError(w, http.StatusServiceUnavailable, apiError{"ServiceUnavailable", "Service temporarily unavailable. Please try again later.", ""})
				return
			case "429":
				writeQuotaExceeded(w)
				return
			case "drop":
				dropConnection(w)
				return
			case "slow":
				t := time.NewTimer(f.Delay)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					return
				}
			}
		}
		rate, ok := s.take(sellerID, op)
		if !ok {
			writeQuotaExceeded(w)
			return
		}
		c := spCall{seller: seller, rateLimit: strconv.FormatFloat(rate, 'f', -1, 64)}
		if s.omitRateLimit(sellerID) {
			c.rateLimit = ""
		}
		if violation != nil {
			c.fail(w, http.StatusBadRequest, *invalidInput("Invalid Input: " + strings.Join(violation.Problems, "; ")))
			return
		}
		h(w, r, c)
	}
}

// omitRateLimit counts the seller's admitted answers and says whether this
// one goes without x-amzn-RateLimit-Limit (Config.OmitRateLimitEvery).
func (s *Server) omitRateLimit(sellerID string) bool {
	n := s.cfg.OmitRateLimitEvery
	if n <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rateLimitCount == nil {
		s.rateLimitCount = map[string]int{}
	}
	s.rateLimitCount[sellerID]++
	return s.rateLimitCount[sellerID]%n == 0
}

// checkContract checks r against Config.Contract, counts it and records a
// violation; nil when r is within the contract (or no contract is set).
func (s *Server) checkContract(r *http.Request, op string) *openapicheck.Violation {
	if s.contract == nil {
		return nil
	}
	s.mu.Lock()
	s.checked++
	s.mu.Unlock()
	_, err := s.contract.Check(r)
	if err == nil {
		return nil
	}
	var v *openapicheck.Violation
	if !errors.As(err, &v) {
		v = &openapicheck.Violation{Operation: op, Method: r.Method, Path: r.URL.EscapedPath(), Problems: []string{err.Error()}}
	}
	s.recordViolation(v)
	return v
}

func writeQuotaExceeded(w http.ResponseWriter) {
	writeAPIError(w, http.StatusTooManyRequests, apiError{"QuotaExceeded", "You exceeded your quota for the requested resource.", ""})
}

func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2 or no hijacking: abort the stream
	}
	_ = conn.Close()
}

// authenticate maps an access token to its seller, or returns Amazon's
// 403 details string.
func (s *Server) authenticate(token string) (sellerID, detail string) {
	if token == "" {
		return "", detailMissing
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.accessTokens[token]
	switch {
	case at == nil || at.sellerID == "":
		return "", detailInvalid
	case at.expired || !s.now().Before(at.expires):
		return "", detailExpired
	}
	return at.sellerID, ""
}

// searchQuery is the filter part of searchOrders, kept by pagination tokens.
type searchQuery struct {
	byCreated    bool
	after        time.Time
	before       time.Time
	marketplaces []string
	statuses     []string
	fulfilledBy  []string
}

type pageState struct {
	sellerID string
	q        searchQuery
	filters  map[string]string // the producing request's filters, canonical
	hasLast  bool
	lastKey  time.Time
	lastID   string
	expires  time.Time
}

func (q searchQuery) key(o *order) time.Time {
	if q.byCreated {
		return o.created
	}
	return o.updated
}

func (q searchQuery) match(o *order) bool {
	k := q.key(o)
	if k.Before(q.after) || !k.Before(q.before) {
		return false
	}
	if !slices.Contains(q.marketplaces, o.marketplaceID) {
		return false
	}
	if len(q.statuses) > 0 && !slices.Contains(q.statuses, o.status) {
		return false
	}
	if len(q.fulfilledBy) > 0 && !slices.Contains(q.fulfilledBy, o.fulfilledBy) {
		return false
	}
	return true
}

// listParam reads an array query parameter, repeated or comma-separated.
func listParam(v url.Values, name string) []string {
	var out []string
	for _, raw := range v[name] {
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// parseISO reads a date-time parameter: the model's format date-time, an
// ISO 8601 date and time with its offset (RFC 3339), fractions allowed.
func parseISO(name, v string) (time.Time, *apiError) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, invalidInput(fmt.Sprintf("Invalid %s: %q is not an ISO 8601 date-time.", name, v))
	}
	return t.UTC(), nil
}

func parseIncluded(v url.Values) (map[string]bool, *apiError) {
	inc := map[string]bool{}
	for _, d := range listParam(v, "includedData") {
		if !includedDataValues[d] {
			return nil, invalidInput(fmt.Sprintf("Invalid includedData value %q.", d))
		}
		inc[d] = true
	}
	return inc, nil
}

func (s *Server) parseSearch(v url.Values, seller Seller, now time.Time) (q searchQuery, pageSize int, page *pageState, e *apiError) {
	pageSize = maxPageSize
	if raw := v.Get("maxResultsPerPage"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxPageSize {
			return q, 0, nil, invalidInput("maxResultsPerPage must be an integer between 1 and 100.")
		}
		pageSize = n
	}
	ca, ua := v.Get("createdAfter"), v.Get("lastUpdatedAfter")
	cb, ub := v.Get("createdBefore"), v.Get("lastUpdatedBefore")
	switch {
	case (ca == "") == (ua == ""):
		return q, 0, nil, invalidInput("Exactly one of createdAfter and lastUpdatedAfter must be provided.")
	case ca != "" && ub != "":
		return q, 0, nil, invalidInput("lastUpdatedBefore cannot be provided with createdAfter.")
	case ua != "" && cb != "":
		return q, 0, nil, invalidInput("createdBefore cannot be provided with lastUpdatedAfter.")
	}
	q.byCreated = ca != ""
	afterName, afterRaw, beforeName, beforeRaw := "lastUpdatedAfter", ua, "lastUpdatedBefore", ub
	if q.byCreated {
		afterName, afterRaw, beforeName, beforeRaw = "createdAfter", ca, "createdBefore", cb
	}
	if q.after, e = parseISO(afterName, afterRaw); e != nil {
		return q, 0, nil, e
	}
	latest := now.Add(-beforeMargin)
	q.before = latest
	if beforeRaw != "" {
		if q.before, e = parseISO(beforeName, beforeRaw); e != nil {
			return q, 0, nil, e
		}
		if q.before.After(latest) {
			return q, 0, nil, invalidInput(beforeName + " must be at least two minutes before the time of the request.")
		}
		if q.before.Before(q.after) {
			return q, 0, nil, invalidInput(beforeName + " must be equal to or after " + afterName + ".")
		}
	}

	q.marketplaces = listParam(v, "marketplaceIds")
	if len(q.marketplaces) == 0 {
		return q, 0, nil, invalidInput("marketplaceIds is required.")
	}
	if len(q.marketplaces) > 50 {
		return q, 0, nil, invalidInput("marketplaceIds accepts at most 50 values.")
	}
	for _, m := range q.marketplaces {
		if !slices.Contains(seller.MarketplaceIDs, m) {
			return q, 0, nil, invalidInput(fmt.Sprintf("Invalid marketplaceId %q: the seller does not participate in this marketplace.", m))
		}
	}
	q.statuses = listParam(v, "fulfillmentStatuses")
	for _, st := range q.statuses {
		if !fulfillmentStatusValues[st] {
			return q, 0, nil, invalidInput(fmt.Sprintf("Invalid fulfillmentStatuses value %q.", st))
		}
	}
	q.fulfilledBy = listParam(v, "fulfilledBy")
	for _, f := range q.fulfilledBy {
		if !fulfilledByValues[f] {
			return q, 0, nil, invalidInput(fmt.Sprintf("Invalid fulfilledBy value %q.", f))
		}
	}
	if tok := v.Get("paginationToken"); tok != "" {
		s.mu.Lock()
		p := s.pages[tok]
		s.mu.Unlock()
		if p == nil || p.sellerID != seller.ID || !now.Before(p.expires) {
			return q, 0, nil, invalidInput("Invalid paginationToken: the token is malformed or has expired.")
		}
		if diff := diffFilters(p.filters, canonicalFilters(v)); diff != "" {
			e := invalidInput("Invalid paginationToken: all other parameters must be provided with the same values as in the request that generated this token (" + diff + ").")
			s.recordViolation(&openapicheck.Violation{Operation: OpSearchOrders, Method: http.MethodGet, Path: searchOrdersPath,
				Problems: []string{"a next page must repeat the filters of the request that produced its token: " + diff}})
			return q, 0, nil, e
		}
		return p.q, pageSize, p, nil
	}
	return q, pageSize, nil, nil
}

// filterParams are the searchOrders parameters a next page must repeat with
// the same values (the model's SearchOrdersResponse.pagination: all but
// paginationToken, maxResultsPerPage and includedData).
var filterParams = []string{"createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore", "fulfillmentStatuses", "marketplaceIds", "fulfilledBy"}

// canonicalFilters renders the filters of a (valid) request so that equal
// values compare equal: instants in UTC, lists sorted.
func canonicalFilters(v url.Values) map[string]string {
	out := map[string]string{}
	for _, name := range filterParams {
		if !v.Has(name) {
			continue
		}
		switch name {
		case "fulfillmentStatuses", "marketplaceIds", "fulfilledBy":
			l := listParam(v, name)
			sort.Strings(l)
			out[name] = strings.Join(l, ",")
		default:
			t, _ := parseISO(name, v.Get(name))
			out[name] = t.Format(time.RFC3339Nano)
		}
	}
	return out
}

// diffFilters names the parameters whose values differ ("" when none).
func diffFilters(want, got map[string]string) string {
	var diff []string
	for _, name := range filterParams {
		w, wok := want[name]
		g, gok := got[name]
		switch {
		case wok && !gok:
			diff = append(diff, name+" is missing")
		case !wok && gok:
			diff = append(diff, name+" was not in that request")
		case w != g:
			diff = append(diff, name+" differs")
		}
	}
	return strings.Join(diff, ", ")
}

type searchOrdersResponse struct {
	Orders            []jsonOrder     `json:"orders"`
	Pagination        *jsonPagination `json:"pagination,omitempty"`
	LastUpdatedBefore string          `json:"lastUpdatedBefore,omitempty"`
	CreatedBefore     string          `json:"createdBefore,omitempty"`
}

type jsonPagination struct {
	NextToken string `json:"nextToken"`
}

// handleSearchOrders serves searchOrders.
func (s *Server) handleSearchOrders(w http.ResponseWriter, r *http.Request, c spCall) {
	v := r.URL.Query()
	now := s.now()
	included, e := parseIncluded(v)
	if e != nil {
		c.fail(w, http.StatusBadRequest, *e)
		return
	}
	q, size, page, e := s.parseSearch(v, c.seller, now)
	if e != nil {
		c.fail(w, http.StatusBadRequest, *e)
		return
	}
	filters := canonicalFilters(v)
	if page != nil {
		filters = page.filters
	}

	s.mu.Lock()
	st := s.storeLocked(c.seller)
	var hits []*order
	for _, o := range st.orders {
		if !q.match(o) {
			continue
		}
		if page != nil && page.hasLast {
			k := q.key(o)
			if k.Before(page.lastKey) || (k.Equal(page.lastKey) && o.id <= page.lastID) {
				continue
			}
		}
		hits = append(hits, o)
	}
	sort.Slice(hits, func(i, j int) bool {
		ki, kj := q.key(hits[i]), q.key(hits[j])
		if !ki.Equal(kj) {
			return ki.Before(kj)
		}
		return hits[i].id < hits[j].id
	})
	resp := searchOrdersResponse{Orders: []jsonOrder{}}
	more := len(hits) > size
	if more {
		hits = hits[:size]
	}
	for _, o := range hits {
		resp.Orders = append(resp.Orders, o.toJSON(included))
	}
	if more {
		last := hits[len(hits)-1]
		tok := devrand.Hex(24)
		s.pages[tok] = &pageState{sellerID: c.seller.ID, q: q, filters: filters, hasLast: true, lastKey: q.key(last), lastID: last.id, expires: now.Add(pageTokenTTL)}
		resp.Pagination = &jsonPagination{NextToken: tok}
	}
	s.pruneExpiredPagesLocked(now)
	s.mu.Unlock()

	if q.byCreated {
		resp.CreatedBefore = q.before.Format(timeLayout)
	} else {
		resp.LastUpdatedBefore = q.before.Format(timeLayout)
	}
	c.reply(w, http.StatusOK, resp)
}

func (s *Server) pruneExpiredPagesLocked(now time.Time) {
	if len(s.pages) < 10_000 {
		return
	}
	for k, p := range s.pages {
		if !now.Before(p.expires) {
			delete(s.pages, k)
		}
	}
}

// handleGetOrder serves getOrder.
func (s *Server) handleGetOrder(w http.ResponseWriter, r *http.Request, c spCall) {
	included, e := parseIncluded(r.URL.Query())
	if e != nil {
		c.fail(w, http.StatusBadRequest, *e)
		return
	}
	id := r.PathValue("orderId")
	s.mu.Lock()
	o := s.storeLocked(c.seller).byID[id]
	var j jsonOrder
	if lag := s.getOrderLagLocked(); o != nil && lag > 0 {
		// Eventually consistent: the read sees the order as it was lag ago.
		asOf := s.now().Add(-lag)
		if o.created.After(asOf) {
			o = nil
		} else {
			j = o.toJSONAsOf(included, asOf)
		}
	} else if o != nil {
		j = o.toJSON(included)
	}
	s.mu.Unlock()
	if o == nil {
		c.fail(w, http.StatusNotFound, apiError{"NotFound", "The requested order was not found.", ""})
		return
	}
	c.reply(w, http.StatusOK, map[string]jsonOrder{"order": j})
}
