package keybuzzamazon

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
// functions that call them, the SESv2 client outside replysender, the
// MIME library outside inboundmail and replysender (shared/mailaddress is
// apart from shared/inboundmail, shared/replymail from shared/reply, for
// that), its charsets outside inboundmail, and debugging and template packages nowhere. Built as `make
// build` builds (linux/arm64, -tags lambda.norpc).
func TestFunctionsLinkOnlyWhatTheyUse(t *testing.T) {
	allowed := map[string][]string{ // package: the functions that may link it
		"github.com/aws/aws-sdk-go-v2/config":        nil,
		"github.com/aws/aws-sdk-go-v2/service/sqs":   {"pollfanout", "ordernotify", "sendreply"}, // ordernotify: a notification's visibility (sqsvisibility); sendreply: the reply's job
		"github.com/aws/aws-sdk-go-v2/service/sesv2": {"replysender"},
		"github.com/aws/aws-sdk-go-v2/service/s3":    {"inboundmail"},
		"github.com/emersion/go-message":             {"inboundmail", "replysender"}, // replysender writes (shared/replymail)
		"golang.org/x/text/encoding":                 {"inboundmail"},
		"net/http/pprof":                             nil,
		"expvar":                                     nil,
		"text/template":                              nil,
		"html/template":                              nil,
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

// flows are the packages that each carry one concern from a trigger to the
// store (the Connect flow, the poller, the push intake, the mail intake,
// the replies to buyers and their sender): a flow reaches Amazon through
// shared/sellerapi and the database through the interfaces it declares,
// never through another flow. A new flow is added here.
var flows = []string{"connect", "poll", "push", "inboundmail", "replies", "replysender"}

// TestFlowsImportNoFlow holds the one-way house: no flow depends, directly
// or through another package, on another flow (tests aside).
func TestFlowsImportNoFlow(t *testing.T) {
	const mod = "github.com/keybuzz/keybuzz-amazon/shared/"
	args := []string{"list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}"}
	for _, f := range flows {
		args = append(args, "./shared/"+f)
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(flows) {
		t.Fatalf("go list listed %d packages for %d flows:\n%s", len(lines), len(flows), out)
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		flow := strings.TrimPrefix(fields[0], mod)
		for _, dep := range fields[1:] {
			if other := strings.TrimPrefix(dep, mod); other != dep && other != flow && slices.Contains(flows, other) {
				t.Errorf("flow shared/%s depends on flow shared/%s", flow, other)
			}
		}
	}
}

// TestLocalServerBuildsWhatShips keeps cmd/local from drifting from the
// functions: every function's main builds its flow with a builder of
// shared/wire (or wire/wiremail, wire/wirereply), and the local server calls the same
// builders.
func TestLocalServerBuildsWhatShips(t *testing.T) {
	builder := regexp.MustCompile(`\b(wire|wiremail|wirereply)\.([A-Z]\w*)\(`)
	localFiles, err := filepath.Glob("cmd/local/*.go")
	if err != nil || len(localFiles) == 0 {
		t.Fatalf("cmd/local: %v", err)
	}
	localCalls := map[string]bool{}
	for _, f := range localFiles {
		local, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range builder.FindAllStringSubmatch(string(local), -1) {
			localCalls[m[1]+"."+m[2]] = true
		}
	}
	entries, err := os.ReadDir("functions")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		src, err := os.ReadFile("functions/" + e.Name() + "/main.go")
		if err != nil {
			t.Fatal(err)
		}
		calls := builder.FindAllStringSubmatch(string(src), -1)
		if len(calls) == 0 {
			t.Errorf("functions/%s builds its flow without a builder of shared/wire", e.Name())
		}
		for _, m := range calls {
			if name := m[1] + "." + m[2]; !localCalls[name] {
				t.Errorf("functions/%s calls %s, cmd/local does not", e.Name(), name)
			}
		}
	}
}
