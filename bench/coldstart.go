package main

import (
	"bytes"
	"cmp"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/rie"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/boot"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// maxInitRatio is the cold-start goal: a function's init phase at most
// this many times hello-world's.
const maxInitRatio = 3.0

// maxBootstrapMB is the size goal of a bootstrap, in MB (10^6 bytes).
const maxBootstrapMB = 15.0

// helloPkg is the hello-world aws-lambda-go function dev/rie tests with.
const helloPkg = "./dev/rie/testdata/hello"

// benchColdStart builds hello-world and each function's bootstrap as
// `make build` does, for the deployed architecture (LAMBDA_ARCH, whose
// sizes count) and for this machine's (which runs here), and cold-starts
// the host binaries under aws-lambda-rie with the function's event from
// events/: the init phase the emulator reports (the function's own start)
// against hello-world's, and the whole to the first answer, in the same
// run.
func benchColdStart(ctx context.Context, e *env) (section, error) {
	sec := section{Title: "Cold start and bootstrap size"}
	sc := e.sc
	repo, err := devstack.RepoRoot()
	if err != nil {
		return sec, err
	}
	functions := sc.Functions
	if functions == nil {
		if functions, err = makefileFunctions(filepath.Join(repo, "Makefile")); err != nil {
			return sec, err
		}
	}
	if e.buildDir == "" {
		if e.buildDir, err = os.MkdirTemp("", "keybuzz-bench-coldstart-"); err != nil {
			return sec, err
		}
		e.finally = append(e.finally, func() { os.RemoveAll(e.buildDir) })
	}
	dir := e.buildDir

	dbURL, err := e.freshDB(ctx, "coldstart")
	if err != nil {
		return sec, err
	}
	queueURL, err := e.freshQueue(ctx, "coldstart")
	if err != nil {
		return sec, err
	}
	fnEnv := []string{"DATABASE_URL=" + dbURL, "POLL_QUEUE_URL=" + queueURL}
	// The reply routes' events name a ticket: one made the real way (a
	// buyer's relay mail through the mail intake) in this database, its
	// tenant's token, and an outbound queue of the run's own, so their
	// cold start reaches the route's logic (202, 200), not a 404.
	var ticket *replyTenant
	if slices.Contains(functions, "sendreply") || slices.Contains(functions, "outbound") {
		pool, err := openTracedPool(ctx, dbURL, 2, nil)
		if err != nil {
			return sec, err
		}
		e.cleanup = append(e.cleanup, pool.Close)
		store := postgres.New(pool)
		pools.Store(store, pool)
		tenants, _, err := e.replyTickets(ctx, "coldstart", store, 1)
		if err != nil {
			return sec, fmt.Errorf("the reply routes' ticket: %w", err)
		}
		ticket = &tenants[0]
		jobsURL, err := e.freshQueue(ctx, "coldstart-replies")
		if err != nil {
			return sec, err
		}
		fnEnv = append(fnEnv, "REPLY_QUEUE_URL="+jobsURL)
	}

	arch, err := makefileVar(filepath.Join(repo, "Makefile"), "LAMBDA_ARCH")
	if err != nil {
		return sec, err
	}
	// build builds a binary once for all runs (the same source gives the
	// same file), for goarch; only the host's architecture runs here.
	build := func(name, pkg, goarch string) (string, float64, error) {
		key := name + "/" + goarch
		if b, ok := e.builds[key]; ok {
			return b.path, b.mb, nil
		}
		out := filepath.Join(dir, goarch, name, "bootstrap")
		t0 := time.Now()
		if err := rie.BuildArch(ctx, pkg, out, goarch); err != nil {
			return "", 0, err
		}
		fi, err := os.Stat(out)
		if err != nil {
			return "", 0, err
		}
		e.logf("coldstart: built %s for %s (%.1f MB) in %s", name, goarch, float64(fi.Size())/1e6, time.Since(t0).Round(time.Millisecond))
		b := built{path: out, mb: round3(float64(fi.Size()) / 1e6)}
		e.builds[key] = b
		return b.path, b.mb, nil
	}
	// coldStart starts the bootstrap under the emulator and invokes it
	// once, runs times, and keeps the medians of two times: the init phase
	// the emulator reports (rie.InitDuration: the bootstrap's process
	// start to its first call for an invocation; the emulator's own
	// start-up is not in it) and the whole, from rie.Start to the end of
	// the first invocation.
	coldStart := func(name, bootstrap string, event []byte) (cold, init time.Duration, first []byte, err error) {
		var totals, inits []time.Duration
		for i := 0; i < sc.ColdRuns; i++ {
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			t0 := time.Now()
			in, err := rie.Start(cctx, bootstrap, append(fnEnv, "AWS_LAMBDA_FUNCTION_NAME="+name), rie.WithLogLevel("info"))
			if err != nil {
				cancel()
				return 0, 0, nil, err
			}
			body, err := in.Invoke(cctx, event)
			d := time.Since(t0)
			logs := in.Logs()
			in.Close()
			cancel()
			if err == nil && bytes.Contains(body, []byte(`"errorType"`)) {
				err = fmt.Errorf("function error: %s", body)
			}
			if err != nil {
				return 0, 0, nil, fmt.Errorf("%s: %w\n%s", name, err, tail(logs, 2000))
			}
			id, ok := rie.InitDuration(logs)
			if !ok {
				return 0, 0, nil, fmt.Errorf("%s: the emulator's INIT REPORT is not in its logs:\n%s", name, tail(logs, 2000))
			}
			if first == nil {
				first = body
			}
			totals, inits = append(totals, d), append(inits, id)
		}
		slices.Sort(totals)
		slices.Sort(inits)
		return totals[len(totals)/2], inits[len(inits)/2], first, nil
	}

	helloBin, helloMB, err := build("hello", helloPkg, runtime.GOARCH)
	if err != nil {
		return sec, err
	}
	_, helloArchMB, err := build("hello", helloPkg, arch)
	if err != nil {
		return sec, err
	}
	var helloCold, helloInitD time.Duration
	measureHello := func() (err error) {
		helloCold, helloInitD, _, err = coldStart("hello", helloBin, []byte(`{"name":"bench"}`))
		if err == nil {
			e.logf("coldstart: hello %.1f ms, init %.2f ms", ms(helloCold), ms(helloInitD))
		}
		return err
	}

	token, err := auth.Issue(secret.Value(os.Getenv("AUTH_JWT_HS256_SECRET")), os.Getenv("AUTH_JWT_ISSUER"),
		os.Getenv("AUTH_JWT_AUDIENCE"), os.Getenv("AUTH_TENANT_CLAIM"), "tenant-demo-0001", time.Hour, time.Now())
	if err != nil {
		return sec, err
	}
	var sizes, inits, failures []string
	helloInit, err := initTrace(ctx, "hello", helloBin, []byte(`{"name":"bench"}`), fnEnv)
	if err != nil {
		return sec, err
	}
	inits = append(inits, helloInit.line)
	type fnCold struct {
		name       string
		cold, init time.Duration
		trace      initSummary
		mb, hostMB float64
		failed     bool
	}
	var measuredFns []fnCold
	measureFunctions := func() error {
		for _, fn := range functions {
			bin, hostMB, err := build(fn, "./functions/"+fn, runtime.GOARCH)
			if err != nil {
				return err
			}
			_, mb, err := build(fn, "./functions/"+fn, arch)
			if err != nil {
				return err
			}
			f := fnCold{name: fn, mb: mb, hostMB: hostMB}
			event, err := functionEvent(repo, fn, token, ticket)
			var answer []byte
			if err == nil {
				f.cold, f.init, answer, err = coldStart(fn, bin, event)
			}
			if err != nil {
				// One function's failure is reported, the others still measured.
				e.logf("coldstart: %s failed: %v", fn, err)
				failures = append(failures, fmt.Sprintf("**The cold start of %s failed:** `%s`", fn, oneLine(err)))
				f.failed = true
				measuredFns = append(measuredFns, f)
				continue
			}
			e.logf("coldstart: %s %.1f ms, init %.2f ms, answer %s", fn, ms(f.cold), ms(f.init), tail(string(answer), 160))
			if err := routeReached(answer); err != nil {
				e.logf("coldstart: %s: %v", fn, err)
				failures = append(failures, fmt.Sprintf("**The cold start of %s did not reach its route's logic:** `%s`", fn, oneLine(err)))
			}
			if f.trace, err = initTrace(ctx, fn, bin, event, fnEnv); err != nil {
				return err
			}
			measuredFns = append(measuredFns, f)
		}
		return nil
	}
	// hello-world is the baseline: measured before the functions in odd
	// runs, after them in even runs.
	order, err := e.inOrder(measureHello, measureFunctions)
	if err != nil {
		return sec, err
	}
	measured := 0
	for _, f := range measuredFns {
		sizes = append(sizes, fmt.Sprintf("%s %.1f MB (%s %.1f MB)", f.name, f.mb, runtime.GOARCH, f.hostMB))
		sec.Results = append(sec.Results, sizeResult(ctx, e, dir, f.name, arch, f.mb, helloArchMB))
		if arch != runtime.GOARCH {
			sec.Results = append(sec.Results, Result{Name: "size_" + f.name + "_" + runtime.GOARCH, Value: f.hostMB, Unit: "MB",
				Baselines: map[string]float64{"hello_world": helloMB, "limit": maxBootstrapMB},
				Ratios:    map[string]float64{"hello_world": ratio(f.hostMB, helloMB), "limit": ratio(f.hostMB, maxBootstrapMB)},
				Goal:      "report only (the architecture cold starts are measured on; " + arch + " is deployed)"})
		}
		if f.failed {
			continue
		}
		measured++
		inits = append(inits, f.trace.line)
		it := f.trace
		sec.Results = append(sec.Results,
			Result{Name: "coldstart_" + f.name, Value: ms(f.init), Unit: "ms (init phase)",
				Baselines: map[string]float64{"hello_world": ms(helloInitD)}, Ratios: map[string]float64{"hello_world": ratio(ms(f.init), ms(helloInitD))},
				Goal:   fmt.Sprintf("≤ %s × hello_world's init phase", num(maxInitRatio)),
				checks: []check{atMost("ratio:hello_world", maxInitRatio)},
				miss:   "the function's own start (its process, package initialisation and main up to lambda.Start, as the emulator's INIT REPORT times it) costs more than " + num(maxInitRatio) + " × hello-world's",
				explain: func(m Result) string {
					return fmt.Sprintf(`Its init phase took %.2f × hello-world's (median). Package initialisation (GODEBUG=inittrace=1, one cold
start of the last run): %s; against %s. %s The init steps of main and the
first database round trips are timed below.`, m.Ratios["hello_world"], strings.TrimPrefix(it.line, "- "), strings.TrimPrefix(helloInit.line, "- "),
						it.remainder(helloInit))
				}},
			Result{Name: "coldstart_" + f.name + "_total", Value: ms(f.cold), Unit: "ms",
				Baselines: map[string]float64{"hello_world": ms(helloCold)}, Ratios: map[string]float64{"hello_world": ratio(ms(f.cold), ms(helloCold))},
				Goal: "report only (the emulator's start-up is in both)"},
		)
	}
	dirs, err := functionDirs(filepath.Join(repo, "functions"))
	if err != nil {
		return sec, err
	}
	makefileFns, err := makefileFunctions(filepath.Join(repo, "Makefile"))
	if err != nil {
		return sec, err
	}
	var unlisted []string
	for _, d := range dirs {
		if !slices.Contains(makefileFns, d) {
			unlisted = append(unlisted, d)
		}
	}
	coverage := fmt.Sprintf("Functions measured: %d of the %d listed (%s); the Makefile's FUNCTIONS has %d, functions/ has %d with a main.go",
		measured, len(functions), strings.Join(functions, ", "), len(makefileFns), len(dirs))
	if sc.Functions != nil {
		coverage += " (this scale lists its own)"
	}
	if len(unlisted) > 0 {
		coverage += "; not in FUNCTIONS, so neither built by `make build` nor measured here: " + strings.Join(unlisted, ", ")
	}
	sec.Results = append(sec.Results, Result{
		Name: "coldstart_functions_measured", Value: float64(measured), Unit: "functions",
		Baselines: map[string]float64{"listed": float64(len(functions)), "unlisted_dirs": float64(len(unlisted))},
		Ratios:    map[string]float64{"listed": ratio(float64(measured), float64(len(functions)))},
		Goal:      "every function listed has a cold start and a size, and every functions/ main is in FUNCTIONS",
		checks:    []check{inEvery(atLeast("ratio:listed", 1)), inEvery(atMost("baseline:unlisted_dirs", 0))},
		miss:      "a listed function fails to start or answer, or a functions/ main is missing from FUNCTIONS (not built, not measured)",
		explain:   func(Result) string { return coverage + "." },
	})
	settings, err := buildSettings(helloBin)
	if err != nil {
		return sec, err
	}
	sec.Notes = append(sec.Notes, fmt.Sprintf(`Each function is built twice as `+"`make build`"+` builds it (rie.BuildArch: static
Linux, lambda.norpc, -trimpath, -s -w): for LAMBDA_ARCH %s (the Makefile's,
what the template deploys), whose size the goal judges, and for this
machine's %s, which runs here; build settings of the host binaries, read from
their build information (debug/buildinfo): %s; sizes in MB of 10^6 bytes.
Sizes: %s; hello-world %.1f MB (%s %.1f MB).

Cold start: each binary under aws-lambda-rie at log level info, invoked once
with its event from events/ (the API events get a freshly minted Bearer
token), %d time(s) per binary in this run, medians kept. The goal compares
the **init phase** the emulator reports (INIT REPORT: from starting the
bootstrap's process, which the emulator does on the first invoke, to the
bootstrap's first call for an invocation; what Lambda reports as Init
Duration): the function's own start, without the emulator's start-up,
against hello-world's (%s). The whole, from rie.Start to the end of the first
invocation, is reported beside it (hello-world %.1f ms, of which init %.2f
ms). Order in this run: %s (odd runs time hello-world first, even runs the
functions first). The functions run with the stack's environment on a
fresh database and queue. %s.

Where a cold start goes, from one more cold start of each binary with
GODEBUG=inittrace=1 (the Go runtime's own account of package initialisation
before main) and the function's first log line:

%s`, arch, runtime.GOARCH, settings, strings.Join(sizes, ", "), helloArchMB, runtime.GOARCH, helloMB,
		sc.ColdRuns, helloPkg, ms(helloCold), ms(helloInitD), order, coverage, strings.Join(inits, "\n")))
	sec.Notes = append(sec.Notes, failures...)
	steps, err := initSteps(ctx, dbURL)
	if err != nil {
		return sec, err
	}
	sec.Notes = append(sec.Notes, "main's own init steps, timed in this process (warm process, so a lower bound of a cold one): "+steps)
	return sec, nil
}

// sizeResult is a bootstrap's size against the goal; one over it says
// which modules its size comes from.
func sizeResult(ctx context.Context, e *env, dir, fn, arch string, mb, helloMB float64) Result {
	r := Result{Name: "size_" + fn, Value: mb, Unit: "MB (" + arch + ")",
		Baselines: map[string]float64{"hello_world": helloMB, "limit": maxBootstrapMB}, Ratios: map[string]float64{"hello_world": ratio(mb, helloMB), "limit": ratio(mb, maxBootstrapMB)},
		Goal: fmt.Sprintf("< %s MB (the deployed %s binary)", num(maxBootstrapMB), arch), checks: []check{below("value", maxBootstrapMB)},
		miss: "the deployed bootstrap reaches the size limit"}
	if mb < maxBootstrapMB {
		return r
	}
	why, err := sizeBreakdown(ctx, dir, fn, "./functions/"+fn, e.builds[fn+"/"+arch].path, arch)
	if err != nil {
		e.logf("coldstart: size breakdown of %s: %v", fn, err)
		why = "Its symbols could not be read: " + oneLine(err)
	}
	r.explain = func(m Result) string {
		return fmt.Sprintf("%s MB (stripped, as deployed) against the %s MB limit. %s", num(m.Value), num(maxBootstrapMB), why)
	}
	return r
}

// buildSettings reads how a binary was built from its build information.
func buildSettings(path string) (string, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("build info of %s: %w", path, err)
	}
	var parts []string
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS", "GOARCH", "CGO_ENABLED", "-tags", "-trimpath", "-ldflags":
			parts = append(parts, s.Key+"="+s.Value)
		}
	}
	return "`" + strings.Join(parts, " ") + "`, " + bi.GoVersion, nil
}

