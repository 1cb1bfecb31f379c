package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one measure, as bench/results.json stores it. With several
// runs, Value, Baselines and Ratios are the medians over the runs, and the
// spreads their minimum and maximum.
type Result struct {
	Name      string             `json:"name"`
	Value     float64            `json:"value"`
	Unit      string             `json:"unit"`
	Baselines map[string]float64 `json:"baselines"`
	Ratios    map[string]float64 `json:"ratios"`
	Goal      string             `json:"goal"`
	// Met is whether the goal holds on the medians (and, for a check marked
	// every, in every run); rows without a goal ("report only") are true.
	Met bool `json:"met"`
	// Runs is how many runs measured it.
	Runs int `json:"runs"`
	// ValueSpread and RatioSpread are [min, max] over the runs.
	ValueSpread [2]float64            `json:"value_spread"`
	RatioSpread map[string][2]float64 `json:"ratio_spread"`
	// Bound says what bounds a figure that misses its goal, from the
	// measurement (empty when it is met).
	Bound string `json:"bound,omitempty"`
	// Miss says what result would miss the goal: the checks' own limits
	// (missText), then what that would mean; empty for a report-only row.
	Miss string `json:"miss,omitempty"`

	checks []check
	// miss is what a miss would mean, in words (optional).
	miss string
	// explain writes Bound from the merged result (nil: nothing to say).
	explain func(r Result) string
}

// check is one condition of a goal: the value, a ratio ("ratio:key") or a
// baseline ("baseline:key") at least or at most limit.
type check struct {
	of      string
	atLeast bool
	limit   float64
	// every: it must hold in every run, not just on the median (counts of
	// failures and 429s).
	every bool
	// strict: the limit itself misses (below, not at most).
	strict bool
}

func atLeast(of string, limit float64) check { return check{of: of, atLeast: true, limit: limit} }
func atMost(of string, limit float64) check  { return check{of: of, limit: limit} }
func inEvery(c check) check                  { c.every = true; return c }
func below(of string, limit float64) check   { return check{of: of, limit: limit, strict: true} }

func (c check) holds(r Result) bool {
	var v float64
	var ok bool
	switch {
	case c.of == "value":
		v, ok = r.Value, true
	case strings.HasPrefix(c.of, "ratio:"):
		v, ok = r.Ratios[strings.TrimPrefix(c.of, "ratio:")]
	case strings.HasPrefix(c.of, "baseline:"):
		v, ok = r.Baselines[strings.TrimPrefix(c.of, "baseline:")]
	}
	if !ok || math.IsNaN(v) {
		return false
	}
	switch {
	case c.atLeast:
		return v >= c.limit
	case c.strict:
		return v < c.limit
	}
	return v <= c.limit
}

// missText says, from the checks alone, which results miss the goal: the
// opposite of each check, "or" between them (every check must hold).
func missText(checks []check, meaning string) string {
	if len(checks) == 0 {
		return ""
	}
	parts := make([]string, len(checks))
	for i, c := range checks {
		of := c.of
		switch {
		case of == "value":
			of = "the value"
		case strings.HasPrefix(of, "ratio:"):
			of = "the ratio to " + strings.TrimPrefix(of, "ratio:")
		case strings.HasPrefix(of, "baseline:"):
			of = strings.TrimPrefix(of, "baseline:")
		}
		op := "above"
		switch {
		case c.atLeast:
			op = "below"
		case c.strict:
			op = "at or above"
		}
		parts[i] = fmt.Sprintf("%s %s %s", of, op, num(c.limit))
		if c.every {
			parts[i] += " in any run"
		} else {
			parts[i] += " (median)"
		}
	}
	out := strings.Join(parts, ", or ")
	if meaning != "" {
		out += ": " + meaning
	}
	return out
}

// judge sets Met from the checks on r itself (one run), and Miss.
func (r Result) judge() Result {
	r.Miss = missText(r.checks, r.miss)
	r.Met = true
	for _, c := range r.checks {
		r.Met = r.Met && c.holds(r)
	}
	return r
}

