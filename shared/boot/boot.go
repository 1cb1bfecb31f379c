// Package boot is the start-up code the functions' mains share: it loads
// the configuration, sets the JSON logger and opens the clients a main asks
// for. Which clients a function opens, and what it builds from them, is
// written in that function's main.
//
// Every opener exits the process on failure, logging one JSON line: Lambda
// then reports an init error instead of a function serving errors.
package boot

import (
	"context"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
)

// LambdaMaxConns sizes a Lambda container's pool: it serves one invocation
// at a time.
const LambdaMaxConns = 2

// Env is one process's start-up: its configuration and logger.
type Env struct {
	Function string
	Config   config.Config
	Log      *slog.Logger
}

// Load reads the configuration from the environment, checks what every
// function needs (the database and Vault) and makes the JSON logger, tagged
// with function, the default one.
func Load(function string) *Env {
	cfg, err := config.Load(os.Getenv)
	if err == nil {
		err = cfg.RequireStore()
	}
	e := &Env{Function: function, Config: cfg}
	e.Must("configuration", err)
	e.Log = logging.New(os.Stdout, cfg.LogLevel).With("function", function)
	slog.SetDefault(e.Log)
	return e
}

// Pool opens the PostgreSQL pool (dialing in the background, so a Lambda
// connects during init).
func (e *Env) Pool(ctx context.Context, maxConns int32) *pgxpool.Pool {
	pool, err := postgres.Open(ctx, e.Config.DatabaseURL.Reveal(), maxConns)
	e.Must("database", err)
	return pool
}

// Metrics is the CloudWatch Embedded Metric Format writer on stdout.
func (e *Env) Metrics() *metrics.Writer { return metrics.New(os.Stdout) }

// Verifier builds the Bearer JWT verifier the API routes use.
func (e *Env) Verifier(ctx context.Context) *auth.Verifier {
	e.Must("configuration", e.Config.RequireAuth())
	v, err := auth.NewVerifier(ctx, e.Config)
	e.Must("jwt verifier", err)
	return v
}

// Must exits the process when err is set, logging what failed.
func (e *Env) Must(what string, err error) {
	if err == nil {
		return
	}
	logging.New(os.Stderr, "error").Error("init failed", "function", e.Function, "step", what, "error", err.Error())
	os.Exit(1)
}
