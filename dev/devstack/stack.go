// Package devstack starts the services the connector needs on one machine —
// a private PostgreSQL cluster, a Vault dev server, the fauxqs SQS emulator
// and the Amazon sandbox — on loopback, and stops them all again.
//
// A service whose variable is already set in the environment (DATABASE_URL,
// VAULT_ADDR+VAULT_TOKEN, AWS_ENDPOINT_URL_SQS, AMAZON_SANDBOX_URL) is used
// instead of started. See docs/local-stack.md.
package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/devrand"
	"github.com/keybuzz/keybuzz-amazon/dev/loopback"
)

// Constants every profile shares.
const (
	Region      = "eu-west-1"
	KVMount     = "secret"
	AccessKeyID = "local" // dummy AWS credentials; the emulator ignores them
	modulePath  = "github.com/keybuzz/keybuzz-amazon"
)

// Profile is a set of ports, secrets and a state directory.
type Profile struct {
	Name string
	// Ports; 0 means any free loopback port.
	PostgresPort, VaultPort, SQSPort, SandboxPort, SMTPPort int
	// ReplySMTPPort is the sandbox's SMTP relay for replies (0: any).
	ReplySMTPPort int
	// StateDir holds the PostgreSQL cluster, logs and the env file; empty
	// means a temporary directory removed by Close.
	StateDir string
	// EnvFile is where the variables are written; relative to StateDir.
	EnvFile string
	// FastDisk turns off fsync (data may be lost on a crash: tests only).
	FastDisk              bool
	VaultToken, JWTSecret string
	// Extra variables for the connector.
	Extra map[string]string
	// Push sets NOTIFICATIONS_QUEUE_ARN, which turns ORDER_CHANGE
	// subscriptions on (the queue exists in every profile: tests that want
	// push pass NotificationsQueueARN themselves).
	Push bool
}

// Dev is the profile of `make dev`: fixed ports, state kept in .local/.
func Dev(repo string) Profile {
	return Profile{
		Name: "dev", PostgresPort: 55432, VaultPort: 18200, SQSPort: 19324, SandboxPort: 4580, SMTPPort: 2525, ReplySMTPPort: 2526,
		StateDir: filepath.Join(repo, ".local"), EnvFile: "dev.env",
		VaultToken: "dev-root", JWTSecret: "local-dev-jwt-secret-not-for-production",
		Extra: map[string]string{"MARKETPLACE_POLL_INTERVAL_SECONDS": "60"},
		Push:  true,
	}
}

// Test is the profile of `make test`: random ports and secrets, state in a
// temporary directory, so it can run next to `make dev`.
func Test() Profile {
	return Profile{
		Name: "test", EnvFile: "test.env", FastDisk: true,
		VaultToken: "test-" + devrand.Hex(12), JWTSecret: devrand.Hex(32),
	}
}

// ProfileByName returns "dev" or "test".
func ProfileByName(name, repo string) (Profile, error) {
	switch name {
	case "dev":
		return Dev(repo), nil
	case "test":
		return Test(), nil
	}
	return Profile{}, fmt.Errorf("unknown profile %q (want dev or test)", name)
}

// Options tune Start.
type Options struct {
	// Repo is the repository root; found from the working directory when empty.
	Repo string
	// IgnoreEnv starts every service even if its variable is set.
	IgnoreEnv bool
	// Migrate applies the schema (shared/migrate.Apply); nil skips it.
	Migrate func(ctx context.Context, databaseURL string) error
	// Progress receives human-readable progress lines; nil discards them.
	Progress func(string)
	// Timeout bounds start-up once Vault is built (it includes building the
	// sandbox, quick when Go's build cache is warm); default 3 minutes.
	Timeout time.Duration
}

// Stack is a running set of services.
type Stack struct {
	profile  Profile
	repo     string
	stateDir string
	logDir   string
	tempDir  bool
	progress func(string)

	mu        sync.Mutex
	procs     []*process
	closers   []func() error // in-process services (the SMTP receiver)
	smtpAddr  string         // the SMTP receiver's address, chosen before the sandbox starts (it relays there)
	replyAddr string         // the sandbox's SMTP relay for replies to buyers (the SESv2 stand-in delivers there)
	env       map[string]string
	EnvPath   string // the env file written by Start
	closed    bool
}

