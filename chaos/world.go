package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/migrate"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// start is the sandbox's (and the connector's) clock at the beginning of a soak.
var start = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

const (
	jwtIssuer   = "keybuzz-chaos"
	jwtAudience = "keybuzz-amazon"
	lookback    = 7 * 24 * time.Hour
	cycleStep   = 61 * time.Minute // > the fan-out claim (1 h), the lease (5 min) and an access token's life (1 h)
	// clientTimeout is the containers' HTTP client timeout (Amazon and LWA).
	clientTimeout = 5 * time.Second
)

// world is one soak's universe: a private stack (PostgreSQL and Vault that
// can be restarted, fauxqs), the Amazon sandbox in-process on loopback with a
// manual clock, the connector's API on loopback, and the tenants.
type world struct {
	set   Settings
	out   *syncBuffer // everything printed and logged: the log scanner's input
	print func(format string, args ...any)

	mu  sync.Mutex
	rng *rand.Rand

	vaultMu      sync.Mutex // one Vault operation (restart, seal, rotation) at a time
	revokedFirst bool
	bug          func(tenantID string) error // a test's deliberate defect in new containers' store
	rotations    int
	appSecret    string // the app's client secret since the last rotation ("" = the sandbox's)

	stack      *devstack.Stack
	clock      *sandbox.ManualClock
	sb         *sandbox.Server
	sbServer   *httptest.Server
	front      *front    // between the connector and the sandbox: LWA faults, the served record
	trace      *trace    // every delivery and outage, to explain dead letters
	errs       *errLog   // what the containers logged per delivery
	ch         *channels // the push and mail channels (nil: off)
	awsCreds   aws.CredentialsProvider
	addrTenant map[string]string // inbound address (lower case) -> tenant
	apiServer  *httptest.Server
	dbURL      string
	pool       *pgxpool.Pool // the connector's pool (postgres.Open)
	check      *pgxpool.Pool // the checker's
	store      *postgres.Store
	vproxy     *proxy // the connector reaches Vault through it
	vaultConn  *vault.Client
	vaultDir   *vault.Client // straight to Vault: snapshots and restores
	secrets    *vaultstore.Store
	sqs        *sqs.Client
	s3         *s3.Client
	payloads   payloads // every queue message body seen, for the payload scanner
	queueURL   string
	dlqURL     string
	log        *slog.Logger
	jwtKey     secret.Value
	verifier   *auth.Verifier
	killer     *killer // the real-kill phase (nil: none)

	calm        atomic.Bool // settle cycles: containers are no longer killed
	tenants     []*tenant
	killTenants []*tenant // connected to the real-kill phase's sandbox
	bySeller    map[string]*tenant
	byTenant    map[string]*tenant
	stats       *stats
	known       []string // secret values seen outside the sandbox (JWTs, states, tokens of the stack)

	// violations are the SP-API requests outside Amazon's contract so far.
	violations []*openapicheck.Violation
	contract   *openapicheck.Contract // Amazon's models, for the real-kill phase's sandbox too
}

// tenant is one KeyBuzz tenant connected to sandbox seller n.
type tenant struct {
	n           int
	id          string
	seller      string
	connID      string
	connectedAt time.Time
	revokedAt   *time.Time
	emptiedAt   *time.Time // its Vault secret was deleted
	lostWall    time.Time  // wall time access ended (revocation or deletion)
	faults      []string   // what was injected for it, in order
	sb          *sandbox.Server
	front       *front
	wantCursor  time.Time // the cursor it must have reached (zero: the soak's clock less 2 minutes)
	address     string    // its inbound address (the seller's forwarding address)
}

// accessLost is when the tenant's access ended (sandbox time) and the wall
// time it did, or nil.
func (t *tenant) accessLost() (*time.Time, time.Time) {
	if t.revokedAt != nil {
		return t.revokedAt, t.lostWall
	}
	return t.emptiedAt, t.lostWall
}

