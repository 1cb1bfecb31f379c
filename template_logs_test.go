package keybuzzamazon

import (
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/cfn"
)

// Logs: JSON, one log group per function, none kept forever.

func TestTemplateLogGroups(t *testing.T) {
	tmpl := loadTemplate(t)
	if f := tmpl.Globals.Function.LoggingConfig["LogFormat"]; f != "JSON" {
		t.Errorf("Globals LoggingConfig.LogFormat = %v, want JSON", f)
	}
	used := map[string]string{}
	for _, f := range samFunctions {
		fn := function(t, tmpl, f.id)
		group, ok := cfn.AsRef(fn.LoggingConfig["LogGroup"])
		if !ok {
			t.Errorf("%s: LoggingConfig.LogGroup = %v, want !Ref to its log group", f.id, fn.LoggingConfig["LogGroup"])
			continue
		}
		if other, dup := used[group]; dup {
			t.Errorf("%s and %s share log group %s", f.id, other, group)
		}
		used[group] = f.id
		resource(t, tmpl, group, "AWS::Logs::LogGroup")
	}
	for _, id := range tmpl.ResourcesOfType("AWS::Logs::LogGroup") {
		lg := decodeInto[struct{ RetentionInDays any }](t, tmpl.Resources[id].Properties)
		if lg.RetentionInDays == nil {
			t.Errorf("log group %s keeps logs forever: set RetentionInDays", id)
		} else if _, isNum := cfn.AsNumber(lg.RetentionInDays); !isNum && !cfn.IsRefTo(lg.RetentionInDays, "LogRetentionDays") {
			t.Errorf("log group %s RetentionInDays = %v, want a number or !Ref LogRetentionDays", id, lg.RetentionInDays)
		}
	}
}
