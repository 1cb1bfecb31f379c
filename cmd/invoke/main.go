// Command invoke runs one function the way Lambda does, without Docker:
// it builds ./functions/<fn> as a Linux bootstrap, runs it under
// aws-lambda-rie with the environment of `make dev` (.local/dev.env), posts
// an event file and prints the response and the function's logs.
//
//	go run ./cmd/invoke -fn status -event events/status.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/rie"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "invoke:", err)
		os.Exit(1)
	}
}

func run() error {
	fn := flag.String("fn", "", "function directory under functions/ (oauthstart, oauthcallback, status, pollfanout, polltenant)")
	eventPath := flag.String("event", "", "JSON event file to post (for instance events/status.json)")
	envFile := flag.String("env-file", ".local/dev.env", "environment of the local services")
	timeout := flag.Duration("timeout", time.Minute, "invocation time limit (the build is not limited)")
	flag.Parse()
	if *fn == "" || *eventPath == "" {
		flag.Usage()
		return errors.New("-fn and -event are required (make invoke FN=<function> EVENT=<file>)")
	}
	repo, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	env, err := devstack.ReadEnvFile(filepath.Join(repo, *envFile))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s not found: start the local services with `make dev` first", *envFile)
	} else if err != nil {
		return err
	}
	event, err := os.ReadFile(*eventPath)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	bootstrap := filepath.Join(repo, ".local", "build", *fn, "bootstrap")
	fmt.Fprintf(os.Stderr, "invoke: building ./functions/%s\n", *fn)
	if err := rie.Build(ctx, "./functions/"+*fn, bootstrap); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	in, err := rie.Start(ctx, bootstrap, append(env, "AWS_LAMBDA_FUNCTION_NAME="+*fn))
	if err != nil {
		return err
	}
	defer in.Close()
	start := time.Now()
	resp, err := in.Invoke(ctx, event)
	elapsed := time.Since(start)
	// Give the function's last log lines a moment to arrive.
	time.Sleep(100 * time.Millisecond)
	fmt.Fprintf(os.Stderr, "----- logs (%s)\n%s", *fn, in.Logs())
	fmt.Fprintf(os.Stderr, "----- response (%s)\n", elapsed.Round(time.Millisecond))
	if err != nil {
		return err
	}
	fmt.Println(string(resp))
	return nil
}
