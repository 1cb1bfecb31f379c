// Package sandboxtest starts the Amazon sandbox in-process for tests.
package sandboxtest

import (
	"net"
	"net/http/httptest"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

// Start serves a sandbox built from cfg on 127.0.0.1 at a random port and
// returns it with its base URL (http://127.0.0.1:PORT). The server is closed
// when the test ends.
func Start(t testing.TB, cfg sandbox.Config) (*sandbox.Server, string) {
	t.Helper()
	s := sandbox.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sandboxtest: listen: %v", err)
	}
	ts := httptest.NewUnstartedServer(s)
	_ = ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	return s, ts.URL
}
