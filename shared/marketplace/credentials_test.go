package marketplace

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestValidTenantID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"tenant-1", true},
		{"T_9", true},
		{"a", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"-tenant", false},
		{"_tenant", false},
		{"tenant/../x", false},
		{"ten ant", false},
		{"ténant", false},
		{"tenant\n", false},
	}
	for _, tt := range tests {
		if got := ValidTenantID(tt.id); got != tt.want {
			t.Errorf("ValidTenantID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
	// The same set as the pattern it replaces.
	pattern := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)
	const alphabet = "aZ09-_/. é\x00"
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(132))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if id := string(b); ValidTenantID(id) != pattern.MatchString(id) {
			t.Fatalf("ValidTenantID(%q) = %v, the pattern says %v", id, ValidTenantID(id), pattern.MatchString(id))
		}
	}
}