// makefileVar reads a variable's value from the Makefile (`NAME ?= v` or
// `NAME := v`).
func makefileVar(path, name string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		for _, op := range []string{"?=", ":=", "="} {
			if k, v, ok := strings.Cut(line, op); ok && strings.TrimSpace(k) == name {
				return strings.TrimSpace(v), nil
			}
		}
	}
	return "", fmt.Errorf("%s: no %s", path, name)
}

// makefileFunctions reads the FUNCTIONS list of the Makefile (what `make
// build` builds and the template deploys).
func makefileFunctions(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, list, ok := strings.Cut(line, ":=")
		if ok && strings.TrimSpace(name) == "FUNCTIONS" {
			if fns := strings.Fields(list); len(fns) > 0 {
				return fns, nil
			}
		}
	}
	return nil, fmt.Errorf("%s: no FUNCTIONS := line", path)
}

// functionDirs lists the folders of dir that hold a main.go (the
// functions' composition roots).
func functionDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, en := range entries {
		if _, err := os.Stat(filepath.Join(dir, en.Name(), "main.go")); en.IsDir() && err == nil {
			out = append(out, en.Name())
		}
	}
	return out, nil
}

// functionEvent reads events/<fn>.json and swaps in token for the API events'
// Bearer token (the committed ones are signed with the dev secret); with
// ticket, an event naming a ticket (send-reply, outbound) names its ticket
// and carries its tenant's token instead.
func functionEvent(repo, fn, token string, ticket *replyTenant) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(repo, "events", fn+".json"))
	if err != nil {
		return nil, err
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("events/%s.json: %w", fn, err)
	}
	params, _ := ev["pathParameters"].(map[string]any)
	if old, ok := params["ticketId"].(string); ok && ticket != nil {
		token = ticket.token
		params["ticketId"] = ticket.ticket
		if p, ok := ev["rawPath"].(string); ok {
			ev["rawPath"] = strings.Replace(p, "/"+old+"/", "/"+ticket.ticket+"/", 1)
		}
		if rc, ok := ev["requestContext"].(map[string]any); ok {
			if h, ok := rc["http"].(map[string]any); ok {
				if p, ok := h["path"].(string); ok {
					h["path"] = strings.Replace(p, "/"+old+"/", "/"+ticket.ticket+"/", 1)
				}
			}
			// Behind API Gateway's JWT authorizer the function reads the
			// tenant from the authorizer's claims (shared/auth).
			if a, ok := rc["authorizer"].(map[string]any); ok {
				if j, ok := a["jwt"].(map[string]any); ok {
					if c, ok := j["claims"].(map[string]any); ok {
						c[cmp.Or(os.Getenv("AUTH_TENANT_CLAIM"), "tenantId")] = ticket.id
					}
				}
			}
		}
	}
	if h, ok := ev["headers"].(map[string]any); ok {
		if _, ok := h["authorization"]; ok {
			h["authorization"] = "Bearer " + token
		}
	}
	return json.Marshal(ev)
}

