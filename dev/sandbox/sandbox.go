package sandbox

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
)

// Amazon EU marketplace ids used by the sandbox sellers.
const (
	MarketplaceFR = "A13V1IB3VIYZZH"
	MarketplaceDE = "A1PA6795UKMFR9"
	MarketplaceIT = "APJ6JRA9NG5V4"
	MarketplaceES = "A1RKKUPIHCS9HS"
)

// Operation names accepted by SetRatePlan and reported by Stats.
const (
	OpSearchOrders                 = "searchOrders"
	OpGetOrder                     = "getOrder"
	OpGetMarketplaceParticipations = "getMarketplaceParticipations"
	OpGetAccount                   = "getAccount"
)

// Config describes the single application registered in the sandbox and the
// sellers who can authorize it.
type Config struct {
	ClientID, ClientSecret, ApplicationID, AppName string
	// RedirectURIs are the app's registered OAuth redirect URIs; the first
	// one is used when the consent URL carries no redirect_uri.
	RedirectURIs []string
	// Draft: the app is in Draft state, so consent needs version=beta (else MD1000).
	Draft bool
	// AutoApprove skips the consent page and redirects at once.
	AutoApprove bool
	// Clock drives every TTL, bucket and generated timestamp; nil = real time.
	Clock Clock
	// Sellers is the number of deterministic EU sellers (default 3).
	Sellers int
	// SellersNA and SellersFE are the sellers of the NA region (Amazon.com
	// and .ca) and of the FE region (Amazon.co.jp and .com.au), listed
	// after the EU ones (RegionSellerID; default 1 each).
	SellersNA, SellersFE int
	// OmitRateLimitEvery: every n-th admitted SP-API answer of a seller
	// carries no x-amzn-RateLimit-Limit, which Amazon sends only "when
	// available" (the models' wording); 0 sends it on every 200, 400 and
	// 404. Default 4.
	OmitRateLimitEvery int
	// Logger receives request logs; tokens, codes and secrets are never logged.
	Logger *slog.Logger
	// OtherApps are further applications registered with the sandbox (a
	// second developer app, as KeyBuzz's own beside the external test one):
	// their consents, codes and refresh tokens work only with their own
	// client credentials, as Amazon's do.
	OtherApps []App
	// LoginURI is the app's registered log-in URI: the Appstore's start page
	// (GET /_sandbox/appstore/authorize) sends the browser there.
	LoginURI string
	// Contract, when set, checks every SP-API request against Amazon's
	// models (openapicheck.LoadContract on testdata/amazon-models): a
	// request outside it is answered 400 InvalidInput, as Amazon does, and
	// recorded (Violations). sandboxtest sets it, and fails a test that
	// leaves a violation behind.
	Contract *openapicheck.Contract
	// Deliver sends ORDER_CHANGE notifications to subscribed SQS queues
	// (SQSDelivery); nil counts them as failed deliveries.
	Deliver Deliver
	// RelaySMTP is the host:port buyer messages are relayed to by SMTP
	// (the local receiver playing SES); "" relays nothing.
	RelaySMTP string
}

// App is an application's LWA client and SP-API application id.
type App struct {
	ClientID, ClientSecret, ApplicationID string
}

// DefaultConfig is the configuration `make dev` runs with.
func DefaultConfig() Config {
	return Config{
		ClientID:      "amzn1.application-oa2-client.keybuzz-sandbox",
		ClientSecret:  "sandbox-client-secret",
		ApplicationID: "amzn1.sp.solution.keybuzz-sandbox",
		AppName:       "KeyBuzz Helpdesk (sandbox)",
		RedirectURIs: []string{
			"http://127.0.0.1:3000/api/v1/marketplaces/amazon/oauth/callback",
			"http://localhost:3000/api/v1/marketplaces/amazon/oauth/callback",
		},
		Draft:              true,
		Sellers:            3,
		SellersNA:          1,
		SellersFE:          1,
		OmitRateLimitEvery: 4,
		LoginURI:           "http://127.0.0.1:3000/api/v1/marketplaces/amazon/oauth/login",
	}
}

// Clock tells the sandbox what time it is.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that only moves when told to; safe for concurrent use.
type ManualClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewManualClock returns a clock stopped at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{t: t} }

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Seller is one selling partner account of the sandbox.
type Seller struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	MarketplaceIDs []string `json:"marketplaceIds"`
	Region         string   `json:"region"`
}

