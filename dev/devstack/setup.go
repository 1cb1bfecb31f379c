package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// fauxqsVersion is the version pinned in tools/fauxqs/package.json.
const fauxqsVersion = "1.9.2"

// Setup installs what the stack needs on a fresh machine. It is idempotent:
// what is already there is skipped. Extra steps (building aws-lambda-rie)
// are passed by the caller and run last.
func Setup(ctx context.Context, repo string, progress func(string), extra ...func(context.Context) error) error {
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"go modules", func(ctx context.Context) error { return runIn(ctx, repo, progress, "go", "mod", "download") }},
		{"PostgreSQL", func(ctx context.Context) error { return ensurePostgres(ctx, progress) }},
		{"fauxqs", func(ctx context.Context) error { return ensureFauxqs(ctx, repo, progress) }},
		{"Prisma", func(ctx context.Context) error { return EnsurePrisma(ctx, repo, progress) }},
		{"Chromium", func(ctx context.Context) error { return ensureChromium(ctx, progress) }},
		{"Vault dev server", func(ctx context.Context) error {
			if p, err := exec.LookPath("vault"); err == nil {
				progress("vault: using " + p)
				return nil
			}
			bin, err := EnsureVaultDev(ctx, repo, progress)
			if err == nil {
				progress("vault: " + bin)
			}
			return err
		}},
	}
	for _, st := range steps {
		progress("setup: " + st.name)
		if err := st.run(ctx); err != nil {
			return fmt.Errorf("setup %s: %w", st.name, err)
		}
	}
	for _, f := range extra {
		if err := f(ctx); err != nil {
			return err
		}
	}
	progress("setup: done")
	return nil
}

func ensurePostgres(ctx context.Context, progress func(string)) error {
	if dir, err := postgresBinDir(); err == nil {
		if _, err := pgCredential(); err == nil {
			progress("postgres: " + dir)
			return nil
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("PostgreSQL server is missing: install it (sudo apt-get install -y postgresql) or set DATABASE_URL")
	}
	progress("postgres: apt-get install -y postgresql")
	if err := runIn(ctx, "", progress, "apt-get", "update"); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", "postgresql")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install postgresql: %w\n%s", err, out)
	}
	_, err := postgresBinDir()
	return err
}

// ChromiumNames are the executables a headless-browser test may run
// (Debian's package installs /usr/bin/chromium).
var ChromiumNames = []string{"chromium", "chromium-browser", "google-chrome"}

// Chromium returns the path of a Chromium on PATH.
func Chromium() (string, error) {
	for _, n := range ChromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("chromium is not on PATH: run make setup (it installs Debian's chromium as root)")
}

// ensureChromium installs Debian's chromium when none is on PATH: the
// headless-browser tests drive it (chromedp).
func ensureChromium(ctx context.Context, progress func(string)) error {
	if p, err := Chromium(); err == nil {
		progress("chromium: " + p)
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("chromium is missing: install it (sudo apt-get install -y chromium)")
	}
	progress("chromium: apt-get install -y chromium (first time: a few minutes)")
	if err := runIn(ctx, "", progress, "apt-get", "-o", "DPkg::Lock::Timeout=600", "update"); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", "chromium")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install chromium: %w\n%s", err, out)
	}
	_, err := Chromium()
	return err
}

// ensureFauxqs runs `npm ci` unless the pinned version is already installed
// from the current lockfile.
func ensureFauxqs(ctx context.Context, repo string, progress func(string)) error {
	dir := filepath.Join(repo, fauxqsDir)
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node is not on PATH (Node 20+ is needed for fauxqs)")
	}
	var installed struct{ Version string }
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "fauxqs", "package.json"))
	if err == nil && json.Unmarshal(b, &installed) == nil && installed.Version == fauxqsVersion {
		lock, err1 := os.Stat(filepath.Join(dir, "package-lock.json"))
		inst, err2 := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
		if err1 == nil && err2 == nil && !inst.ModTime().Before(lock.ModTime()) {
			progress("fauxqs " + installed.Version + ": already installed")
			return nil
		}
	}
	return runIn(ctx, repo, progress, "npm", "ci", "--prefix", fauxqsDir, "--no-audit", "--no-fund", "--loglevel=error")
}

func runIn(ctx context.Context, dir string, progress func(string), name string, args ...string) error {
	progress("$ " + name + " " + fmt.Sprint(args))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, out)
	}
	return nil
}