// routeReached says whether an API function's first answer (API Gateway's
// payload 2.0 response) came from its route's logic: 2xx, or a 4xx other
// than 401, 403 and 404 (validation). Other events' answers pass.
func routeReached(answer []byte) error {
	var resp struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	if json.Unmarshal(answer, &resp) != nil || resp.StatusCode == 0 {
		return nil
	}
	switch resp.StatusCode {
	case 401, 403, 404:
	default:
		if resp.StatusCode < 500 {
			return nil
		}
	}
	return fmt.Errorf("answered %d %s", resp.StatusCode, tail(resp.Body, 200))
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// initTrace cold-starts bootstrap once with GODEBUG=inittrace=1 and
// summarizes package initialisation: its end, its sum, the costliest
// packages.
func initTrace(ctx context.Context, name, bootstrap string, event []byte, env []string) (initSummary, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t0 := time.Now()
	in, err := rie.Start(cctx, bootstrap, append(slices.Clone(env), "GODEBUG=inittrace=1", "AWS_LAMBDA_FUNCTION_NAME="+name))
	if err != nil {
		return initSummary{}, err
	}
	_, err = in.Invoke(cctx, event)
	total := time.Since(t0)
	time.Sleep(50 * time.Millisecond) // the last log lines
	logs := in.Logs()
	in.Close()
	if err != nil {
		return initSummary{}, fmt.Errorf("%s with inittrace: %w", name, err)
	}
	type pkgInit struct {
		pkg          string
		at, clock    float64
		bytes, alloc int
	}
	// The emulator is a Go program too and inherits GODEBUG: its lines come
	// first; the bootstrap's start at the last "init runtime".
	var inits []pkgInit
	processes := 0
	for _, line := range strings.Split(logs, "\n") {
		var p pkgInit
		// init net/http @1.2 ms, 0.31 ms clock, 12345 bytes, 80 allocs
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "init %s @%f ms, %f ms clock, %d bytes, %d allocs", &p.pkg, &p.at, &p.clock, &p.bytes, &p.alloc); err == nil {
			if p.pkg == "runtime" {
				inits = inits[:0]
				processes++
			}
			inits = append(inits, p)
		}
	}
	if processes < 2 {
		return initSummary{total: total, line: fmt.Sprintf("- %s: inittrace of the bootstrap not found in the logs", name)}, nil
	}
	var sum, end float64
	for _, p := range inits {
		sum += p.clock
		end = max(end, p.at+p.clock)
	}
	slices.SortFunc(inits, func(a, b pkgInit) int {
		switch {
		case a.clock > b.clock:
			return -1
		case a.clock < b.clock:
			return 1
		}
		return 0
	})
	var top []string
	for _, p := range inits[:min(5, len(inits))] {
		top = append(top, fmt.Sprintf("%s %.2f ms", p.pkg, p.clock))
	}
	return initSummary{total: total, found: true, end: end, sum: sum,
		line: fmt.Sprintf("- %s: first answer after %.0f ms (this run); %d packages initialised, done @%.1f ms after the process started, %.1f ms of init in all; costliest: %s",
			name, ms(total), len(inits), end, sum, strings.Join(top, ", "))}, nil
}

