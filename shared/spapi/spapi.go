// Package spapi calls Amazon's Selling Partner API: Orders v2026-01-01
// searchOrders and getOrder, Sellers v1 getMarketplaceParticipations and
// getAccount, with an LWA access token in x-amz-access-token (no SigV4, no
// IAM role since 2023-10-02), Amazon's error bodies decoded into *Error and
// the x-amzn-RateLimit-Limit header reported.
package spapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
)

// UserAgent identifies the connector to Amazon, in the form its SDKs use.
const UserAgent = "KeyBuzz/1.0 (Language=Go/1.26)"

// OpSearchOrders is the rate-limited operation name, as in Amazon's usage plans.
const OpSearchOrders = "searchOrders"

// SearchOrdersRate and SearchOrdersBurst are the model's default usage plan.
const (
	SearchOrdersRate  = 0.0056
	SearchOrdersBurst = 20
)

// Endpoint returns the SP-API base URL: override (AMAZON_SPAPI_ENDPOINT)
// when set, else the region's host.
func Endpoint(override, region string) (string, error) {
	if override != "" {
		return strings.TrimRight(override, "/"), nil
	}
	r, err := amazon.LookupRegion(region)
	if err != nil {
		return "", err
	}
	return r.SPAPIEndpoint, nil
}

// Tokens supplies LWA access tokens for one seller. Invalidate drops a
// cached token that Amazon answered as expired, so the next Token refreshes.
type Tokens interface {
	Token() (*oauth2.Token, error)
	Invalidate()
}

// Client calls SP-API over one http.Client.
type Client struct {
	http *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: one with a 20 s timeout).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// New returns a client.