func newWorld(ctx context.Context, set Settings, out *syncBuffer) (w *world, err error) {
	seed := set.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	w = &world{set: set, out: out, rng: rand.New(rand.NewPCG(uint64(seed), 0x6b6579)),
		bySeller: map[string]*tenant{}, byTenant: map[string]*tenant{}, addrTenant: map[string]string{}, stats: newStats()}
	w.set.Seed = seed
	w.print = func(format string, args ...any) { fmt.Fprintf(out, "chaos: "+format+"\n", args...) }
	self := w // a failed start returns nil: close what was started
	defer func() {
		if err != nil {
			self.close()
		}
	}()
	w.log = logging.New(out, "info")

	// A private stack: its PostgreSQL and Vault are ours to restart.
	w.print("starting a private stack (PostgreSQL, Vault, fauxqs)")
	w.stack, err = devstack.Start(ctx, devstack.Test(), devstack.Options{
		IgnoreEnv: true,
		Migrate:   func(ctx context.Context, u string) error { _, err := migrate.Apply(ctx, u); return err },
	})
	if err != nil {
		return nil, fmt.Errorf("private stack: %w", err)
	}
	w.known = append(w.known, w.stack.Get("VAULT_TOKEN"), w.stack.Get("AUTH_JWT_HS256_SECRET"))
	w.dbURL = w.stack.Get("DATABASE_URL")
	if w.pool, err = postgres.Open(ctx, w.dbURL, int32(4*set.Workers+4)); err != nil {
		return nil, err
	}
	if w.check, err = pgxpool.New(ctx, w.dbURL); err != nil {
		return nil, err
	}

	// Vault, through a proxy that can hold the connector off while Vault
	// restarts and its secrets are restored (a persistent Vault's restart).
	vaddr := w.stack.Get("VAULT_ADDR")
	if w.vproxy, err = newProxy(strings.TrimPrefix(vaddr, "http://")); err != nil {
		return nil, err
	}
	if w.vaultConn, err = vaultClient("http://"+w.vproxy.Addr(), w.stack.Get("VAULT_TOKEN")); err != nil {
		return nil, err
	}
	if w.vaultDir, err = vaultClient(vaddr, w.stack.Get("VAULT_TOKEN")); err != nil {
		return nil, err
	}
	w.secrets = vaultstore.New(w.vaultConn, devstack.KVMount, devstack.AppSecretPath)

	// Queues of our own: a short visibility timeout, DLQ after 5 receives.
	w.awsCreds = credentials.NewStaticCredentialsProvider(devstack.AccessKeyID, devstack.AccessKeyID, "")
	w.sqs = sqs.New(sqs.Options{Region: devstack.Region, BaseEndpoint: aws.String(w.stack.Get("AWS_ENDPOINT_URL_SQS")), Credentials: w.awsCreds})
	s3Endpoint := w.stack.Get("AWS_ENDPOINT_URL_S3")
	if s3Endpoint == "" {
		s3Endpoint = w.stack.Get("AWS_ENDPOINT_URL_SQS") // fauxqs serves S3 on the same port
	}
	w.s3 = s3.New(s3.Options{Region: devstack.Region, BaseEndpoint: aws.String(s3Endpoint), UsePathStyle: true, Credentials: w.awsCreds})
	if w.queueURL, w.dlqURL, err = w.createQueues(ctx); err != nil {
		return nil, err
	}

	// The sandbox with many sellers on a manual clock.
	w.clock = sandbox.NewManualClock(start)
	sbCfg := sandbox.DefaultConfig()
	sbCfg.Clock = w.clock
	sbCfg.Sellers = set.Tenants
	// Every SP-API request is checked against Amazon's models.
	root, err := openapicheck.RepoRoot()
	if err != nil {
		return nil, err
	}
	if sbCfg.Contract, err = openapicheck.LoadContract(filepath.Join(root, "testdata", "amazon-models"), openapicheck.AmazonRules); err != nil {
		return nil, fmt.Errorf("Amazon's models: %w", err)
	}
	w.contract = sbCfg.Contract
	w.trace = newTrace()
	w.errs = newErrLog()
	if set.Channels {
		if err := w.setupChannels(ctx, &sbCfg); err != nil {
			return nil, fmt.Errorf("push and mail channels: %w", err)
		}
	}
	w.sb = sandbox.New(sbCfg)
	if set.Channels {
		w.sb.SetDeliveryFaults(set.PushFaults)
	}
	if set.Rotation {
		for _, sl := range w.sb.Sellers() {
			w.sb.RotateRefreshTokens(sl.ID, true)
		}
	}
	w.front = newFront(w.sb, w.clock, sbCfg.ClientSecret, clientTimeout)
	w.sbServer = httptest.NewServer(w.front)
	w.store = postgres.New(w.pool, postgres.WithClock(w.clock.Now))

	// The API (start, callback, status) on loopback.
	w.jwtKey = secret.Value(w.stack.Get("AUTH_JWT_HS256_SECRET"))
	verifier, err := auth.NewVerifier(ctx, config.Config{JWTHS256Secret: w.jwtKey, JWTIssuer: jwtIssuer, JWTAudience: jwtAudience, TenantClaim: "tenantId"})
	if err != nil {
		return nil, err
	}
	apps := credcache.New(w.secrets)
	lwaClient := lwa.New(w.sbServer.URL+"/auth/o2/token", lwa.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	sp := spapi.New(spapi.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	gw := sellerapi.New(apps, lwaClient, sp, w.store, sellerapi.WithEndpoint(w.sbServer.URL), sellerapi.WithLogger(w.log))
	callbackCfg := connect.CallbackConfig{Participations: gw, Now: w.clock.Now, Log: w.log}
	disconnectCfg := connect.DisconnectConfig{Log: w.log}
	statusCfg := connect.StatusConfig{Now: w.clock.Now, Log: w.log}
	if set.Channels {
		// As the callback function wires them: an ORDER_CHANGE subscription
		// and the inbound addresses for each new connection.
		dest := push.NewDestinations(w.store, apps, sp, gw, fmt.Sprintf("arn:aws:sqs:%s:000000000000:chaos-notify", devstack.Region))
		sub := push.NewSubscriber(w.store, dest, gw, push.WithLogger(w.log))
		inbound := mailaddress.NewAddresses(w.store, devstack.InboundDomain)
		callbackCfg.OnConnected, callbackCfg.Unsubscriber, callbackCfg.InboundAddresses = sub.OnConnected, sub, inbound
		disconnectCfg.Unsubscriber, statusCfg.InboundAddresses = sub, inbound
	}
	w.verifier = verifier
	w.apiServer = httptest.NewServer(httpapi.Mux(
		httpapi.StartRoute(connect.NewStart(w.store, apps, connect.StartConfig{SellerCentralURL: w.sbServer.URL, Now: w.clock.Now}), verifier, w.log),
		httpapi.CallbackRoute(connect.NewCallback(w.store, apps, lwaClient, callbackCfg), w.log, ""),
		httpapi.LoginRoute(connect.NewLogin(w.store, apps, connect.LoginConfig{SellerCentralURL: w.sbServer.URL, Now: w.clock.Now}), w.log, ""),
		httpapi.StatusRoute(connect.NewStatus(w.store, statusCfg), verifier, w.log),
		httpapi.DisconnectRoute(connect.NewDisconnect(w.store, apps, disconnectCfg), verifier, w.log)))
	return w, nil
}

func (w *world) close() {
	if w.ch != nil && w.ch.smtp != nil {
		w.ch.smtp.Close()
	}
	if w.apiServer != nil {
		w.apiServer.Close()
	}
	if w.sbServer != nil {
		w.sbServer.Close()
	}
	if w.pool != nil {
		w.pool.Close()
	}
	if w.check != nil {
		w.check.Close()
	}
	if w.vproxy != nil {
		w.vproxy.Close()
	}
	if w.stack != nil {
		w.stack.Close()
	}
}

func vaultClient(addr, token string) (*vault.Client, error) {
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	cfg.Timeout = 10 * time.Second
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(token)
	return c, nil
}

func (w *world) createQueues(ctx context.Context) (string, string, error) {
	return w.createQueuePair(ctx, "chaos-poll", w.set.Visibility)
}

// createQueuePair creates queue name and its DLQ (after 5 receives).
func (w *world) createQueuePair(ctx context.Context, name string, visibility int32) (string, string, error) {
	dlq, err := w.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		return "", "", fmt.Errorf("create DLQ: %w", err)
	}
	redrive, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": fmt.Sprintf("arn:aws:sqs:%s:000000000000:%s-dlq", devstack.Region, name),
		"maxReceiveCount":     "5",
	})
	q, err := w.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		"VisibilityTimeout": fmt.Sprint(visibility), "RedrivePolicy": string(redrive),
	}})
	if err != nil {
		return "", "", fmt.Errorf("create queue: %w", err)
	}
	return aws.ToString(q.QueueUrl), aws.ToString(dlq.QueueUrl), nil
}