// Event is a buyer cancellation request on one order item.
type Event struct {
	SellerID    string    `json:"sellerId"`
	OrderID     string    `json:"orderId"`
	OrderItemID string    `json:"orderItemId"`
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
}

// Fault makes the next Count SP-API calls of a seller fail.
// Kind is one of "500", "503", "429", "slow" (answer after Delay of real
// time) and "drop" (close the connection without an answer).
type Fault struct {
	Kind  string        `json:"kind"`
	Count int           `json:"count"`
	Delay time.Duration `json:"delay"`
}

// Stats counts what a seller's SP-API calls got.
type Stats struct {
	Calls        map[string]int `json:"calls"` // by operation, every authenticated call
	Throttled    int            `json:"throttled"`
	FaultsServed int            `json:"faultsServed"`
}

// Server is the sandbox: an http.Handler answering like LWA, Seller Central's
// consent page, SP-API Orders v2026-01-01 and Sellers v1
// getMarketplaceParticipations and getAccount.
type Server struct {
	cfg    Config
	clock  Clock
	log    *slog.Logger
	mux    *http.ServeMux
	anchor time.Time // sandbox time at New(): orders are generated relative to it

	sellers  []Seller
	sellerBy map[string]int // id -> index in sellers

	mu             sync.Mutex
	codes          map[string]*authCode
	amazonStates   map[string]*amazonState
	refreshTokens  map[string]*refreshToken
	accessTokens   map[string]*accessToken
	rotate         map[string]bool
	issued         []string
	stores         map[string]*orderStore
	plans          map[bucketKey]ratePlan
	buckets        map[bucketKey]*bucket
	faults         map[string][]Fault
	stats          map[string]*Stats
	pages          map[string]*pageState
	contract       *openapicheck.Contract
	violations     []*openapicheck.Violation
	checked        int
	accountDenied  map[string]bool
	rateLimitCount map[string]int // admitted SP-API answers per seller (omitRateLimit)
	notes          *notifier

	relay relay // buyer messages by e-mail (relay.go)
}

// New builds a sandbox server. Zero fields of cfg are not defaulted except
// Clock (real time), Sellers (3) and Logger (discard).
func New(cfg Config) *Server {
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Sellers <= 0 {
		cfg.Sellers = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:           cfg,
		clock:         cfg.Clock,
		log:           cfg.Logger,
		anchor:        cfg.Clock.Now().UTC(),
		sellerBy:      map[string]int{},
		codes:         map[string]*authCode{},
		amazonStates:  map[string]*amazonState{},
		refreshTokens: map[string]*refreshToken{},
		accessTokens:  map[string]*accessToken{},
		rotate:        map[string]bool{},
		stores:        map[string]*orderStore{},
		plans:         map[bucketKey]ratePlan{},
		buckets:       map[bucketKey]*bucket{},
		faults:        map[string][]Fault{},
		stats:         map[string]*Stats{},
		pages:         map[string]*pageState{},
		contract:      cfg.Contract,
		accountDenied: map[string]bool{},
		relay:         relay{forwarding: map[string]string{}},
	}
	for n := 1; n <= cfg.Sellers; n++ {
		sl := newSeller(n)
		s.sellerBy[sl.ID] = len(s.sellers)
		s.sellers = append(s.sellers, sl)
	}
	for _, r := range []struct {
		code string
		n    int
	}{{"na", cfg.SellersNA}, {"fe", cfg.SellersFE}} {
		for n := 1; n <= r.n; n++ {
			sl := newRegionSeller(r.code, n)
			s.sellerBy[sl.ID] = len(s.sellers)
			s.sellers = append(s.sellers, sl)
		}
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /auth/o2/token", s.handleToken)
	m.HandleFunc("GET /apps/authorize/consent", s.handleConsentPage)
	m.HandleFunc("POST /apps/authorize/consent", s.handleConsentApprove)
	m.HandleFunc("GET /_sandbox/appstore/authorize", s.handleAppstoreStart)
	m.HandleFunc("GET /apps/authorize/confirm", s.handleAppstoreConfirm)
	m.HandleFunc("GET /orders/2026-01-01/orders", s.spapi(OpSearchOrders, s.handleSearchOrders))
	m.HandleFunc("GET /orders/2026-01-01/orders/{orderId}", s.spapi(OpGetOrder, s.handleGetOrder))
	m.HandleFunc("GET /sellers/v1/marketplaceParticipations", s.spapi(OpGetMarketplaceParticipations, s.handleMarketplaceParticipations))
	m.HandleFunc("GET /sellers/v1/account", s.spapi(OpGetAccount, s.handleAccount))
	s.notificationRoutes(m)
	s.adminRoutes(m)
	s.relayRoutes(m)
	s.buyerRelayRoutes(m)
	s.mux = m
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	// Only the path is logged: query strings and bodies may carry codes or tokens.
	s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"duration_ms", time.Since(start).Milliseconds())
}

