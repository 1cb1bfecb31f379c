package cfn

import (
	"reflect"
	"slices"
	"testing"
)

func TestValues(t *testing.T) {
	cases := []struct {
		src      string
		ref      string
		getAtt   []string
		number   float64
		isNumber bool
	}{
		{src: `!Ref Queue`, ref: "Queue"},
		{src: `!GetAtt Queue.Arn`, getAtt: []string{"Queue", "Arn"}},
		{src: `!GetAtt [Queue, QueueName]`, getAtt: []string{"Queue", "QueueName"}},
		{src: `120`, number: 120, isNumber: true},
		{src: `"120"`, number: 120, isNumber: true},
		{src: `twelve`},
		{src: `{Ref: Queue, Other: x}`}, // two keys: not a Ref
	}
	for _, tc := range cases {
		v := expr(t, tc.src)
		ref, ok := AsRef(v)
		if ref != tc.ref || ok != (tc.ref != "") {
			t.Errorf("AsRef(%s) = %q, %v; want %q", tc.src, ref, ok, tc.ref)
		}
		if tc.ref != "" && (!IsRefTo(v, tc.ref) || IsRefTo(v, tc.ref+"x")) {
			t.Errorf("IsRefTo(%s) is wrong", tc.src)
		}
		if got := AsGetAtt(v); !slices.Equal(got, tc.getAtt) {
			t.Errorf("AsGetAtt(%s) = %v, want %v", tc.src, got, tc.getAtt)
		}
		if n, ok := AsNumber(v); n != tc.number || ok != tc.isNumber {
			t.Errorf("AsNumber(%s) = %v, %v; want %v, %v", tc.src, n, ok, tc.number, tc.isNumber)
		}
	}
}

func TestDigAndWalk(t *testing.T) {
	v := expr(t, `{a: {b: [x, {c: y}]}}`)
	if got := Dig(v, "a", "b"); !reflect.DeepEqual(got, []any{"x", map[string]any{"c": "y"}}) {
		t.Errorf("Dig(a, b) = %v", got)
	}
	if got := Dig(v, "a", "missing", "deeper"); got != nil {
		t.Errorf("Dig on a missing key = %v, want nil", got)
	}
	if got := AsList("one"); !reflect.DeepEqual(got, []any{"one"}) {
		t.Errorf("AsList(one) = %v", got)
	}
	seen := map[string]string{}
	WalkStrings(v, "", func(where, s string) { seen[where+"="+s] = s })
	want := []string{".a.b=b", ".a.b[0]=x", ".a.b[1].c=c", ".a.b[1].c=y", ".a=a"}
	got := make([]string, 0, len(seen))
	for k := range seen {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("WalkStrings saw %v, want %v", got, want)
	}
}
