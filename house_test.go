package keybuzzamazon

import (
	"os/exec"
	"strings"
	"testing"
)

// TestFunctionsImportNoDevelopmentTree holds the line between what ships and
// what only develops: no package a Lambda function is built from, and no
// non-test package under shared/, may live under dev/.
func TestFunctionsImportNoDevelopmentTree(t *testing.T) {
	const mod = "github.com/keybuzz/keybuzz-amazon/"
	for _, pattern := range []string{"./functions/...", "./shared/..."} {
		out, err := exec.Command("go", "list", "-deps", pattern).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pattern, err, out)
		}
		var n int
		for _, pkg := range strings.Fields(string(out)) {
			if !strings.HasPrefix(pkg, mod) {
				continue
			}
			n++
			if rel := strings.TrimPrefix(pkg, mod); strings.HasPrefix(rel, "dev/") || rel == "dev" {
				t.Errorf("%s depends on development package %s", pattern, pkg)
			}
		}
		if n == 0 {
			t.Fatalf("go list -deps %s listed no package of the module", pattern)
		}
	}
}