// Start starts (or adopts) every service, applies migrations, seeds Vault
// and writes the env file. On error everything started is stopped again.
func Start(ctx context.Context, profile Profile, opts Options) (_ *Stack, err error) {
	repo := opts.Repo
	if repo == "" {
		if repo, err = RepoRoot(); err != nil {
			return nil, err
		}
	}
	s := &Stack{profile: profile, repo: repo, stateDir: profile.StateDir, progress: opts.Progress, env: map[string]string{}}
	if s.progress == nil {
		s.progress = func(string) {}
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.stateDir == "" {
		sweepTempDirs()
		if s.stateDir, err = os.MkdirTemp("", tempPrefix); err != nil {
			return nil, err
		}
		s.tempDir = true
		if err := os.WriteFile(filepath.Join(s.stateDir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return nil, err
		}
	}
	// PostgreSQL runs as another user when we are root: it must reach its dir.
	if err := os.MkdirAll(s.stateDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(s.stateDir, 0o755); err != nil {
		return nil, err
	}
	s.logDir = filepath.Join(s.stateDir, "log")
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return nil, err
	}

	lookup := os.LookupEnv
	if opts.IgnoreEnv {
		lookup = func(string) (string, bool) { return "", false }
	}
	s.env["AWS_REGION"] = Region
	s.env["AWS_ACCESS_KEY_ID"] = AccessKeyID
	s.env["AWS_SECRET_ACCESS_KEY"] = AccessKeyID
	s.env["AWS_EC2_METADATA_DISABLED"] = "true"
	s.env["VAULT_KV_MOUNT"] = KVMount
	s.env["AMAZON_SPAPI_APP_SOURCE"] = "external_test"
	s.env["AUTH_JWT_HS256_SECRET"] = profile.JWTSecret
	s.env["AUTH_JWT_ISSUER"] = "keybuzz-local"
	s.env["AUTH_JWT_AUDIENCE"] = "keybuzz-amazon"
	s.env["AUTH_TENANT_CLAIM"] = "tenantId"
	s.env["DEVSTACK_PROFILE"] = profile.Name
	for k, v := range profile.Extra {
		// The caller's value wins (MARKETPLACE_POLL_INTERVAL_SECONDS=3600 make dev).
		if existing, ok := lookup(k); ok && existing != "" {
			v = existing
		}
		s.env[k] = v
	}

	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	// Builds (the sandbox, a missing Vault binary) happen inside the
	// services' start, so only readiness is bounded by the timeout.
	if err := s.ensureVault(ctx, lookup); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeoutCause(ctx, timeout, errors.New("start-up timed out"))
	defer cancel()

	smtpPort := profile.SMTPPort
	if smtpPort == 0 {
		if smtpPort, err = loopback.FreePort(); err != nil {
			return nil, err
		}
	}
	s.smtpAddr = "127.0.0.1:" + strconv.Itoa(smtpPort)
	replyPort := profile.ReplySMTPPort
	if replyPort == 0 {
		if replyPort, err = loopback.FreePort(); err != nil {
			return nil, err
		}
	}
	s.replyAddr = "127.0.0.1:" + strconv.Itoa(replyPort)

	var wg sync.WaitGroup
	errs := make([]error, 3)
	run := func(i int, f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	run(0, func() error { return s.postgres(sctx, lookup, opts.Migrate) })
	run(1, func() error { return s.vault(sctx, lookup) })
	// The sandbox delivers notifications to the SQS emulator: it starts
	// once the emulator answers.
	run(2, func() error {
		if err := s.sqs(sctx, lookup); err != nil {
			return err
		}
		return s.sandbox(sctx, lookup)
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := s.mail(sctx); err != nil {
		return nil, fmt.Errorf("mail intake: %w", err)
	}
	if err := s.replies(sctx); err != nil {
		return nil, fmt.Errorf("replies: %w", err)
	}

	s.EnvPath = filepath.Join(s.stateDir, profile.EnvFile)
	if err := WriteEnvFile(s.EnvPath, s.Env()); err != nil {
		return nil, err
	}
	return s, nil
}

// ensureVault builds the Vault dev server before start-up's timeout begins
// when the stack is going to need it.
func (s *Stack) ensureVault(ctx context.Context, lookup func(string) (string, bool)) error {
	if _, ok := lookup("VAULT_ADDR"); ok {
		return nil
	}
	if _, err := exec.LookPath("vault"); err == nil {
		return nil
	}
	_, err := EnsureVaultDev(ctx, s.repo, s.progress)
	return err
}

func (s *Stack) set(kv ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i+1 < len(kv); i += 2 {
		s.env[kv[i]] = kv[i+1]
	}
}

func (s *Stack) track(p *process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs = append(s.procs, p)
}

func (s *Stack) postgres(ctx context.Context, lookup func(string) (string, bool), migrate func(context.Context, string) error) error {
	start := time.Now()
	url, ok := lookup("DATABASE_URL")
	if ok {
		s.progress("postgres: using DATABASE_URL from the environment")
	} else {
		port := s.profile.PostgresPort
		if port == 0 {
			var err error
			if port, err = loopback.FreePort(); err != nil {
				return err
			}
		}
		var err error
		if url, err = s.startPostgres(ctx, filepath.Join(s.stateDir, "pg"), port); err != nil {
			return err
		}
		s.progress(fmt.Sprintf("postgres   %s (%s)", url, time.Since(start).Round(time.Millisecond)))
		// KeyBuzz's database as KeyBuzz has it: `public` built by Prisma from
		// its schema (and its sign-up played for made-up tenants); a
		// DATABASE_URL from the environment is taken to be KeyBuzz's already.
		pstart := time.Now()
		if reset, err := resetWave2Database(ctx, url); err != nil {
			return err
		} else if reset {
			s.progress("postgres: the local database had the connector's wave-2 tables in public (KeyBuzz's schema): recreated empty")
		}
		if err := KeybuzzDatabase(ctx, s.repo, url, true); err != nil {
			return fmt.Errorf("KeyBuzz's schema: %w", err)
		}
		s.progress(fmt.Sprintf("postgres: KeyBuzz's public schema by prisma db push (%s)", time.Since(pstart).Round(time.Millisecond)))
	}
	s.set("DATABASE_URL", url)
	if migrate != nil {
		if err := migrate(ctx, url); err != nil {
			return fmt.Errorf("apply migrations: %w", err)
		}
		s.progress("postgres: migrations applied")
	}
	return nil
}

func (s *Stack) vault(ctx context.Context, lookup func(string) (string, bool)) error {
	start := time.Now()
	addr, ok := lookup("VAULT_ADDR")
	token := s.profile.VaultToken
	if ok {
		if token, ok = lookup("VAULT_TOKEN"); !ok {
			return errors.New("VAULT_ADDR is set but VAULT_TOKEN is not")
		}
		if err := waitVault(ctx, addr, nil); err != nil {
			return err
		}
		s.progress("vault: using VAULT_ADDR from the environment")
	} else {
		var err error
		if addr, err = s.startVault(ctx, s.profile.VaultPort, token); err != nil {
			return err
		}
		s.progress(fmt.Sprintf("vault      %s (%s)", addr, time.Since(start).Round(time.Millisecond)))
	}
	s.set("VAULT_ADDR", addr, "VAULT_TOKEN", token)
	return seedVault(ctx, addr, token, SandboxApp)
}

func (s *Stack) sqs(ctx context.Context, lookup func(string) (string, bool)) error {
	start := time.Now()
	endpoint, ok := lookup("AWS_ENDPOINT_URL_SQS")
	var pollURL, dlqURL string
	var err error
	if ok {
		if pollURL, dlqURL, err = ensureQueues(ctx, endpoint); err != nil {
			return err
		}
		if u, ok := lookup("POLL_QUEUE_URL"); ok {
			pollURL = u
		}
		if u, ok := lookup("POLL_DLQ_URL"); ok {
			dlqURL = u
		}
		s.progress("sqs: using AWS_ENDPOINT_URL_SQS from the environment")
	} else {
		if endpoint, err = s.startFauxqs(ctx, s.profile.SQSPort); err != nil {
			return err
		}
		if pollURL, dlqURL, err = queueURLs(ctx, endpoint); err != nil {
			return err
		}
		s.progress(fmt.Sprintf("sqs        %s (%s)", endpoint, time.Since(start).Round(time.Millisecond)))
	}
	s.set("AWS_ENDPOINT_URL_SQS", endpoint, "POLL_QUEUE_URL", pollURL, "POLL_DLQ_URL", dlqURL)
	q, err := ensureNotificationQueues(ctx, endpoint)
	if err != nil {
		return err
	}
	s.set("NOTIFICATIONS_QUEUE_URL", q.URL, "NOTIFICATIONS_DLQ_URL", q.DLQURL)
	if s.profile.Push {
		s.set("NOTIFICATIONS_QUEUE_ARN", q.ARN)
	}
	return nil
}

func (s *Stack) sandbox(ctx context.Context, lookup func(string) (string, bool)) error {
	start := time.Now()
	url, ok := lookup("AMAZON_SANDBOX_URL")
	if ok {
		s.progress("amazon-sandbox: using AMAZON_SANDBOX_URL from the environment")
	} else {
		var err error
		if url, err = s.startSandbox(ctx, s.profile.SandboxPort, SandboxApp, s.Get("AWS_ENDPOINT_URL_SQS")); err != nil {
			return err
		}
		s.progress(fmt.Sprintf("sandbox    %s (%s)", url, time.Since(start).Round(time.Millisecond)))
	}
	url = strings.TrimRight(url, "/")
	s.set("AMAZON_SANDBOX_URL", url)
	for k, v := range map[string]string{
		"AMAZON_LWA_TOKEN_URL":      url + "/auth/o2/token",
		"AMAZON_SPAPI_ENDPOINT":     url,
		"AMAZON_SELLER_CENTRAL_URL": url,
	} {
		if existing, ok := lookup(k); ok {
			v = existing
		}
		s.set(k, v)
	}
	return nil
}

// Env returns the variables as KEY=VALUE, sorted.
func (s *Stack) Env() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.env))
	for k, v := range s.env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// Get returns one variable of the stack.
func (s *Stack) Get(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.env[key]
}

// StateDir is where the cluster, the logs and the env file live.
func (s *Stack) StateDir() string { return s.stateDir }

// Close stops every service (in parallel) and removes a temporary state dir.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	procs, closers := s.procs, s.closers
	s.mu.Unlock()
	var closeErrs []error
	for _, c := range closers {
		closeErrs = append(closeErrs, c())
	}
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.stop(10 * time.Second) }()
	}
	wg.Wait()
	errs = append(errs, closeErrs...)
	if s.tempDir {
		if err := os.RemoveAll(s.stateDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WriteEnvFile writes KEY=VALUE lines, mode 0600 (it holds tokens).
func WriteEnvFile(path string, env []string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	content := "# Written by `go run ./cmd/stack`; do not edit.\n" + strings.Join(env, "\n") + "\n"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadEnvFile reads KEY=VALUE lines (blank lines and # comments skipped).
func ReadEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") {
			return nil, fmt.Errorf("%s: not KEY=VALUE: %q", path, line)
		}
		env = append(env, line)
	}
	return env, sc.Err()
}

// RepoRoot walks up from the working directory to this module's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "module "+modulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the keybuzz-amazon repository (no go.mod for " + modulePath + ")")
		}
		dir = parent
	}
}

// CacheDir is ~/.cache/keybuzz-amazon (or $XDG_CACHE_HOME/keybuzz-amazon).
func CacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "keybuzz-amazon"), nil
}

const tempPrefix = "keybuzz-stack-"

// sweepTempDirs removes the temporary state of stacks whose process died
// without Close (SIGKILL): their services died with them (Pdeathsig).
func sweepTempDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}