// mergeRuns combines the results of several runs by name, in the order
// they first appear: medians of the value, each baseline and each ratio,
// the spreads, and Met judged on the medians (checks marked every on each
// run). Bound is written by the last run's explain on the merged figures.
func mergeRuns(runs [][]Result) []Result {
	var order []string
	byName := map[string][]Result{}
	for _, run := range runs {
		for _, r := range run {
			if _, ok := byName[r.Name]; !ok {
				order = append(order, r.Name)
			}
			byName[r.Name] = append(byName[r.Name], r)
		}
	}
	out := make([]Result, 0, len(order))
	for _, name := range order {
		rs := byName[name]
		last := rs[len(rs)-1]
		m := Result{Name: name, Unit: last.Unit, Goal: last.Goal, Runs: len(rs), checks: last.checks, explain: last.explain,
			miss: last.miss, Miss: missText(last.checks, last.miss),
			Baselines: map[string]float64{}, Ratios: map[string]float64{}, RatioSpread: map[string][2]float64{}}
		m.Value, m.ValueSpread = medianSpread(rs, func(r Result) (float64, bool) { return r.Value, true })
		for k := range last.Baselines {
			m.Baselines[k], _ = medianSpread(rs, func(r Result) (float64, bool) { v, ok := r.Baselines[k]; return v, ok })
		}
		for k := range last.Ratios {
			m.Ratios[k], m.RatioSpread[k] = medianSpread(rs, func(r Result) (float64, bool) { v, ok := r.Ratios[k]; return v, ok })
		}
		m.Met = true
		for _, c := range m.checks {
			if c.every {
				for _, r := range rs {
					m.Met = m.Met && c.holds(r)
				}
			} else {
				m.Met = m.Met && c.holds(m)
			}
		}
		if !m.Met && m.explain != nil {
			m.Bound = m.explain(m)
		}
		out = append(out, m)
	}
	return out
}

// medianSpread is the median and [min, max] of what get returns for each
// run that has it.
func medianSpread(rs []Result, get func(Result) (float64, bool)) (float64, [2]float64) {
	var vs []float64
	for _, r := range rs {
		if v, ok := get(r); ok {
			vs = append(vs, v)
		}
	}
	return median(vs), spread(vs)
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return round3((s[n/2-1] + s[n/2]) / 2)
}

func spread(vs []float64) [2]float64 {
	if len(vs) == 0 {
		return [2]float64{}
	}
	return [2]float64{slices.Min(vs), slices.Max(vs)}
}

// report is one invocation: every benchmark's runs, merged.
type report struct {
	Scale string
	Runs  int
	// FanoutTenants is the fan-out benchmark's size (-fanout-tenants or the
	// scale's).
	FanoutTenants int
	Command       string
	Commit        string // git rev-parse HEAD
	Dirty         bool   // the work tree had uncommitted changes
	Cores         int
	GoVersion     string
	GOOS          string
	GOARCH        string
	Date          time.Time
	Sections      []section
}

func (r *report) results() []Result {
	var out []Result
	for _, s := range r.Sections {
		out = append(out, s.Results...)
	}
	return out
}

func (r *report) json() ([]byte, error) {
	res := r.results()
	if res == nil {
		res = []Result{}
	}
	for i := range res {
		if res[i].Baselines == nil {
			res[i].Baselines = map[string]float64{}
		}
		if res[i].Ratios == nil {
			res[i].Ratios = map[string]float64{}
		}
		if res[i].RatioSpread == nil {
			res[i].RatioSpread = map[string][2]float64{}
		}
	}
	doc := struct {
		Commit  string    `json:"commit"`
		Dirty   bool      `json:"dirty"`
		Date    time.Time `json:"date"`
		Scale   string    `json:"scale"`
		Runs    int       `json:"runs"`
		Fanout  int       `json:"fanout_tenants"`
		Results []Result  `json:"results"`
	}{r.Commit, r.Dirty, r.Date, r.Scale, r.Runs, r.FanoutTenants, res}
	b, err := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n'), err
}

// table renders the results for a terminal.
func (r *report) table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "name\tmedian\tspread\tunit\tratios (median, min–max)\tgoal\tmet")
	for _, x := range r.results() {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.Name, num(x.Value), spreadText(x.ValueSpread, x.Runs), x.Unit, ratiosText(x), x.Goal, yesNo(x.Met))
	}
	w.Flush()
	return b.String()
}

func (r *report) commitText() string {
	if r.Commit == "" {
		return "unknown (not a git work tree)"
	}
	if r.Dirty {
		return "`" + r.Commit + "` with uncommitted changes (dirty)"
	}
	return "`" + r.Commit + "` (clean)"
}

