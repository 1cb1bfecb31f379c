package keybuzzamazon

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// secretPatterns are shapes of real credentials that must never be committed:
// LWA refresh and access tokens, LWA client secrets, private keys, AWS access
// keys, Vault service tokens.
var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`Atz[ra]\|[A-Za-z0-9_\-]{40,}`),
	regexp.MustCompile(`amzn1\.oa2-cs\.v1\.[a-f0-9]{20,}`),
	regexp.MustCompile(`-----BEGIN (RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----`),
	regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`),
	regexp.MustCompile(`\bhvs\.[A-Za-z0-9_\-]{24,}`),
}

func findSecrets(b []byte) []string {
	var found []string
	for _, p := range secretPatterns {
		for _, m := range p.FindAll(b, -1) {
			found = append(found, string(m))
		}
	}
	return found
}

func TestSecretDetector(t *testing.T) {
	long := strings.Repeat("x9", 25)
	for _, bad := range []string{
		"refresh: Atzr|" + long, "Atza|" + long, "amzn1.oa2-cs.v1." + strings.Repeat("ab12", 8),
		"-----BEGIN " + "PRIVATE KEY-----", "AKIA" + "ABCDEFGHIJKLMNOP", "hvs." + strings.Repeat("Ab1", 10),
	} {
		if len(findSecrets([]byte(bad))) == 0 {
			t.Errorf("detector misses %.12s…", bad)
		}
	}
	for _, ok := range []string{"Atzr|short", "sandbox-client-secret", "amzn1.application-oa2-client.keybuzz-sandbox", "dev-root"} {
		if f := findSecrets([]byte(ok)); len(f) != 0 {
			t.Errorf("false positive on %q", ok)
		}
	}
}

// TestNoSecretCommitted scans every tracked file.
func TestNoSecretCommitted(t *testing.T) {
	out, err := exec.Command("git", "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	files := bytes.Split(bytes.TrimRight(out, "\x00"), []byte{0})
	if len(files) < 20 {
		t.Fatalf("only %d tracked files: not a checkout?", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(string(f))
		if err != nil {
			continue // deleted in the work tree
		}
		for _, s := range findSecrets(b) {
			t.Errorf("%s holds what looks like a real secret (%.10s…)", f, s)
		}
	}
}