// statusRecorder remembers the status for the request log. It is the
// sandbox's own, like shared/httpapi's: the sandbox plays Amazon and imports
// nothing of the connector it stands in for.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach Hijack and Flush.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Sellers lists the sandbox's sellers in order (seller 1 first).
func (s *Server) Sellers() []Seller {
	out := make([]Seller, len(s.sellers))
	for i, sl := range s.sellers {
		sl.MarketplaceIDs = append([]string(nil), sl.MarketplaceIDs...)
		out[i] = sl
	}
	return out
}

func (s *Server) seller(id string) (Seller, bool) {
	i, ok := s.sellerBy[id]
	if !ok {
		return Seller{}, false
	}
	return s.sellers[i], true
}

// SellerID is the deterministic Amazon-like id of seller n (1-based):
// 'A' followed by 13 upper-case letters and digits derived from a hash of n.
func SellerID(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	h := sha256.Sum256([]byte("keybuzz-sandbox-seller-" + strconv.Itoa(n)))
	b := make([]byte, 14)
	b[0] = 'A'
	for i := 1; i < 14; i++ {
		b[i] = alphabet[int(h[i])%len(alphabet)]
	}
	return string(b)
}

func newSeller(n int) Seller {
	id := SellerID(n)
	h := sha256.Sum256([]byte("marketplaces-" + id))
	others := []string{MarketplaceDE, MarketplaceIT, MarketplaceES}
	first := int(h[0]) % 3
	mps := []string{MarketplaceFR, others[first]}
	if h[1]%2 == 1 {
		mps = append(mps, others[(first+1+int(h[2])%2)%3])
	}
	return Seller{
		ID:             id,
		Name:           fmt.Sprintf("%s %d", shopNames[n%len(shopNames)], n),
		MarketplaceIDs: mps,
		Region:         "eu",
	}
}

var shopNames = []string{
	"Boutique Lumière", "Atelier Provence", "Maison Durand", "Kaffeehaus Berlin",
	"Bottega Milano", "Tienda Sevilla", "Papeterie Lyon", "Jouets du Nord",
}

// seedFor derives a deterministic PRNG seed from a string.
func seedFor(s string) (uint64, uint64) {
	h := sha256.Sum256([]byte(s))
	return binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16])
}

func (s *Server) now() time.Time { return s.clock.Now().UTC() }

func (s *Server) statsLocked(sellerID string) *Stats {
	st := s.stats[sellerID]
	if st == nil {
		st = &Stats{Calls: map[string]int{}}
		s.stats[sellerID] = st
	}
	return st
}

// Stats returns a copy of the seller's counters.
func (s *Server) Stats(sellerID string) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statsLocked(sellerID)
	out := *st
	out.Calls = map[string]int{}
	for k, v := range st.Calls {
		out.Calls[k] = v
	}
	return out
}

// IssuedSecrets lists every refresh token, access token and authorization
// code issued so far, for leak-scanning tests.
func (s *Server) IssuedSecrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// searchOrdersPath is searchOrders' path in the Orders v2026-01-01 model.
const searchOrdersPath = "/orders/2026-01-01/orders"

// maxViolations bounds the violations kept for TakeViolations (a sandbox
// run alone keeps serving; the log has them all).
const maxViolations = 1000

func (s *Server) recordViolation(v *openapicheck.Violation) {
	s.log.Warn("request outside Amazon's contract", "operation", v.Operation, "method", v.Method, "path", v.Path, "problems", v.Problems)
	s.mu.Lock()
	if len(s.violations) < maxViolations {
		s.violations = append(s.violations, v)
	}
	s.mu.Unlock()
}

// TakeViolations returns the SP-API requests received outside Amazon's
// contract since the last call, and forgets them: the model checks of
// Config.Contract and the pagination rule (a next page without the filters
// of the request that produced its token).
func (s *Server) TakeViolations() []*openapicheck.Violation {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.violations
	s.violations = nil
	return v
}

// Checked counts the SP-API requests checked against Config.Contract.
func (s *Server) Checked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checked
}