func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Generated by `bench/`; do not edit by hand, rerun `make bench`.\n")
	fmt.Fprintf(&b, "Each benchmark ran %d time(s), each run measuring its baselines and the\n", r.Runs)
	b.WriteString("real code one after the other on the same machine, in alternating order\n")
	b.WriteString("(odd runs the baselines first, even runs the real code first); a figure\n")
	b.WriteString("is the median over the runs, with its spread (min–max), and a goal is met\n")
	b.WriteString("when the median meets it (checks marked \"in any run\" must hold in every\n")
	b.WriteString("run). The goals table says, for each goal, which result would miss it.\n\n")
	fmt.Fprintf(&b, "| | |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| commit | %s |\n", r.commitText())
	fmt.Fprintf(&b, "| date | %s |\n", r.Date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "| command | `%s` |\n", r.Command)
	fmt.Fprintf(&b, "| scale | %s, %d run(s); fan-out of %d tenants |\n", r.Scale, r.Runs, r.FanoutTenants)
	fmt.Fprintf(&b, "| machine | %d cores (runtime.NumCPU), %s/%s |\n", r.Cores, r.GOOS, r.GOARCH)
	fmt.Fprintf(&b, "| Go | %s |\n\n", r.GoVersion)
	if goals := r.goalsTable(); goals != "" {
		b.WriteString("## Goals\n\n")
		b.WriteString(goals)
	}
	b.WriteString("\n## All measures\n\n")
	b.WriteString(r.markdownTable())
	b.WriteString("\nRatios are value / baseline (for latencies and times too, so lower is better there).\n")
	for i, s := range r.Sections {
		fmt.Fprintf(&b, "\n## %d. %s\n\n", i+1, s.Title)
		for _, x := range s.Results {
			if x.Bound != "" {
				fmt.Fprintf(&b, "**%s misses its goal (%s).** %s\n\n", x.Name, x.Goal, strings.TrimSpace(x.Bound))
			}
		}
		for _, n := range s.Notes {
			b.WriteString(strings.TrimRight(n, "\n"))
			b.WriteString("\n\n")
		}
	}
	return b.String()
}

// goalsTable lists the measures that have a goal.
func (r *report) goalsTable() string {
	var b strings.Builder
	for _, x := range r.results() {
		if len(x.checks) == 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("| measure | median | spread | unit | ratios (median, min–max) | goal | missed when | met |\n")
			b.WriteString("| --- | ---: | --- | --- | --- | --- | --- | --- |\n")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", x.Name, num(x.Value), spreadText(x.ValueSpread, x.Runs), x.Unit, ratiosText(x), x.Goal, x.Miss, yesNo(x.Met))
	}
	return b.String()
}

func (r *report) markdownTable() string {
	var b strings.Builder
	b.WriteString("| measure | median | spread | unit | baselines (median) | ratios (median, min–max) | goal | met |\n")
	b.WriteString("| --- | ---: | --- | --- | --- | --- | --- | --- |\n")
	for _, x := range r.results() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", x.Name, num(x.Value), spreadText(x.ValueSpread, x.Runs), x.Unit,
			kv(x.Baselines), ratiosText(x), x.Goal, yesNo(x.Met))
	}
	return b.String()
}

func spreadText(s [2]float64, runs int) string {
	if runs <= 1 {
		return "—"
	}
	return num(s[0]) + "–" + num(s[1])
}

func ratiosText(x Result) string {
	keys := slices.Sorted(maps.Keys(x.Ratios))
	if len(keys) == 0 {
		return "—"
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + num(x.Ratios[k])
		if s, ok := x.RatioSpread[k]; ok && x.Runs > 1 {
			parts[i] += " (" + num(s[0]) + "–" + num(s[1]) + ")"
		}
	}
	return strings.Join(parts, ", ")
}

func kv(m map[string]float64) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + num(m[k])
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// num prints a figure with three significant digits (integers in full).
func num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case v == math.Trunc(v) && math.Abs(v) < 1e12:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round3(a / b)
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// rate is n per second over d.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

// codeBlock fences text as markdown.
func codeBlock(text string) string {
	return "```\n" + strings.TrimRight(text, "\n") + "\n```"
}
