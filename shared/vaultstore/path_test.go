package vaultstore

import (
	"strings"
	"testing"
)

func TestTenantPath(t *testing.T) {
	tests := []struct {
		id, want string
	}{
		{"tenant-1", "keybuzz/tenants/tenant-1/amazon"},
		{"T_9", "keybuzz/tenants/T_9/amazon"},
		{strings.Repeat("a", 128), "keybuzz/tenants/" + strings.Repeat("a", 128) + "/amazon"},
		{"", ""}, {"../ai", ""}, {"a/b", ""}, {"..", ""}, {"-lead", ""}, {"a b", ""}, {"a%2f", ""},
		{"tenant\n", ""}, {"ténant", ""}, {strings.Repeat("a", 129), ""}, {"a?x=1", ""}, {"a#b", ""},
	}
	for _, tt := range tests {
		got, err := TenantPath(tt.id)
		if got != tt.want || (tt.want == "") != (err != nil) {
			t.Errorf("TenantPath(%q) = %q, %v; want %q", tt.id, got, err, tt.want)
		}
	}
}

// FuzzTenantPath: whatever the id, a path is either refused or exactly one
// segment under keybuzz/tenants/ with nothing Vault or a URL would interpret.
func FuzzTenantPath(f *testing.F) {
	for _, s := range []string{"tenant-1", "../x", "a/b", "%2e%2e", "a\x00b", "", strings.Repeat("z", 200), "sys/policy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		p, err := TenantPath(id)
		if err != nil {
			return
		}
		seg := strings.TrimSuffix(strings.TrimPrefix(p, "keybuzz/tenants/"), "/amazon")
		if seg != id || p != "keybuzz/tenants/"+id+"/amazon" {
			t.Fatalf("path %q for %q", p, id)
		}
		if strings.ContainsAny(seg, "/.%?#\\ \t\r\n\x00") || seg == "" || len(seg) > 128 {
			t.Fatalf("unsafe segment %q accepted", seg)
		}
	})
}
