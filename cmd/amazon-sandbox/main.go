// Command amazon-sandbox serves the Amazon sandbox (LWA, consent page,
// SP-API Orders) on a local address. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "amazon-sandbox:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg := sandbox.DefaultConfig()
	fs := flag.NewFlagSet("amazon-sandbox", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:4580", "listen address (port 0 = any free port)")
	fs.StringVar(&cfg.ClientID, "client-id", cfg.ClientID, "LWA client id of the app")
	fs.StringVar(&cfg.ClientSecret, "client-secret", cfg.ClientSecret, "LWA client secret of the app")
	fs.StringVar(&cfg.ApplicationID, "application-id", cfg.ApplicationID, "SP-API application id")
	var redirects stringList
	fs.Var(&redirects, "redirect-uri", "registered OAuth redirect URI (repeatable; default: the two local callback URIs)")
	fs.BoolVar(&cfg.Draft, "draft", cfg.Draft, "the app is in Draft: consent needs version=beta")
	fs.BoolVar(&cfg.AutoApprove, "auto-approve", cfg.AutoApprove, "skip the consent page")
	fs.IntVar(&cfg.Sellers, "sellers", cfg.Sellers, "number of sellers")
	fs.IntVar(&cfg.OmitRateLimitEvery, "omit-rate-limit-every", cfg.OmitRateLimitEvery, "every n-th SP-API answer of a seller lacks x-amzn-RateLimit-Limit (Amazon sends it when available); 0: always sent")
	models := fs.String("models", "", "directory of Amazon's SP-API models (testdata/amazon-models): every SP-API request is checked against them, one outside them answered 400 and logged")
	sqsEndpoint := fs.String("sqs-endpoint", "", "SQS endpoint (fauxqs) to deliver ORDER_CHANGE notifications to; empty: not delivered")
	fs.StringVar(&cfg.RelaySMTP, "relay-smtp", "", "host:port buyer messages are relayed to by SMTP (the local receiver playing SES)")
	replySMTP := fs.String("reply-smtp", "", "listen address of the SMTP relay for replies to buyers' aliases (what the SESv2 stand-in delivers to); empty: none")
	manual := fs.Bool("manual-clock", false, "start a manual clock at the current time, driven by POST /_sandbox/clock/advance")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(redirects) > 0 {
		cfg.RedirectURIs = redirects
	}
	if *manual {
		cfg.Clock = sandbox.NewManualClock(time.Now().UTC().Truncate(time.Second))
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg.Logger = logger
	if *models != "" {
		c, err := openapicheck.LoadContract(*models, openapicheck.AmazonRules)
		if err != nil {
			return fmt.Errorf("models: %w", err)
		}
		cfg.Contract = c
	}
	if *sqsEndpoint != "" {
		cfg.Deliver = sandbox.SQSDelivery(*sqsEndpoint)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	sb := sandbox.New(cfg)
	if *replySMTP != "" {
		relay, err := sb.StartReplyRelay(*replySMTP)
		if err != nil {
			return err
		}
		defer relay.Close()
		logger.Info("reply relay started", "addr", relay.Addr())
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("listening on http://%s\n", ln.Addr())
	logger.Info("sandbox started", "addr", ln.Addr().String(), "sellers", cfg.Sellers,
		"draft", cfg.Draft, "auto_approve", cfg.AutoApprove, "manual_clock", *manual, "sqs_endpoint", *sqsEndpoint)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("sandbox stopped")
	return nil
}
