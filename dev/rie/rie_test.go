package rie

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInvokeHelloThroughEmulator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bootstrap := filepath.Join(t.TempDir(), "hello", "bootstrap")
	if err := Build(ctx, "./testdata/hello", bootstrap); err != nil {
		t.Fatal(err)
	}
	in, err := Start(ctx, bootstrap, []string{"HELLO_ENV=1"})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()

	tests := []struct {
		name, event, want string
	}{
		{"success", `{"name":"keybuzz"}`, `{"greeting":"hello keybuzz"}`},
		{"function error", `{}`, `"errorMessage":"no name"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := in.Invoke(ctx, []byte(tc.event))
			if err != nil {
				t.Fatalf("invoke: %v\nlogs:\n%s", err, in.Logs())
			}
			if !json.Valid(out) || !strings.Contains(string(out), tc.want) {
				t.Fatalf("response %s, want it to contain %s", out, tc.want)
			}
		})
	}
	if !strings.Contains(in.Logs(), "hello-log name=keybuzz") {
		t.Errorf("function log line missing from Logs():\n%s", in.Logs())
	}
}

// TestInitDuration reads the emulator's own account of a cold start's init
// phase, as the real emulator writes it at log level info.
func TestInitDuration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bootstrap := filepath.Join(t.TempDir(), "hello", "bootstrap")
	if err := Build(ctx, "./testdata/hello", bootstrap); err != nil {
		t.Fatal(err)
	}
	in, err := Start(ctx, bootstrap, nil, WithLogLevel("info"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, ok := InitDuration(in.Logs()); ok {
		t.Errorf("an init duration before the first invoke (the emulator starts the bootstrap on it):\n%s", in.Logs())
	}
	if _, err := in.Invoke(ctx, []byte(`{"name":"x"}`)); err != nil {
		t.Fatal(err)
	}
	d, ok := InitDuration(in.Logs())
	if !ok || d <= 0 || d > time.Minute {
		t.Errorf("init duration %v (found %v) in:\n%s", d, ok, in.Logs())
	}

	for _, tc := range []struct {
		logs string
		want time.Duration
		ok   bool
	}{
		{"07 Dec 2026 01:41:09,428 [INFO] (rapid) INIT REPORT(durationMs: 19.021000)\n", 19021 * time.Microsecond, true},
		{"REPORT RequestId: x\tInit Duration: 0.05 ms\n", 0, false},
		{"INIT REPORT(durationMs: n/a)", 0, false},
	} {
		if d, ok := InitDuration(tc.logs); d != tc.want || ok != tc.ok {
			t.Errorf("InitDuration(%q) = %v, %v; want %v, %v", tc.logs, d, ok, tc.want, tc.ok)
		}
	}
}
