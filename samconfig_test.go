package keybuzzamazon

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"testing"
)

// samconfig.toml: the deploy settings docs/deploy.md relies on, parameter
// overrides the template declares, and no secret.

func TestTemplateSamconfig(t *testing.T) {
	tmpl := loadTemplate(t)
	b, err := os.ReadFile("samconfig.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, line := range []string{
		`version = 0.1`, `[default.build.parameters]`, `cached = true`, `parallel = true`,
		`[default.deploy.parameters]`, `capabilities = "CAPABILITY_IAM"`, `confirm_changeset = true`,
		`resolve_s3 = true`, `env_vars = "events/env.json"`,
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `\s*$`).MatchString(cfg) {
			t.Errorf("samconfig.toml lacks %q", line)
		}
	}
	if !regexp.MustCompile(`(?m)^stack_name = "[A-Za-z][A-Za-z0-9-]*"$`).MatchString(cfg) {
		t.Error("samconfig.toml has no stack_name")
	}
	m := regexp.MustCompile(`(?m)^parameter_overrides = "(.*)"$`).FindStringSubmatch(cfg)
	if m == nil {
		t.Fatal("samconfig.toml has no parameter_overrides")
	}
	pairs := regexp.MustCompile(`([A-Za-z0-9]+)=\\"([^"\\]*)\\"`).FindAllStringSubmatch(m[1], -1)
	if len(pairs) == 0 {
		t.Fatalf("cannot read parameter_overrides %q", m[1])
	}
	for _, kv := range pairs {
		p, ok := tmpl.Parameters[kv[1]]
		if !ok {
			t.Errorf("parameter_overrides sets %s, which template.yaml does not declare", kv[1])
			continue
		}
		if len(p.AllowedValues) > 0 && !slices.ContainsFunc(p.AllowedValues, func(a any) bool { return fmt.Sprint(a) == kv[2] }) {
			t.Errorf("parameter_overrides %s=%q is not among %v", kv[1], kv[2], p.AllowedValues)
		}
	}
	for what, re := range secretLooking {
		if re.MatchString(cfg) {
			t.Errorf("samconfig.toml holds what looks like a %s", what)
		}
	}
}