// initSummary is one cold start with GODEBUG=inittrace=1.
type initSummary struct {
	total    time.Duration // rie.Start to the first answer
	found    bool          // the bootstrap's inittrace lines were found
	end, sum float64       // ms: when package init ended (after the process started), its sum
	line     string        // for the report
}

// remainder says where a cold start's time went beyond hello-world's, from
// two inittrace cold starts: package init, and what follows it up to the
// first answer (main's own work and the first invocation).
func (s initSummary) remainder(hello initSummary) string {
	if !s.found || !hello.found {
		return "The inittrace lines were not found, so the split of its time is not measured."
	}
	after, helloAfter := ms(s.total)-s.end, ms(hello.total)-hello.end
	return fmt.Sprintf(`In those two cold starts it answered %.0f ms after rie.Start against
hello-world's %.0f ms: its package initialisation ended %.1f ms after its
process started (hello-world's %.1f ms), and the rest, %.0f ms against
hello-world's %.0f ms (the emulator's start-up, main's own work before
lambda.Start and the first invocation), differs by %.0f ms.`,
		ms(s.total), ms(hello.total), s.end, hello.end, after, helloAfter, after-helloAfter)
}

// initSteps times what the functions' mains do before lambda.Start, one
// step at a time, as shared/boot runs them: the configuration, the pgx
// pool, the Vault client, the API's JWT verifier, the SQS client (the AWS
// SDK's default configuration), and the pool's first connection.
func initSteps(ctx context.Context, dbURL string) (string, error) {
	var parts []string
	step := func(name string, f func() error) error {
		t0 := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		parts = append(parts, fmt.Sprintf("%s %.2f ms", name, ms(time.Since(t0))))
		return nil
	}
	prev := os.Getenv("DATABASE_URL")
	os.Setenv("DATABASE_URL", dbURL)
	defer os.Setenv("DATABASE_URL", prev)
	var cfg config.Config
	if err := step("config.Load", func() (err error) { cfg, err = config.Load(os.Getenv); return err }); err != nil {
		return "", err
	}
	var pool *pgxpool.Pool
	if err := step("postgres.Open", func() (err error) {
		pool, err = postgres.Open(ctx, cfg.DatabaseURL.Reveal(), boot.LambdaMaxConns)
		return err
	}); err != nil {
		return "", err
	}
	defer pool.Close()
	if err := step("vaultstore.Open", func() error { _, err := vaultstore.Open(ctx, cfg); return err }); err != nil {
		return "", err
	}
	if err := step("auth.NewVerifier", func() error { _, err := auth.NewVerifier(ctx, cfg); return err }); err != nil {
		return "", err
	}
	if err := step("pollsender.NewClient", func() error { _, err := pollsender.NewClient(ctx); return err }); err != nil {
		return "", err
	}
	if err := step("first database round trip (connect)", func() error { return pool.Ping(ctx) }); err != nil {
		return "", err
	}
	if err := step("second round trip", func() error { return pool.Ping(ctx) }); err != nil {
		return "", err
	}
	return strings.Join(parts, ", ") + ".", nil
}

