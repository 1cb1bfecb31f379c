package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one child service. It runs in its own process group, dies with
// the stack (Pdeathsig), and its output goes to a log file in the state dir.
type process struct {
	name    string
	cmd     *exec.Cmd
	stopSig syscall.Signal
	logPath string
	log     *os.File

	mu    sync.Mutex
	lines []string // recent output, for error messages
	wait  chan struct{}
	err   error
}

// startProcess starts cmd as service name. watch, when not nil, sees every
// output line until it returns true; startProcess returns once that happens,
// when the process exits, or when ctx ends.
func startProcess(ctx context.Context, name string, cmd *exec.Cmd, logPath string, stopSig syscall.Signal, watch func(line string) bool) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: open log: %w", name, err)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	p := &process{name: name, cmd: cmd, stopSig: stopSig, logPath: logPath, log: logFile, wait: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, cmd.Path, err)
	}
	matched := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			p.mu.Lock()
			p.lines = append(p.lines, line)
			if len(p.lines) > 40 {
				p.lines = p.lines[len(p.lines)-40:]
			}
			p.mu.Unlock()
			if watch != nil && watch(line) {
				watch = nil
				matched <- line
			}
		}
		io.Copy(logFile, pr) // drain on scanner error (very long line)
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.wait)
	}()
	if watch == nil {
		return p, nil
	}
	select {
	case <-matched:
		return p, nil
	case <-p.wait:
		return nil, fmt.Errorf("%s exited during start-up (%v); last output:\n%s", name, p.err, p.tail())
	case <-ctx.Done():
		p.stop(2 * time.Second)
		return nil, fmt.Errorf("%s: not ready: %w; last output:\n%s", name, context.Cause(ctx), p.tail())
	}
}

// startService starts cmd as the stack's service name, logging to
// <log dir>/<name>.log, and tracks it so that Close stops it with stopSig.
// With a readyPrefix it returns once the service prints a line starting with
// it, and answers the rest of that line (the address it announces).
func (s *Stack) startService(ctx context.Context, name string, cmd *exec.Cmd, stopSig syscall.Signal, readyPrefix string) (*process, string, error) {
	var announced string
	var watch func(line string) bool
	if readyPrefix != "" {
		watch = func(line string) bool {
			rest, ok := strings.CutPrefix(line, readyPrefix)
			announced = strings.TrimSpace(rest)
			return ok
		}
	}
	p, err := startProcess(ctx, name, cmd, filepath.Join(s.logDir, name+".log"), stopSig, watch)
	if err != nil {
		return nil, "", err
	}
	s.track(p)
	return p, announced, nil
}

func (p *process) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "  " + strings.Join(p.lines, "\n  ") + "\n  (full log: " + p.logPath + ")"
}

// exited reports whether the process is gone.
func (p *process) exited() bool {
	select {
	case <-p.wait:
		return true
	default:
		return false
	}
}

// stop sends the stop signal to the whole process group, waits up to grace,
// then kills the group.
func (p *process) stop(grace time.Duration) error {
	defer p.log.Close()
	if p.exited() {
		return nil
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, p.stopSig)
	select {
	case <-p.wait:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.wait
		return fmt.Errorf("%s: did not stop within %s, killed", p.name, grace)
	}
	// Anything left in the group (helpers forked by the service) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	var exitErr *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exitErr) {
		return fmt.Errorf("%s: %w", p.name, p.err)
	}
	return nil
}
