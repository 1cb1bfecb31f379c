package cfn

import (
	"fmt"
	"strconv"
)

// These read the long-form values ToJSON produces: maps, lists, strings,
// float64 numbers and booleans.

// Dig follows a path of map keys; a missing key gives nil.
func Dig(v any, path ...string) any {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

// AsList is v if it is a list, else a list of v (CloudFormation accepts a
// single value where it accepts a list, in Action and elsewhere).
func AsList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// AsRef is the name a {"Ref": name} refers to.
func AsRef(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	s, ok := m["Ref"].(string)
	return s, ok
}

// IsRefTo says whether v is {"Ref": name}.
func IsRefTo(v any, name string) bool {
	r, ok := AsRef(v)
	return ok && r == name
}

// AsGetAtt is the [resource, attribute] of a {"Fn::GetAtt": ...}, or nil.
func AsGetAtt(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for _, a := range AsList(m["Fn::GetAtt"]) {
		s, ok := a.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// AsNumber reads a literal number, written as a number or as a string.
func AsNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case string:
		f, err := strconv.ParseFloat(n, 64)
		return f, err == nil
	}
	return 0, false
}

// WalkStrings calls f with every string in v, map keys included, and where
// it is (".Resources.Queue.Type", "[2]").
func WalkStrings(v any, where string, f func(where, s string)) {
	switch v := v.(type) {
	case string:
		f(where, v)
	case []any:
		for i, c := range v {
			WalkStrings(c, fmt.Sprintf("%s[%d]", where, i), f)
		}
	case map[string]any:
		for k, c := range v {
			f(where+"."+k, k)
			WalkStrings(c, where+"."+k, f)
		}
	}
}