// sizeBreakdown builds pkg once more as rie.Build does but keeping its
// symbol table (no -s -w), and sums its symbols' sizes (debug/elf) by the
// module their package belongs to (the binary's build information lists
// the modules), the largest first.
func sizeBreakdown(ctx context.Context, dir, name, pkg, stripped, goarch string) (string, error) {
	sections, err := sectionSizes(stripped)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, name+"-symbols", "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s with symbols: %w\n%s", pkg, err, b)
	}
	defer os.RemoveAll(filepath.Dir(out))
	bi, err := buildinfo.ReadFile(out)
	if err != nil {
		return "", err
	}
	modules := []string{bi.Main.Path}
	for _, d := range bi.Deps {
		modules = append(modules, d.Path)
	}
	f, err := elf.Open(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return "", err
	}
	by := map[string]uint64{}
	var total uint64
	for _, s := range syms {
		// What takes room in the file: not BSS, which is zeroed memory.
		if s.Size == 0 || int(s.Section) >= len(f.Sections) || f.Sections[s.Section].Type == elf.SHT_NOBITS {
			continue
		}
		by[symbolModule(s.Name, modules)] += s.Size
		total += s.Size
	}
	keys := slices.Collect(maps.Keys(by))
	slices.SortFunc(keys, func(a, b string) int { return int(by[b]) - int(by[a]) })
	var top []string
	for _, k := range keys[:min(8, len(keys))] {
		top = append(top, fmt.Sprintf("%s %.2f MB", k, float64(by[k])/1e6))
	}
	return fmt.Sprintf("The deployed file's largest sections (debug/elf): %s. Its symbols in the file (a build of the same source keeping them; BSS left out) add up to %.1f MB over %d modules, the largest: %s.",
		sections, float64(total)/1e6, len(keys), strings.Join(top, ", ")), nil
}

