// Command stack starts the local services of keybuzz-amazon (PostgreSQL,
// Vault, the fauxqs SQS emulator and the Amazon sandbox) on loopback.
//
//	stack up    [--profile dev|test]           start, write the env file, wait for Ctrl-C
//	stack run   [--profile dev|test] -- CMD…   start, run CMD with the env, stop, exit with CMD's code
//	stack exec  [--env-file F] -- CMD…         run CMD with a written env file (no services started)
//	stack setup                                install what the stack needs (idempotent)
//
// See docs/local-stack.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/rie"
	"github.com/keybuzz/keybuzz-amazon/shared/migrate"
)

func main() {
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func progress(msg string) { fmt.Fprintln(os.Stderr, "stack:", msg) }

func usage() error {
	return errors.New("usage: stack up|run|exec|setup [--profile dev|test] [-- CMD ARGS…]")
}

func run(args []string) (int, error) {
	if len(args) == 0 {
		return 2, usage()
	}
	sub := args[0]
	fs := flag.NewFlagSet("stack "+sub, flag.ContinueOnError)
	profileName := fs.String("profile", "dev", "dev (fixed ports, state in .local/) or test (random ports, temporary state)")
	envFile := fs.String("env-file", ".local/dev.env", "exec: env file to load (missing is fine)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2, err
	}
	repo, err := devstack.RepoRoot()
	if err != nil {
		return 1, err
	}
	// SIGINT/SIGTERM cancel ctx; everything started is then stopped.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch sub {
	case "setup":
		return 0, devstack.Setup(ctx, repo, progress, func(ctx context.Context) error {
			progress("setup: aws-lambda-rie " + rie.Version)
			bin, err := rie.Emulator(ctx)
			if err == nil {
				progress("aws-lambda-rie: " + bin)
			}
			return err
		})
	case "exec":
		if fs.NArg() == 0 {
			return 2, usage()
		}
		env, err := devstack.ReadEnvFile(filepath.Join(repo, *envFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 1, err
		}
		return runCommand(ctx, fs.Args(), env)
	case "up", "run":
		if sub == "run" && fs.NArg() == 0 {
			return 2, usage()
		}
		profile, err := devstack.ProfileByName(*profileName, repo)
		if err != nil {
			return 2, err
		}
		start := time.Now()
		st, err := devstack.Start(ctx, profile, devstack.Options{Repo: repo, Progress: progress, Migrate: applyMigrations})
		if err != nil {
			return 1, err
		}
		defer func() {
			if err := st.Close(); err != nil {
				progress("stop: " + err.Error())
			}
		}()
		progress(fmt.Sprintf("ready in %s; environment in %s", time.Since(start).Round(time.Millisecond), st.EnvPath))
		if sub == "up" {
			for _, kv := range st.Env() {
				if k, _, _ := strings.Cut(kv, "="); !secret(k) {
					fmt.Println(kv)
				}
			}
			progress("press Ctrl-C to stop")
			<-ctx.Done()
			progress("stopping")
			return 0, nil
		}
		env := append(st.Env(), "DEVSTACK_ENV_FILE="+st.EnvPath)
		return runCommand(ctx, fs.Args(), env)
	}
	return 2, usage()
}

func applyMigrations(ctx context.Context, databaseURL string) error {
	_, err := migrate.Apply(ctx, databaseURL)
	return err
}

func secret(key string) bool {
	return strings.Contains(key, "TOKEN") || strings.Contains(key, "SECRET")
}

// runCommand runs argv with env added, in its own process group so a
// signal reaches all of it (go run / go test start children); the group
// gets SIGINT or SIGTERM when ctx ends. It returns the command's exit code.
func runCommand(ctx context.Context, argv, env []string) (int, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return 127, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGINT)
		select {
		case err = <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			err = <-done
		}
	}
	if err == nil {
		return 0, nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	return 1, err
}