func New(opts ...Option) *Client {
	c := &Client{http: &http.Client{Timeout: 20 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// SearchOrdersQuery is one searchOrders request: the first page of a
// window, or, with PaginationToken, its next page. Amazon's contract
// (SearchOrdersResponse.pagination in the model) is that a next page is
// asked with the token and every other parameter with the same values as
// the request that produced it (only maxResultsPerPage and includedData may
// change): a caller keeps LastUpdatedAfter and MarketplaceIDs for the whole
// window, to the second.
type SearchOrdersQuery struct {
	LastUpdatedAfter time.Time // required; sent to the second, in UTC
	MarketplaceIDs   []string  // required, at most 50
	PaginationToken  string
	MaxResults       int // 1..100; 0 means 100
}

// Values is the query string of q: lastUpdatedAfter, marketplaceIds,
// includedData and maxResultsPerPage always, paginationToken on the next
// pages.
func (q SearchOrdersQuery) Values() (url.Values, error) {
	if q.LastUpdatedAfter.IsZero() {
		return nil, errors.New("lastUpdatedAfter is required, with or without a pagination token")
	}
	if len(q.MarketplaceIDs) == 0 {
		return nil, errors.New("marketplaceIds is required")
	}
	v := url.Values{}
	v.Set("lastUpdatedAfter", FormatTime(q.LastUpdatedAfter))
	v.Set("marketplaceIds", strings.Join(q.MarketplaceIDs, ","))
	v.Set("includedData", strings.Join(IncludedData, ","))
	n := q.MaxResults
	if n <= 0 || n > 100 {
		n = 100
	}
	v.Set("maxResultsPerPage", strconv.Itoa(n))
	if q.PaginationToken != "" {
		v.Set("paginationToken", q.PaginationToken)
	}
	return v, nil
}

// FormatTime renders t as the model's date-time, in UTC to the second: the
// same instant always gives the same string.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// SearchOrdersPage is one page of searchOrders.
type SearchOrdersPage struct {
	Orders            []Order
	NextToken         string    // "" on the last page
	LastUpdatedBefore time.Time // the window's end: the next cursor
	RateLimit         float64   // x-amzn-RateLimit-Limit; 0 when absent
	RequestID         string
}

// Order is the part of the model's Order the connector reads; Raw keeps the
// order exactly as Amazon sent it.
type Order struct {
	OrderID         string    `json:"orderId"`
	CreatedTime     time.Time `json:"createdTime"`
	LastUpdatedTime time.Time `json:"lastUpdatedTime"`
	SalesChannel    struct {
		MarketplaceID string `json:"marketplaceId"`
	} `json:"salesChannel"`
	Buyer      *Buyer          `json:"buyer"`
	OrderItems []OrderItem     `json:"orderItems"`
	Raw        json.RawMessage `json:"-"`
}

// Buyer is the model's Buyer (BUYER dataset); BuyerEmail is Amazon's
// anonymised relay address.
type Buyer struct {
	BuyerName  string `json:"buyerName"`
	BuyerEmail string `json:"buyerEmail"`
}

// OrderItem is the part of the model's OrderItem the connector reads.
type OrderItem struct {
	OrderItemID string `json:"orderItemId"`
	Product     struct {
		Title     string `json:"title"`
		ASIN      string `json:"asin"`
		SellerSKU string `json:"sellerSku"`
	} `json:"product"`
	Cancellation *struct {
		CancellationRequest *CancellationRequest `json:"cancellationRequest"`
	} `json:"cancellation"`
}

// CancellationRequest is the model's ItemCancellationRequest (CANCELLATION dataset).
type CancellationRequest struct {
	Requester    string `json:"requester"` // BUYER
	CancelReason string `json:"cancelReason"`
}

// SearchOrders calls GET /orders/2026-01-01/orders on endpoint. A 403 whose
// details say the access token expired invalidates the token and retries
// once.
func (c *Client) SearchOrders(ctx context.Context, endpoint string, tokens Tokens, q SearchOrdersQuery) (*SearchOrdersPage, error) {
	v, err := q.Values()
	if err != nil {
		return nil, fmt.Errorf("searchOrders: %w", err)
	}
	u := strings.TrimRight(endpoint, "/") + "/orders/2026-01-01/orders?" + v.Encode()

	var body struct {
		Orders     []json.RawMessage `json:"orders"`
		Pagination *struct {
			NextToken string `json:"nextToken"`
		} `json:"pagination"`
		LastUpdatedBefore time.Time `json:"lastUpdatedBefore"`
	}
	h, err := c.get(ctx, u, tokens, &body)
	if err != nil {
		return nil, fmt.Errorf("searchOrders: %w", err)
	}
	page := &SearchOrdersPage{LastUpdatedBefore: body.LastUpdatedBefore, RequestID: h.Get("x-amzn-RequestId")}
	if body.Pagination != nil {
		page.NextToken = body.Pagination.NextToken
	}
	if rl := h.Get("x-amzn-RateLimit-Limit"); rl != "" {
		if f, err := strconv.ParseFloat(rl, 64); err == nil && f > 0 {
			page.RateLimit = f
		}
	}
	for i, raw := range body.Orders {
		var o Order
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, fmt.Errorf("searchOrders: decode order %d: %w", i, err)
		}
		o.Raw = raw
		page.Orders = append(page.Orders, o)
	}
	return page, nil
}

// get sends an authenticated GET and decodes a 200 answer into out.
func (c *Client) get(ctx context.Context, u string, tokens Tokens, out any) (http.Header, error) {
	return c.do(ctx, http.MethodGet, u, nil, tokens, out)
}

// do sends an authenticated request (body, when not nil, as JSON) and
// decodes a 200 answer into out (nil: the body is not read as JSON). A 403
// whose details say the access token expired invalidates the token and
// retries once, unless tokens is a StaticToken.
func (c *Client) do(ctx context.Context, method, u string, body []byte, tokens Tokens, out any) (http.Header, error) {
	for attempt := 0; ; attempt++ {
		tok, err := tokens.Token()
		if err != nil {
			return nil, fmt.Errorf("access token: %w", err)
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return nil, err
		}
		req.Header.Set("x-amz-access-token", tok.AccessToken)
		req.Header.Set("user-agent", UserAgent)
		req.Header.Set("accept", "application/json")
		if body != nil {
			req.Header.Set("content-type", "application/json")
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, networkError(req, err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if err != nil {
			return nil, networkError(req, err)
		}
		if resp.StatusCode == http.StatusOK {
			if out != nil {
				if err := json.Unmarshal(b, out); err != nil {
					return nil, fmt.Errorf("decode answer: %w", err)
				}
			}
			return resp.Header, nil
		}
		e := decodeError(resp, b)
		if e.Expired() && attempt == 0 && refreshable(tokens) {
			tokens.Invalidate()
			continue
		}
		return nil, e
	}
}

// NetworkError is a failure to reach SP-API or to read its answer:
// transient. It names the host only: query strings (pagination tokens) stay
// out of logs and lastError.
type NetworkError struct {
	Host string
	Err  error
}

func networkError(req *http.Request, err error) *NetworkError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &NetworkError{Host: req.URL.Host, Err: err}
}

func (e *NetworkError) Error() string { return "sp-api " + e.Host + " unreachable: " + e.Err.Error() }
func (e *NetworkError) Unwrap() error { return e.Err }

// Kinds of *Error, for errors.Is.
var (
	ErrThrottled    = errors.New("sp-api: throttled (429)")
	ErrUnauthorized = errors.New("sp-api: unauthorized (403)")
	ErrServer       = errors.New("sp-api: server error (5xx)")
	ErrInvalidInput = errors.New("sp-api: invalid input (400)")
	ErrNotFound     = errors.New("sp-api: not found (404)")
	ErrConflict     = errors.New("sp-api: conflict (409)")
)

// ErrorDetail is one entry of Amazon's {"errors":[…]}.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
}

// Error is a non-200 SP-API answer.
type Error struct {
	Status    int
	Errors    []ErrorDetail
	RequestID string
	ErrorType string // x-amzn-ErrorType
}

func decodeError(resp *http.Response, b []byte) *Error {
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("x-amzn-RequestId"), ErrorType: resp.Header.Get("x-amzn-ErrorType")}
	var body struct {
		Errors []ErrorDetail `json:"errors"`
	}
	if json.Unmarshal(b, &body) == nil {
		e.Errors = body.Errors
	}
	return e
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sp-api: HTTP %d", e.Status)
	for _, d := range e.Errors {
		fmt.Fprintf(&b, "; %s: %s", d.Code, d.Message)
		if d.Details != "" {
			fmt.Fprintf(&b, " (%s)", d.Details)
		}
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", e.RequestID)
	}
	return b.String()
}

// Is maps the status to its kind: errors.Is(err, ErrThrottled) and so on.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrThrottled:
		return e.Status == http.StatusTooManyRequests
	case ErrUnauthorized:
		return e.Status == http.StatusForbidden || e.Status == http.StatusUnauthorized
	case ErrServer:
		return e.Status >= 500
	case ErrInvalidInput:
		return e.Status == http.StatusBadRequest
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	}
	return false
}

// Expired reports Amazon's 403 for an expired access token, which a refresh fixes.
func (e *Error) Expired() bool {
	if e.Status != http.StatusForbidden {
		return false
	}
	for _, d := range e.Errors {
		if strings.Contains(strings.ToLower(d.Details), "access token you provided has expired") {
			return true
		}
	}
	return false
}

// Transient reports whether a retry later may succeed: network failures,
// throttling and server errors.
func Transient(err error) bool {
	var ne *NetworkError
	return errors.As(err, &ne) || errors.Is(err, ErrThrottled) || errors.Is(err, ErrServer)
}
