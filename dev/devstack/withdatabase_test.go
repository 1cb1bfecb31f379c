package devstack

import "testing"

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ base, name, want string }{
		{"postgres://keybuzz:pw@127.0.0.1:55432/keybuzz?sslmode=disable", "t_1", "postgres://keybuzz:pw@127.0.0.1:55432/t_1?sslmode=disable"},
		{"postgres://127.0.0.1:5432", "bench_x", "postgres://127.0.0.1:5432/bench_x"},
		{"::not a url", "x", "::not a url"},
	} {
		if got := WithDatabase(tc.base, tc.name); got != tc.want {
			t.Errorf("WithDatabase(%q, %q) = %q, want %q", tc.base, tc.name, got, tc.want)
		}
	}
}