// sectionSizes lists an ELF file's five largest sections that take room
// in it.
func sectionSizes(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var secs []*elf.Section
	for _, sec := range f.Sections {
		if sec.Type != elf.SHT_NOBITS && sec.Size > 0 {
			secs = append(secs, sec)
		}
	}
	slices.SortFunc(secs, func(a, b *elf.Section) int { return int(b.Size) - int(a.Size) })
	var parts []string
	for _, sec := range secs[:min(5, len(secs))] {
		parts = append(parts, fmt.Sprintf("%s %.2f MB", sec.Name, float64(sec.Size)/1e6))
	}
	return strings.Join(parts, ", "), nil
}

// symbolModule names the module of a symbol's package: the longest module
// path it starts with; the Go standard library and the linker's own tables
// apart.
func symbolModule(sym string, modules []string) string {
	for _, p := range []string{"type:", "go:itab.", "go:link.", "*"} {
		sym = strings.TrimPrefix(sym, p)
	}
	sym = strings.TrimPrefix(sym, "*")
	if strings.HasPrefix(sym, "go:") || sym == "runtime.pclntab" || strings.HasPrefix(sym, "runtime.") && strings.Contains(sym, "tab") {
		return "linker tables"
	}
	best := ""
	for _, m := range modules {
		if strings.HasPrefix(sym, m) && (len(sym) == len(m) || sym[len(m)] == '.' || sym[len(m)] == '/') && len(m) > len(best) {
			best = m
		}
	}
	if best != "" {
		return best
	}
	slash := strings.Index(sym, "/")
	dot := strings.Index(sym, ".")
	if dot > 0 && (slash < 0 || dot < slash) && !strings.Contains(sym[:dot], ".") {
		return "standard library"
	}
	if slash > 0 && !strings.Contains(sym[:slash], ".") {
		return "standard library"
	}
	return "other"
}
