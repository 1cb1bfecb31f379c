// Command local runs the connector on one machine: the three API routes on
// http://127.0.0.1:3000 (sam local start-api's port), the local page at "/",
// the poll schedule as a timer and an SQS consumer feeding polltenant. It
// reads the environment `make dev` prepares (.local/dev.env).
package main

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/app"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/devui"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "listen address")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr); err != nil {
		app.Fatal("local", err)
	}
}

func run(ctx context.Context, addr string) error {
	d, err := app.Load(ctx, "local", 10)
	if err != nil {
		return err
	}
	defer d.Pool.Close()
	if d.Config.FrontendReturnURL == "" {
		// Locally the consent comes back to the page.
		d.Config.FrontendReturnURL = "http://" + addr + "/"
	}
	api, err := d.API(ctx)
	if err != nil {
		return err
	}
	cfg := d.Config
	page := &devui.Page{API: api, Tickets: d.Store, Log: d.Log, Token: func(tenant string) (string, error) {
		return auth.Issue(cfg.JWTHS256Secret, cfg.JWTIssuer, cfg.JWTAudience, cfg.TenantClaim, tenant, time.Hour, time.Now())
	}}
	mux := api.Routes()
	mux.Handle("/", page.Handler())

	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 16 << 10}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	d.Log.Info("listening", "url", "http://"+addr)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
