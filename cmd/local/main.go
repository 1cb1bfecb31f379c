// Command local runs the connector on one machine: the three API routes on
// http://127.0.0.1:3000 (sam local start-api's port), the local page at "/",
// the poll schedule as a timer and an SQS consumer feeding polltenant. It
// reads the environment `make dev` prepares (.local/dev.env).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/devui"
	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/shared/app"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "listen address")
	pollOnce := flag.Bool("poll-once", false, "run one fan-out, drain the poll queue and exit (no API)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *pollOnce); err != nil {
		app.Fatal("local", err)
	}
}

func run(ctx context.Context, addr string, pollOnce bool) error {
	d, err := app.Load(ctx, "local", 10)
	if err != nil {
		return err
	}
	defer d.Pool.Close()
	sqsClient, err := poll.NewSQSClient(ctx)
	if err != nil {
		return err
	}
	schedule, err := localpoll.New(d.PollDeps(), sqsClient)
	if err != nil {
		return err
	}
	if pollOnce {
		sum, err := localpoll.PollOnce(ctx, schedule)
		if err != nil {
			return err
		}
		fmt.Printf("fan-out claimed %d, sent %d; polled %d records in %d batches, %d failed\n",
			sum.Fanout.Claimed, sum.Fanout.Sent, sum.Records, sum.Batches, sum.Failed)
		return nil
	}
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
	errc := make(chan error, 2)
	go func() { errc <- srv.ListenAndServe() }()
	// The schedule (a timer calling the fan-out handler with a real
	// EventBridge event) and the SQS consumer feeding polltenant.
	go func() {
		if err := localpoll.Run(ctx, schedule); err != nil {
			errc <- fmt.Errorf("local poll: %w", err)
		}
	}()
	d.Log.Info("listening", "url", "http://"+addr, "poll_interval", d.Config.PollInterval.String())

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
