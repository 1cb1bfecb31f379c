// Command fuzztable runs every fuzz target of the repository for a while
// and writes the results table of RELIABILITY.md (between its
// <!-- fuzz:begin --> and <!-- fuzz:end --> markers) from the runs' own
// output, with the date and the commit they ran on:
//
//	go run ./chaos/fuzztable -fuzztime 30s -md RELIABILITY.md
//
// Targets that need the stack (shared/httpapi) run under `stack run`.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

type target struct{ name, pkg, checks string }

// targets are the repository's fuzz targets (a test in this package keeps
// the list whole).
var targets = []target{
	{"FuzzVerify", "./shared/auth", "JWT parsing and verification"},
	{"FuzzTenantPath", "./shared/vaultstore", "Vault path from a tenant id: no traversal, no injection"},
	{"FuzzSearchOrdersDecode", "./shared/spapi", "any status, rate-limit header and body: no panic, an error never comes with a page, orders keep their raw JSON, the access token never in an error"},
	{"FuzzBuyerEvents", "./shared/spapi", "normalisation of decoded orders: one whole message per buyer cancellation request"},
	{"FuzzDecode", "./shared/pollqueue", "SQS body: a message with both ids that round-trips, or ErrMalformed"},
	{"FuzzParse", "./shared/relaymail", "any mail: parsed or a clear error, never a panic"},
	{"FuzzCallbackQuery", "./shared/httpapi", "the callback's query against the real handler, PostgreSQL, Vault and sandbox: a 4xx, never a 5xx, nothing CONNECTED"},
}

var execsRe = regexp.MustCompile(`execs: (\d+)`)

func main() {
	fuzztime := flag.Duration("fuzztime", 30*time.Second, "time per target")
	md := flag.String("md", "RELIABILITY.md", "file whose fuzz block is rewritten")
	flag.Parse()
	commit := "unknown"
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		commit += "+dirty" // a run on uncommitted changes measured no commit (reports_test.go refuses it)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "_Written by `go run ./chaos/fuzztable -fuzztime %s` on %s at commit %s (%d cores, load average %s at the start)._\n\n",
		*fuzztime, time.Now().UTC().Format("2006-01-02 15:04 MST"), commit, runtime.NumCPU(), loadAverage())
	b.WriteString("| target | package | checks | duration | execs | result |\n| --- | --- | --- | --- | ---: | --- |\n")
	failed := false
	for _, t := range targets {
		args := []string{"test", "-run", "XXX", "-fuzz", "^" + t.name + "$", "-fuzztime", fuzztime.String(), "-parallel", "1",
			"-timeout", (*fuzztime + 5*time.Minute).String(), t.pkg}
		cmd := exec.Command("go", args...)
		if t.pkg == "./shared/httpapi" {
			cmd = exec.Command(filepath.Join(".local", "bin", "stack"), append([]string{"run", "--profile", "test", "--", "go"}, args...)...)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		execs := "?"
		sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
		for sc.Scan() {
			if m := execsRe.FindStringSubmatch(sc.Text()); m != nil {
				execs = m[1]
			}
		}
		result := "no finding"
		if err != nil {
			failed = true
			result = "**FAILED** (see `go test` output; a crasher is kept in testdata/fuzz)"
			fmt.Fprintf(os.Stderr, "%s:\n%s\n", t.name, out.String())
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", t.name, strings.TrimPrefix(t.pkg, "./"), t.checks, *fuzztime, execs, result)
		fmt.Fprintf(os.Stderr, "fuzztable: %s: %s execs, %s\n", t.name, execs, result)
	}
	if err := replaceBlock(*md, "<!-- fuzz:begin -->", "<!-- fuzz:end -->", b.String()); err != nil {
		fmt.Fprintln(os.Stderr, "fuzztable:", err)
		os.Exit(1)
	}
	if failed {
		os.Exit(1)
	}
}

// replaceBlock puts body between begin and end in path (appending the
// block when the markers are missing).
func replaceBlock(path, begin, end, body string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(old)
	block := begin + "\n" + body + end
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(end):]
	} else {
		s += "\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

// loadAverage is the machine's one-minute load average ("unknown" where
// /proc has none): the exec rates depend on what else ran.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
