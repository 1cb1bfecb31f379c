package keybuzzamazon

import (
	"os"
	"os/exec"
	"slices"
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

// TestFunctionsLinkOnlyWhatTheyUse keeps every bootstrap well under
// Lambda's 15 MB goal (BENCHMARKS.md's bootstrap sizes): a package a function
// does not need must not reach it, since its init and its registries ship
// whether or not it is called. The AWS SDK's configuration loader (its SSO,
// STS, IMDS and shared-file credential providers: shared/awsenv reads
// Lambda's environment instead), the SQS and S3 clients outside the
// functions that call them, the MIME parser and its charsets outside
// inboundmail (shared/mailaddress is apart from shared/inboundmail for
// that), and debugging and template packages nowhere. Built as `make
// build` builds (linux/arm64, -tags lambda.norpc).
func TestFunctionsLinkOnlyWhatTheyUse(t *testing.T) {
	allowed := map[string][]string{ // package: the functions that may link it
		"github.com/aws/aws-sdk-go-v2/config":      nil,
		"github.com/aws/aws-sdk-go-v2/service/sqs": {"pollfanout"},
		"github.com/aws/aws-sdk-go-v2/service/s3":  {"inboundmail"},
		"github.com/emersion/go-message":           {"inboundmail"},
		"golang.org/x/text/encoding":               {"inboundmail"},
		"net/http/pprof":                           nil,
		"expvar":                                   nil,
		"text/template":                            nil,
		"html/template":                            nil,
	}
	entries, err := os.ReadDir("functions")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		fn := e.Name()
		n++
		cmd := exec.Command("go", "list", "-tags", "lambda.norpc", "-deps", "./functions/"+fn)
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps ./functions/%s: %v\n%s", fn, err, out)
		}
		for _, pkg := range strings.Fields(string(out)) {
			if fns, ok := allowed[pkg]; ok && !slices.Contains(fns, fn) {
				t.Errorf("functions/%s links %s (allowed in %v only)", fn, pkg, fns)
			}
		}
	}
	if n == 0 {
		t.Fatal("no function under functions/")
	}
}
