package keybuzzamazon

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"
)

// Each function of samFunctions, and no other, builds through sam.mk into a
// static linux/arm64 bootstrap for provided.al2023; each triggers only as
// its row says.

func TestTemplateFunctionsBuild(t *testing.T) {
	tmpl := loadTemplate(t)
	ids := tmpl.ResourcesOfType("AWS::Serverless::Function")
	want := make([]string, 0, len(samFunctions))
	for _, f := range samFunctions {
		want = append(want, f.id)
	}
	sort.Strings(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("functions in template.yaml = %v, want %v", ids, want)
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is needed to run sam.mk's build targets: ", err)
	}
	for _, f := range samFunctions {
		t.Run(f.id, func(t *testing.T) {
			fn := function(t, tmpl, f.id)
			res := tmpl.Resources[f.id]
			if got := res.Metadata["BuildMethod"]; got != "makefile" {
				t.Errorf("Metadata.BuildMethod = %v, want makefile", got)
			}
			if fn.CodeUri != "." {
				t.Errorf("CodeUri = %v, want . (the root go.mod)", fn.CodeUri)
			}
			for prop, want := range map[string]any{
				"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": []any{"arm64"},
			} {
				if got := tmpl.Effective(fn, prop); !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %v, want %v", prop, got, want)
				}
			}
			// Sequential on purpose: on a cold build cache, parallel builds
			// would each compile the standard library for linux/arm64.
			if st, err := os.Stat(filepath.Join("functions", f.dir)); err != nil || !st.IsDir() {
				t.Fatalf("functions/%s is missing: %s's CodeUri cannot build", f.dir, f.id)
			}
			out := t.TempDir()
			cmd := exec.Command("make", "--no-print-directory", "-f", "sam.mk", "build-"+f.id, "ARTIFACTS_DIR="+out)
			if log, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make -f sam.mk build-%s: %v\n%s", f.id, err, log)
			}
			bin, err := elf.Open(filepath.Join(out, "bootstrap"))
			if err != nil {
				t.Fatalf("bootstrap: %v", err)
			}
			defer bin.Close()
			if bin.Machine != elf.EM_AARCH64 {
				t.Errorf("bootstrap is for %v, want EM_AARCH64 (arm64)", bin.Machine)
			}
			for _, p := range bin.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("bootstrap is dynamically linked; provided.al2023 wants CGO_ENABLED=0")
				}
			}
		})
	}
}

func TestTemplateFunctionTriggers(t *testing.T) {
	tmpl := loadTemplate(t)
	for _, f := range samFunctions {
		fn := function(t, tmpl, f.id)
		if len(fn.Events) == 0 {
			t.Errorf("%s has no event: nothing would ever run it", f.id)
		}
		for name, ev := range fn.Events {
			if ev.Type != f.trigger {
				t.Errorf("%s event %s has type %s, want %s (samFunctions)", f.id, name, ev.Type, f.trigger)
			}
		}
		if (f.trigger == "HttpApi") != (len(f.routes) > 0) || (f.trigger == "SQS") != (f.consumes != "") {
			t.Errorf("samFunctions row %s: trigger %s wants routes for HttpApi and a queue for SQS", f.id, f.trigger)
		}
	}
}
