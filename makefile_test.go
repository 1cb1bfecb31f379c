package keybuzzamazon

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestMakefileFrontDoor holds the README's promise that a clean clone needs
// only `make dev` or `make test`: every target that starts the stack installs
// what is missing first (stack setup), before it runs anything else.
func TestMakefileFrontDoor(t *testing.T) {
	for target, main := range map[string]string{
		"dev":   "stack run --profile dev",
		"test":  "stack run --profile test -- go test",
		"up":    "stack up --profile dev",
		"bench": "stack run --profile test -- go run ./bench",
		"chaos": "go run ./chaos",
		"setup": "stack setup",
	} {
		t.Run(target, func(t *testing.T) {
			out, err := exec.Command("make", "-n", "--no-print-directory", target).CombinedOutput()
			if err != nil {
				t.Fatalf("make -n %s: %v\n%s", target, err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			setup := slices.IndexFunc(lines, func(l string) bool { return strings.HasSuffix(l, "stack setup") })
			run := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, main) })
			if setup < 0 || run < 0 || setup > run {
				t.Errorf("make %s runs\n%s\nwant `stack setup` before %q", target, out, main)
			}
			if build := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "go build -o .local/bin/stack") }); setup >= 0 && (build < 0 || build > setup) {
				t.Errorf("make %s runs stack setup before building .local/bin/stack:\n%s", target, out)
			}
		})
	}
}