func (w *world) float() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rng.Float64()
}

func (w *world) rng64() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rng.Uint64()
}

func (w *world) intN(n int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rng.IntN(n)
}

// connectAll connects every tenant through the real Connect flow: POST
// start with the tenant's JWT, the sandbox's consent page (auto-approved for
// seller n), then the callback with the code Amazon sends back.
func (w *world) connectAll(ctx context.Context) error {
	t0 := time.Now()
	jobs := make(chan int)
	errs := make(chan error, w.set.Tenants)
	var wg sync.WaitGroup
	tenants := make([]*tenant, w.set.Tenants)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				t, err := w.connect(ctx, n)
				if err != nil {
					errs <- fmt.Errorf("connect tenant %d: %w", n, err)
					continue
				}
				tenants[n-1] = t
			}
		}()
	}
	for n := 1; n <= w.set.Tenants; n++ {
		jobs <- n
	}
	close(jobs)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		return errors.Join(all...)
	}
	w.tenants = tenants
	for _, t := range tenants {
		w.bySeller[t.seller] = t
		w.byTenant[t.id] = t
	}
	if w.ch != nil {
		if err := w.forwardMail(ctx); err != nil {
			return err
		}
	}
	w.stats.ConnectSeconds = time.Since(t0).Seconds()
	w.print("%d tenants connected through start -> consent -> callback in %s", len(tenants), time.Since(t0).Round(time.Millisecond))
	return nil
}

