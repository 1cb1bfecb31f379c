package keybuzzamazon

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Generated reports name the commit their run measured; a name that is not
// a commit of this repository's history (a run on a commit that was never
// landed, or on uncommitted changes: "+dirty") makes the report stale.
// Every block of RELIABILITY.md and BENCHMARKS.md and every results file
// must name one.
func TestReportsNameCommitsInHistory(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed to check the reports' commits")
	}
	if out, err := exec.Command("git", "rev-parse", "--is-shallow-repository").Output(); err != nil || strings.TrimSpace(string(out)) != "false" {
		t.Fatalf("the reports' commits need the whole history (a shallow or missing clone: %q, %v)", out, err)
	}
	type named struct{ where, commit string }
	var all []named
	written := regexp.MustCompile(`_Written by [^\n]*? at commit ([^\s._]+(?:\+dirty)?)`)
	blocks := regexp.MustCompile(`<!-- ([a-z:]+):begin -->`)
	for _, doc := range []string{"RELIABILITY.md", "BENCHMARKS.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, m := range blocks.FindAllStringSubmatch(text, -1) {
			begin := "<!-- " + m[1] + ":begin -->"
			end := "<!-- " + m[1] + ":end -->"
			i, j := strings.Index(text, begin), strings.Index(text, end)
			if j < i {
				t.Errorf("%s: block %s has no end", doc, m[1])
				continue
			}
			c := written.FindStringSubmatch(text[i:j])
			if c == nil {
				t.Errorf("%s: block %s names no commit (\"_Written by … at commit <sha>._\")", doc, m[1])
				continue
			}
			all = append(all, named{doc + " block " + m[1], c[1]})
		}
	}
	bench, err := os.ReadFile("BENCHMARKS.md")
	if err != nil {
		t.Fatal(err)
	}
	if c := regexp.MustCompile("\\| commit \\| `([^`]*)`").FindStringSubmatch(string(bench)); c != nil {
		all = append(all, named{"BENCHMARKS.md", c[1]})
	} else {
		t.Error("BENCHMARKS.md names no commit (its `| commit |` row)")
	}
	for _, f := range []string{"chaos/results.json", "chaos/results-long.json", "chaos/results-load.json", "bench/results.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Commit string `json:"commit"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all = append(all, named{f, r.Commit})
	}
	if len(all) < 7 {
		t.Fatalf("only %d reports found: %v", len(all), all)
	}
	// Prose may name commits too (findings): each must be in the history.
	for _, doc := range []string{"RELIABILITY.md", "BENCHMARKS.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?:commit|at|run at|on) \x60?([0-9a-f]{7,40})\b`).FindAllStringSubmatch(string(b), -1) {
			all = append(all, named{doc + " prose", m[1]})
		}
	}
	for _, n := range all {
		if n.commit == "" || strings.Contains(n.commit, "dirty") {
			t.Errorf("%s: commit %q is not a commit (a run on uncommitted changes measures nothing in history)", n.where, n.commit)
			continue
		}
		if err := exec.Command("git", "cat-file", "-e", n.commit+"^{commit}").Run(); err != nil {
			t.Errorf("%s: commit %s is not in this repository's history", n.where, n.commit)
		}
	}
}
