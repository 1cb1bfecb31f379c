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
