package httpapi

import (
	"regexp"
	"strings"
	"testing"
)

// validRequestID accepts exactly what ^[A-Za-z0-9._:-]{1,128}$ matches.
func TestValidRequestID(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	ids := []string{"", "a", "req-1.2:3_x", strings.Repeat("a", 128), strings.Repeat("a", 129), "a b", "a/b", "é", "id\n", "<script>"}
	for _, id := range ids {
		if got, want := validRequestID(id), pattern.MatchString(id); got != want {
			t.Errorf("validRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}
