// Package app builds the connector's parts from the configuration, once per
// process (a Lambda container or the local server). Function mains call it
// and hand the result to the Lambda runtime.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// Deps are the clients every function shares.
type Deps struct {
	Config  config.Config
	Log     *slog.Logger
	Pool    *pgxpool.Pool
	Store   *postgres.Store
	Secrets *vaultstore.Store
	LWA     *lwa.Client
}

// Load reads the environment and connects to PostgreSQL and Vault. maxConns
// sizes the pool: 2 in Lambda (one invocation at a time per container).
func Load(ctx context.Context, function string, maxConns int32) (*Deps, error) {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if err := cfg.RequireStore(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	log := logging.New(os.Stdout, cfg.LogLevel).With("function", function)
	slog.SetDefault(log)
	pool, err := postgres.Open(ctx, cfg.DatabaseURL.Reveal(), maxConns)
	if err != nil {
		return nil, err
	}
	secrets, err := vaultstore.Open(ctx, cfg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &Deps{
		Config: cfg, Log: log, Pool: pool, Store: postgres.New(pool, nil), Secrets: secrets,
		LWA: lwa.New(cfg.LWATokenURL, nil),
	}, nil
}

// API builds the HTTP API (the three routes) on d.
func (d *Deps) API(ctx context.Context) (*httpapi.API, error) {
	if err := d.Config.RequireAuth(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	verifier, err := auth.NewVerifier(ctx, d.Config)
	if err != nil {
		return nil, fmt.Errorf("jwt verifier: %w", err)
	}
	secrets := vaultstore.NewAppCache(d.Secrets, time.Minute, nil)
	svc := connect.New(d.Store, secrets, d.LWA, d.Config.SellerCentralURL, connect.WithLogger(d.Log),
		connect.WithParticipations(spapi.New(nil), d.Config.SPAPIEndpoint))
	return &httpapi.API{Connect: svc, Auth: verifier, Log: d.Log, ReturnURL: d.Config.FrontendReturnURL}, nil
}

// MustAPI is Load + API for the API functions' mains: on a configuration or
// connection error it logs one line and exits, so Lambda reports an init
// failure instead of serving errors.
func MustAPI(function string) *httpapi.API {
	ctx := context.Background()
	d, err := Load(ctx, function, 2)
	if err == nil {
		var a *httpapi.API
		if a, err = d.API(ctx); err == nil {
			return a
		}
	}
	Fatal(function, err)
	return nil
}

// Fatal logs err as JSON and exits.
func Fatal(function string, err error) {
	logging.New(os.Stderr, "error").Error("init failed", "function", function, "error", err.Error())
	os.Exit(1)
}

// MustLoad is Load for a function's main: on error it logs and exits.
func MustLoad(function string) *Deps {
	d, err := Load(context.Background(), function, 2)
	if err != nil {
		Fatal(function, err)
	}
	return d
}

// PollDeps are what the poller and the fan-out are built from.
func (d *Deps) PollDeps() poll.Deps {
	return poll.Deps{Config: d.Config, Store: d.Store, Secrets: d.Secrets, LWA: d.LWA, Log: d.Log}
}

// Fanout builds the scheduled fan-out with an SQS client from the AWS
// configuration (AWS_ENDPOINT_URL_SQS points it at the emulator locally).
func (d *Deps) Fanout(ctx context.Context) (*poll.Fanout, error) {
	client, err := poll.NewSQSClient(ctx)
	if err != nil {
		return nil, err
	}
	return poll.NewFanoutFrom(d.PollDeps(), client)
}

// Poller builds the per-tenant poller.
func (d *Deps) Poller() *poll.Poller { return poll.NewPollerFrom(d.PollDeps()) }
