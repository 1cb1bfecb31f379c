package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Every fuzz target of the repository is in the table.
func TestEveryFuzzTargetListed(t *testing.T) {
	out, err := exec.Command("git", "-C", "../..", "grep", "-h", "-o", `^func Fuzz[A-Za-z0-9_]*`, "--", "*_test.go").Output()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tg := range targets {
		listed[tg.name] = true
		if _, err := os.Stat("../../" + tg.pkg); err != nil {
			t.Errorf("%s: package %s: %v", tg.name, tg.pkg, err)
		}
	}
	for _, line := range strings.Fields(strings.ReplaceAll(string(out), "func ", "")) {
		if !listed[line] {
			t.Errorf("fuzz target %s is not in chaos/fuzztable's list", line)
		}
	}
}
