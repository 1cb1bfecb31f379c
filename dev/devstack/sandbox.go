package devstack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// AppCredentials is the SP-API app the sandbox registers and the stack seeds
// into Vault: both sides must agree.
type AppCredentials struct {
	ClientID, ClientSecret, ApplicationID, RedirectURI, Region string
	Draft                                                      bool
}

// SandboxApp is the app of cmd/amazon-sandbox's defaults, registered with the
// local server's callback.
var SandboxApp = AppCredentials{
	ClientID:      "amzn1.application-oa2-client.keybuzz-sandbox",
	ClientSecret:  "sandbox-client-secret",
	ApplicationID: "amzn1.sp.solution.keybuzz-sandbox",
	RedirectURI:   "http://127.0.0.1:3000/api/v1/marketplaces/amazon/oauth/callback",
	Region:        "eu",
	Draft:         true,
}

// buildSandbox compiles cmd/amazon-sandbox into .local/bin (go's build cache
// makes this quick after the first time).
func buildSandbox(ctx context.Context, repo string) (string, error) {
	bin := filepath.Join(repo, ".local", "bin", "amazon-sandbox")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/amazon-sandbox")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build amazon-sandbox: %w\n%s", err, out)
	}
	return bin, nil
}

// startSandbox runs the Amazon sandbox and returns its base URL.
// Notifications go to the SQS endpoint sqsEndpoint ("" = not delivered).
func (s *Stack) startSandbox(ctx context.Context, port int, app AppCredentials, sqsEndpoint string) (string, error) {
	bin, err := buildSandbox(ctx, s.repo)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin,
		"--addr", "127.0.0.1:"+strconv.Itoa(port),
		"--client-id", app.ClientID,
		"--client-secret", app.ClientSecret,
		"--application-id", app.ApplicationID,
		"--redirect-uri", app.RedirectURI,
		"--redirect-uri", strings.Replace(app.RedirectURI, "127.0.0.1", "localhost", 1),
		"--draft="+strconv.FormatBool(app.Draft),
		"--models", filepath.Join(s.repo, "testdata", "amazon-models"),
		"--sqs-endpoint", sqsEndpoint,
		"--relay-smtp", s.smtpAddr,
		"--reply-smtp", s.replyAddr,
	)
	cmd.Dir = s.stateDir
	cmd.Env = os.Environ()
	_, url, err := s.startService(ctx, "amazon-sandbox", cmd, syscall.SIGTERM, "listening on ")
	if err != nil {
		return "", err
	}
	return url, waitHTTP(ctx, url+"/_sandbox/sellers")
}

// waitHTTP polls url until it answers 2xx.
func waitHTTP(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v (%w)", url, last, context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
