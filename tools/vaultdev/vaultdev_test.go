// Package vaultdev builds a real Vault dev server from Vault's own core and
// HTTP API. Vault's in-process helpers take a testing.TB, so the server is a
// test binary: build it with `go test -c` and run it with
// `-test.run TestDevServer -test.timeout 0 -addr 127.0.0.1:8200 -root-token dev-root`.
package vaultdev

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/hashicorp/vault/api"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/vault"
)

var (
	addr      = flag.String("addr", "127.0.0.1:8200", "loopback address to listen on")
	rootToken = flag.String("root-token", "dev-root", "id of the root token to create")
)

func TestDevServer(t *testing.T) {
	if os.Getenv("VAULTDEV_SERVE") != "1" && flag.Lookup("test.run").Value.String() != "TestDevServer" {
		t.Skip("run with -test.run TestDevServer to serve")
	}
	core, _, token := vault.TestCoreUnsealed(t)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		t.Fatalf("listen %s: %v", *addr, err)
	}
	vaulthttp.TestServerWithListener(t, ln, "http://"+ln.Addr().String(), core)

	cfg := api.DefaultConfig()
	cfg.Address = "http://" + ln.Addr().String()
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	client.SetToken(token)
	if _, err := client.Logical().Write("auth/token/create", map[string]any{
		"id": *rootToken, "policies": []string{"root"}, "no_parent": true, "display_name": "dev-root",
	}); err != nil {
		t.Fatalf("create root token: %v", err)
	}
	// The test core mounts KV v1 at secret/; a real dev server mounts v2.
	_ = client.Sys().Unmount("secret")
	if err := client.Sys().Mount("secret", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatalf("mount kv v2: %v", err)
	}
	fmt.Printf("ready http://%s\n", ln.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	ln.Close()
}