var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (w *world) token(tenantID string) (string, error) {
	tok, err := auth.Issue(w.jwtKey, jwtIssuer, jwtAudience, "tenantId", tenantID, time.Hour, time.Now())
	if err == nil {
		w.mu.Lock()
		w.known = append(w.known, tok)
		w.mu.Unlock()
	}
	return tok, err
}

func (w *world) connect(ctx context.Context, n int) (*tenant, error) {
	t := &tenant{n: n, id: fmt.Sprintf("tenant-chaos-%05d", n), seller: sandbox.SellerID(n), sb: w.sb, front: w.front}
	return t, w.connectVia(ctx, w.apiServer.URL, t)
}

// connectVia connects t through the Connect flow of the API at apiURL.
func (w *world) connectVia(ctx context.Context, apiURL string, t *tenant) error {
	tok, err := w.token(t.id)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+httpapi.StartPath, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := noRedirect.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("start: HTTP %d %s", resp.StatusCode, body)
	}
	var started struct {
		AuthURL string `json:"authUrl"`
	}
	if err := json.Unmarshal(body, &started); err != nil {
		return err
	}
	binding := resp.Cookies() // the browser that started it completes it
	u, err := url.Parse(started.AuthURL)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.known = append(w.known, u.Query().Get("state"))
	w.mu.Unlock()
	back, err := sandbox.AutoApprove(started.AuthURL, t.seller)
	if err != nil {
		return err
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, apiURL+httpapi.CallbackPath+"?"+back.Encode(), nil)
	for _, c := range binding {
		req.AddCookie(c)
	}
	resp, err = noRedirect.Do(req)
	if err != nil {
		return err
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("callback: HTTP %d %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	if err := w.check.QueryRow(ctx, `SELECT mc."id", k."connectedAt" FROM public."MarketplaceConnection" mc JOIN keybuzz_amazon."Connection" k ON k."connectionId" = mc."id"
	WHERE mc."tenantId" = $1 AND mc."status" = 'CONNECTED'`, t.id).
		Scan(&t.connID, &t.connectedAt); err != nil {
		return fmt.Errorf("connection after callback: %w", err)
	}
	return nil
}

// syncBuffer is an io.Writer safe for concurrent use that also copies to a
// second writer (the terminal).
type syncBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	echo io.Writer
	// echoFilter decides which lines reach echo (nil: all).
	echoFilter func([]byte) bool
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.echo != nil && (b.echoFilter == nil || b.echoFilter(p)) {
		b.echo.Write(p)
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

// record keeps s for the log scan without printing it.
func (b *syncBuffer) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}
