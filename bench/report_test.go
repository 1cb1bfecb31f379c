package main

import (
	"strings"
	"testing"
)

func TestMergeRuns(t *testing.T) {
	run := func(v, r, thr float64) []Result {
		return []Result{{
			Name: "x", Value: v, Unit: "u", Goal: "g",
			Baselines: map[string]float64{"base": 10, "throttled_429": thr}, Ratios: map[string]float64{"base": r},
			checks:  []check{atLeast("ratio:base", 0.8), inEvery(atMost("baseline:throttled_429", 0))},
			explain: func(m Result) string { return "bound by the base" },
		}, {Name: "report", Value: v, Unit: "u", Goal: "report only"}}
	}
	tests := []struct {
		name      string
		runs      [][]Result
		wantValue float64
		wantRatio float64
		wantLow   float64
		wantHigh  float64
		wantMet   bool
	}{
		{"median meets though one run misses", [][]Result{run(9, 0.9, 0), run(7, 0.7, 0), run(8, 0.85, 0)}, 8, 0.85, 0.7, 0.9, true},
		{"median misses though one run meets", [][]Result{run(9, 0.9, 0), run(7, 0.7, 0), run(7.5, 0.75, 0)}, 7.5, 0.75, 0.7, 0.9, false},
		{"a 429 in any run misses", [][]Result{run(9, 0.9, 0), run(9, 0.9, 1), run(9, 0.9, 0)}, 9, 0.9, 0.9, 0.9, false},
		{"two runs: the mean of the middle two", [][]Result{run(8, 0.8, 0), run(9, 1, 0)}, 8.5, 0.9, 0.8, 1, true},
		{"one run", [][]Result{run(5, 0.5, 0)}, 5, 0.5, 0.5, 0.5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeRuns(tt.runs)
			if len(got) != 2 || got[0].Name != "x" || got[1].Name != "report" {
				t.Fatalf("merged %+v", got)
			}
			x := got[0]
			if x.Value != tt.wantValue || x.Ratios["base"] != tt.wantRatio || x.Runs != len(tt.runs) {
				t.Errorf("value %v ratio %v runs %d; want %v %v %d", x.Value, x.Ratios["base"], x.Runs, tt.wantValue, tt.wantRatio, len(tt.runs))
			}
			if s := x.RatioSpread["base"]; s != [2]float64{tt.wantLow, tt.wantHigh} {
				t.Errorf("ratio spread %v, want [%v %v]", s, tt.wantLow, tt.wantHigh)
			}
			if x.Met != tt.wantMet {
				t.Errorf("met %v, want %v", x.Met, tt.wantMet)
			}
			if (x.Bound != "") == x.Met {
				t.Errorf("bound %q with met %v", x.Bound, x.Met)
			}
			if !got[1].Met || got[1].Bound != "" {
				t.Errorf("report-only row: met %v bound %q", got[1].Met, got[1].Bound)
			}
		})
	}
}

func TestReportMarkdown(t *testing.T) {
	r := &report{Scale: "small", Runs: 3, Commit: "abc123", Dirty: true, Sections: []section{{
		Title: "S", Results: mergeRuns([][]Result{{{Name: "m", Value: 1, Unit: "u", Goal: "≥ 2", checks: []check{atLeast("value", 2)},
			explain: func(Result) string { return "because of X" }}}}),
	}}}
	md := r.markdown()
	for _, want := range []string{"`abc123` with uncommitted changes (dirty)", "## Goals", "| m | 1 |", "**m misses its goal (≥ 2).** because of X", "## 1. S"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
