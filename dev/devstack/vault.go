package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
	"github.com/keybuzz/keybuzz-amazon/dev/loopback"
	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
)

// AppSecretPath is where the stack seeds the sandbox's SP-API app
// credentials (AMAZON_SPAPI_APP_SOURCE=external_test) in the KV v2 mount.
const AppSecretPath = "keybuzz/ai/amazon_spapi_app_temp"

// vaultDevDir is the tools module that compiles Vault's core into a dev server.
const vaultDevDir = "tools/vaultdev"

// VaultDevBinary is the cached path of the Vault dev server built from
// tools/vaultdev, keyed by its go.sum and source so a change rebuilds it.
func VaultDevBinary(repo string) (string, error) {
	h := sha256.New()
	for _, f := range []string{"go.sum", "vaultdev_test.go"} {
		b, err := os.ReadFile(filepath.Join(repo, vaultDevDir, f))
		if err != nil {
			return "", fmt.Errorf("vault dev server sources: %w", err)
		}
		h.Write(b)
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "vaultdev-"+hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// EnsureVaultDev builds the Vault dev server unless the cached binary exists.
// The first build downloads ~4 GB of modules and takes ~15 minutes on two
// cores, so it prints a progress line every 30 seconds.
func EnsureVaultDev(ctx context.Context, repo string, progress func(string)) (string, error) {
	bin, err := VaultDevBinary(repo)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	progress("building Vault dev server (first time ~15 min)... -> " + bin)
	tmp := bin + ".tmp-" + devrand.Hex(4)
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-vet=off", "-o", tmp, ".")
	cmd.Dir = filepath.Join(repo, vaultDevDir)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				progress(fmt.Sprintf("building Vault dev server (first time ~15 min)... %s elapsed", time.Since(start).Round(time.Second)))
			}
		}
	}()
	out, err := cmd.CombinedOutput()
	close(done)
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("build Vault dev server: %w\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	progress(fmt.Sprintf("built Vault dev server in %s", time.Since(start).Round(time.Second)))
	return bin, nil
}

// startVault runs a Vault dev server with KV v2 at secret/ and returns its
// address. A `vault` binary on PATH is preferred over the cached build.
func (s *Stack) startVault(ctx context.Context, port int, token string) (string, error) {
	if bin, err := exec.LookPath("vault"); err == nil {
		if port == 0 {
			if port, err = loopback.FreePort(); err != nil {
				return "", err
			}
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(bin, "server", "-dev", "-dev-root-token-id="+token, "-dev-listen-address="+addr)
		cmd.Env = append(os.Environ(), "VAULT_DEV_ROOT_TOKEN_ID="+token)
		p, _, err := s.startService(ctx, "vault", cmd, syscall.SIGTERM, "")
		if err != nil {
			return "", err
		}
		url := "http://" + addr
		return url, waitVault(ctx, url, p)
	}

	bin, err := EnsureVaultDev(ctx, s.repo, s.progress)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "-test.run", "TestDevServer", "-test.timeout", "0",
		"-addr", "127.0.0.1:"+strconv.Itoa(port), "-root-token", token)
	cmd.Dir = s.stateDir
	cmd.Env = append(os.Environ(), "VAULTDEV_SERVE=1")
	// The dev server prints "ready http://ADDR" after KV v2 is mounted.
	p, url, err := s.startService(ctx, "vault", cmd, syscall.SIGTERM, "ready ")
	if err != nil {
		return "", err
	}
	return url, waitVault(ctx, url, p)
}

// waitVault polls /v1/sys/health until Vault is initialised and unsealed.
func waitVault(ctx context.Context, url string, p *process) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/sys/health", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p != nil && p.exited() {
			return fmt.Errorf("vault exited during start-up; last output:\n%s", p.tail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vault at %s not ready: %w", url, context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// seedVault writes the sandbox's app credentials where the connector reads
// them.
func seedVault(ctx context.Context, addr, token string, app AppCredentials) error {
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	client, err := vault.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("vault client: %w", err)
	}
	client.SetToken(token)
	_, err = client.KVv2(KVMount).Put(ctx, AppSecretPath, map[string]any{
		"client_id":      app.ClientID,
		"client_secret":  app.ClientSecret,
		"redirect_uri":   app.RedirectURI,
		"application_id": app.ApplicationID,
		"region":         awsRegion(app.Region),
		"draft":          strconv.FormatBool(app.Draft),
	})
	if err != nil {
		return fmt.Errorf("seed vault %s/%s: %w", KVMount, AppSecretPath, err)
	}
	return nil
}

// awsRegion is the seed's form of an app's region: the AWS region
// ("eu-west-1" for "eu").
func awsRegion(code string) string {
	if r, err := amazon.LookupRegion(code); err == nil {
		return r.AWSRegion
	}
	return code
}
