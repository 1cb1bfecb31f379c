// Package rie runs a function's bootstrap the way Lambda does, without
// Docker: under aws-lambda-rie (the Runtime Interface Emulator that
// `sam local invoke` uses inside its container), built from its Go module at
// a pinned version and cached.
package rie

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/loopback"
)

// Module and Version pin the emulator.
const (
	Module  = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
	Version = "v0.0.0-20261030222936-bef5c4ba774d"
)

const invokePath = "/2015-03-31/functions/function/invocations"

// Emulator returns the cached aws-lambda-rie binary, installing it with
// `go install` on first use.
func Emulator(ctx context.Context) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, "keybuzz-amazon", "rie-"+Version)
	bin := filepath.Join(dir, "aws-lambda-rie")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	cmd := exec.CommandContext(ctx, "go", "install", Module+"@"+Version)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("install aws-lambda-rie: %w\n%s", err, out)
	}
	return bin, nil
}

// Build compiles the main package pkg (for instance ./functions/status) into
// outPath as Lambda runs it on provided.al2023: a static Linux binary for the
// host's architecture, without the legacy RPC mode.
func Build(ctx context.Context, pkg, outPath string) error {
	return BuildArch(ctx, pkg, outPath, runtime.GOARCH)
}

// BuildArch compiles pkg as Build does, for the architecture goarch
// (`make build` builds for LAMBDA_ARCH, arm64): a binary this machine may
// not run, but whose size is the deployed one.
func BuildArch(ctx context.Context, pkg, outPath, goarch string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", outPath, pkg)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", pkg, err, out)
	}
	return nil
}

// Instance is one bootstrap running under the emulator.
type Instance struct {
	URL string // base URL of the emulator

	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
}

// Option tunes Start.
type Option func(*startConfig)

type startConfig struct{ logLevel string }

// WithLogLevel sets the emulator's --log-level (default "error"); at
// "info" its logs carry the INIT REPORT line that InitDuration reads.
func WithLogLevel(level string) Option {
	return func(c *startConfig) {
		if level != "" {
			c.logLevel = level
		}
	}
}

// Start runs bootstrap under aws-lambda-rie on free loopback ports with env
// added to the current environment, and returns once the emulator listens.
func Start(ctx context.Context, bootstrap string, env []string, opts ...Option) (*Instance, error) {
	cfg := startConfig{logLevel: "error"}
	for _, o := range opts {
		o(&cfg)
	}
	emu, err := Emulator(ctx)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(bootstrap)
	if err != nil {
		return nil, err
	}
	// Two ports: the invoke API and the Runtime API (default 9001, which
	// would collide between instances).
	invokePort, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	runtimePort, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(invokePort)
	cmd := exec.Command(emu,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(runtimePort),
		"--log-level", cfg.logLevel,
		abs)
	cmd.Dir = filepath.Dir(abs)
	cmd.Env = append(append(os.Environ(), "AWS_LAMBDA_FUNCTION_NAME="+filepath.Base(filepath.Dir(abs))), env...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start aws-lambda-rie: %w", err)
	}
	in := &Instance{URL: "http://" + addr, cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() { in.err = cmd.Wait(); close(in.done) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return in, nil
		}
		select {
		case <-in.done:
			return nil, fmt.Errorf("aws-lambda-rie exited: %v\n%s", in.err, logs.String())
		case <-ctx.Done():
			in.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			in.Close()
			return nil, fmt.Errorf("aws-lambda-rie did not listen on %s\n%s", addr, logs.String())
		}
	}
}

// Invoke posts event to the function and returns its response body. A
// function error is returned as the body (the emulator answers 200 with
// errorMessage/errorType, as Lambda's Invoke API does).
func (in *Instance) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.URL+invokePath, bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("invoke: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("invoke: status %s: %s", resp.Status, body)
	}
	return body, nil
}

// Logs returns everything the emulator and the function wrote so far.
func (in *Instance) Logs() string { return in.logs.String() }

// InitDuration reads the function's init phase from an instance's logs
// (started WithLogLevel("info")): the emulator's "INIT REPORT(durationMs:
// …)", the time from starting the bootstrap's process to its first call
// for the next invocation, which is what Lambda reports as Init Duration
// (the process, package initialisation and main up to lambda.Start). The
// emulator starts the bootstrap on the first invoke, so its own start-up
// is not in it. ok is false when the line is missing.
func InitDuration(logs string) (d time.Duration, ok bool) {
	const marker = "INIT REPORT(durationMs: "
	i := strings.Index(logs, marker)
	if i < 0 {
		return 0, false
	}
	var v float64
	if _, err := fmt.Sscanf(logs[i+len(marker):], "%f", &v); err != nil {
		return 0, false
	}
	return time.Duration(v * float64(time.Millisecond)), true
}

// Close stops the emulator and the function.
func (in *Instance) Close() error {
	select {
	case <-in.done:
		return nil
	default:
	}
	pgid := in.cmd.Process.Pid
	kids := descendants(pgid) // the bootstrap runs in a process group of its own
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(3 * time.Second):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-in.done
	for _, p := range kids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	return nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Signal sends sig to the function and the emulator: SIGKILL is a
// container killed where it stands, SIGSTOP a frozen one, SIGCONT thaws it.
// The emulator starts the bootstrap in a process group of its own, so
// every descendant of the emulator is signalled, the function first.
func (in *Instance) Signal(sig syscall.Signal) error {
	select {
	case <-in.done:
		return fmt.Errorf("signal %v: the emulator has exited", sig)
	default:
	}
	pids := descendants(in.cmd.Process.Pid)
	for i := len(pids) - 1; i >= 0; i-- {
		_ = syscall.Kill(pids[i], sig)
	}
	return syscall.Kill(-in.cmd.Process.Pid, sig)
}

// Done is closed once the emulator has exited.
func (in *Instance) Done() <-chan struct{} { return in.done }

// descendants lists the processes below pid (children before theirs),
// from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		var state string
		var ppid int
		if _, err := fmt.Sscan(rest, &state, &ppid); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
