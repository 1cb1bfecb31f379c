// Package sandboxtest starts the Amazon sandbox in-process for tests, with
// every SP-API request checked against Amazon's models.
package sandboxtest

import (
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/openapicheck"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

// ModelsDir is where the repository keeps Amazon's models, from its root.
const ModelsDir = "testdata/amazon-models"

// CountFileEnv names a file to which each sandbox appends, when its test
// ends, the number of SP-API requests it checked (one line per test), so a
// whole `make test` can be counted.
const CountFileEnv = "SANDBOX_CONTRACT_COUNT_FILE"

var (
	contractOnce sync.Once
	contract     *openapicheck.Contract
	contractErr  error
)

// Contract is Amazon's contract as the tests hold the sandbox to it: every
// Swagger model in ModelsDir and openapicheck.AmazonRules, loaded once.
func Contract(t testing.TB) *openapicheck.Contract {
	t.Helper()
	contractOnce.Do(func() {
		root, err := openapicheck.RepoRoot()
		if err != nil {
			contractErr = err
			return
		}
		contract, contractErr = openapicheck.LoadContract(filepath.Join(root, ModelsDir), openapicheck.AmazonRules)
	})
	if contractErr != nil {
		t.Fatalf("sandboxtest: load Amazon's models: %v", contractErr)
	}
	return contract
}

// Start serves a sandbox built from cfg on 127.0.0.1 at a random port and
// returns it with its base URL (http://127.0.0.1:PORT). The server is closed
// when the test ends. Unless cfg.Contract is set, every SP-API request is
// checked against Contract; the test fails when it ends with a request
// outside the contract that it did not take (Server.TakeViolations).
func Start(t testing.TB, cfg sandbox.Config) (*sandbox.Server, string) {
	t.Helper()
	if cfg.Contract == nil {
		cfg.Contract = Contract(t)
	}
	s := sandbox.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sandboxtest: listen: %v", err)
	}
	ts := httptest.NewUnstartedServer(s)
	_ = ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		for _, v := range s.TakeViolations() {
			t.Errorf("sandboxtest: a request outside Amazon's contract: %v", v)
		}
		n := s.Checked()
		t.Logf("sandboxtest: %d SP-API requests checked against Amazon's models", n)
		if f := os.Getenv(CountFileEnv); f != "" && n > 0 {
			appendCount(t, f, n)
		}
	})
	return s, ts.URL
}

func appendCount(t testing.TB, file string, n int) {
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Logf("sandboxtest: count file: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %d\n", t.Name(), n)
}
