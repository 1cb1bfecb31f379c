package devrand

import (
	"regexp"
	"testing"
)

func TestHex(t *testing.T) {
	for _, n := range []int{0, 1, 4, 32} {
		got := Hex(n)
		if !regexp.MustCompile(`^[0-9a-f]*$`).MatchString(got) || len(got) != 2*n {
			t.Errorf("Hex(%d) = %q, want %d hex digits", n, got, 2*n)
		}
	}
	seen := map[string]bool{}
	for range 1000 {
		h := Hex(8)
		if seen[h] {
			t.Fatalf("Hex(8) repeated %s", h)
		}
		seen[h] = true
	}
}
