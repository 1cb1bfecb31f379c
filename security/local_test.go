// Package security holds the security tests that need the whole local
// server (cmd/local as `make dev` runs it), not one handler: oversized
// headers, bodies and URLs against the real http.Server and middleware,
// and a scan of the server's own output for the values sent to it.
package security

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
)

// localServer builds and starts cmd/local on a free port with a database
// and a poll queue of its own, and returns its base URL and its output.
func localServer(t *testing.T) (string, *testenv.Buffer) {
	t.Helper()
	ctx := context.Background()
	_, dbURL := testenv.Pool(t)
	localDBs.Store(t.Name(), dbURL)
	testenv.Env(t, "VAULT_ADDR")
	client, err := pollsender.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(testenv.ID("security-local"))})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	t.Cleanup(func() { client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) })

	bin := filepath.Join(t.TempDir(), "local")
	build := exec.Command("go", "build", "-o", bin, "github.com/keybuzz/keybuzz-amazon/cmd/local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/local: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "POLL_QUEUE_URL=") && !strings.HasPrefix(kv, "FRONTEND_RETURN_URL=") {
			env = append(env, kv)
		}
	}
	env = append(env, "DATABASE_URL="+dbURL, "POLL_QUEUE_URL="+aws.ToString(q.QueueUrl), "MARKETPLACE_POLL_INTERVAL_SECONDS=3600", "LOG_LEVEL=debug")
	out := &testenv.Buffer{}
	cmd := exec.Command(bin, "-addr", addr)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	for start := time.Now(); ; {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("cmd/local did not answer: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return base, out
}

// localDBs holds each test's local server database URL.
var localDBs sync.Map

// localDB is the database of the local server this test started.
func localDB(t *testing.T) string {
	t.Helper()
	v, ok := localDBs.Load(t.Name())
	if !ok {
		t.Fatal("no local server in this test")
	}
	return v.(string)
}

func jwt(t *testing.T, tenant string) string {
	t.Helper()
	tok, err := auth.Issue(secret.Value(testenv.Env(t, "AUTH_JWT_HS256_SECRET")), testenv.Env(t, "AUTH_JWT_ISSUER"),
		testenv.Env(t, "AUTH_JWT_AUDIENCE"), "tenantId", tenant, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Oversized headers, bodies and URLs get a 4xx from the local server (never
// a 5xx, never a hang), and it still serves afterwards.
func TestLocalServerOversizedInput(t *testing.T) {
	base, out := localServer(t)
	tenant := testenv.ID("tenant-sec")
	tok := jwt(t, tenant)
	big := strings.Repeat("A", 1<<20)
	cases := []struct {
		name   string
		method string
		path   string
		header map[string]string
		body   io.Reader
		length int64 // -1: chunked
		want   []int
		// cut: the server may close the connection while the client is
		// still sending a body it has refused; only such a case accepts a
		// transport error as its answer.
		cut bool
	}{
		{"32 KiB header", http.MethodGet, httpapi.StatusPath, map[string]string{"Authorization": "Bearer " + tok, "X-Pad": big[:32<<10]}, nil, 0, []int{431}, false},
		{"many headers", http.MethodGet, httpapi.StatusPath, manyHeaders(tok, 400), nil, 0, []int{431}, false},
		{"15 KiB bearer token", http.MethodGet, httpapi.StatusPath, map[string]string{"Authorization": "Bearer " + big[:15<<10]}, nil, 0, []int{401}, false},
		{"1 MiB body with Content-Length", http.MethodPost, httpapi.StartPath, map[string]string{"Authorization": "Bearer " + tok}, strings.NewReader(big), int64(len(big)), []int{413, 400}, true},
		{"1 MiB chunked body", http.MethodPost, httpapi.StartPath, map[string]string{"Authorization": "Bearer " + tok}, io.MultiReader(strings.NewReader(big)), -1, []int{413, 400, 200}, true},
		{"64 KiB callback query", http.MethodGet, httpapi.CallbackPath + "?state=" + big[:64<<10] + "&spapi_oauth_code=x&selling_partner_id=A1", nil, nil, 0, []int{431, 414, 400, 303}, false},
		{"64 KiB status query", http.MethodGet, httpapi.StatusPath + "?x=" + big[:64<<10], map[string]string{"Authorization": "Bearer " + tok}, nil, 0, []int{431, 414}, false},
		{"16 KiB state", http.MethodGet, httpapi.CallbackPath + "?state=" + big[:12<<10] + "&spapi_oauth_code=x&selling_partner_id=A1", nil, nil, 0, []int{400, 303}, false},
	}
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, base+c.path, c.body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = c.length
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				if !c.cut {
					t.Fatalf("no answer: %v", err)
				}
				// Cut while the refused body was still being sent; the
				// server must still be alive afterwards (checked below).
				t.Logf("%s: connection cut: %v", c.name, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok := false
			for _, w := range c.want {
				ok = ok || resp.StatusCode == w
			}
			if !ok || resp.StatusCode >= 500 {
				t.Fatalf("HTTP %d, want one of %v", resp.StatusCode, c.want)
			}
			if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusSeeOther && !strings.Contains(loc, "amazon_error=") {
				t.Fatalf("redirect %q is not an error outcome", loc)
			}
		})
	}
	// Still serving.
	req, _ := http.NewRequest(http.MethodGet, base+httpapi.StatusPath, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("the server died: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		t.Fatalf("status after the oversized requests: HTTP %d", resp.StatusCode)
	}
	// Its output names neither the JWT nor the oversized values.
	logs := out.String()
	if len(logs) == 0 {
		t.Fatal("cmd/local logged nothing: the scan would prove nothing")
	}
	for name, v := range map[string]string{"the JWT": tok, "the 12 KiB state": big[:4096], "the JWT secret": os.Getenv("AUTH_JWT_HS256_SECRET"),
		"the Vault token": os.Getenv("VAULT_TOKEN")} {
		if len(v) >= 8 && strings.Contains(logs, v) {
			t.Errorf("%s appears in cmd/local's output", name)
		}
	}
}

func manyHeaders(tok string, n int) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + tok}
	for i := range n {
		h[fmt.Sprintf("X-H-%d", i)] = strings.Repeat("v", 60)
	}
	return h
}
