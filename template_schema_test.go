package keybuzzamazon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/keybuzz/keybuzz-amazon/dev/cfn"
)

// template.yaml against the official SAM schema (testdata/sam/).

func TestTemplateValidatesAgainstSAMSchema(t *testing.T) {
	schema := compileSAMSchema(t)
	doc := loadTemplate(t).JSON()

	cases := []struct {
		name   string
		mutate func(tmpl map[string]any)
		valid  bool
	}{
		{"as written", func(map[string]any) {}, true},
		// The schema must catch mistakes, or the check above proves nothing.
		{"unknown SQS event property", func(tmpl map[string]any) {
			props := cfn.Dig(tmpl, "Resources", pollTenantID, "Properties", "Events", "PollJobs", "Properties").(map[string]any)
			props["BatchSizes"] = 5
		}, false},
		{"unknown HttpApi event auth key", func(tmpl map[string]any) {
			auth := cfn.Dig(tmpl, "Resources", "StatusFunction", "Properties", "Events", "Status", "Properties", "Auth").(map[string]any)
			auth["Authoriser"] = "KeyBuzzJwt"
		}, false},
		{"unknown Globals.Function property", func(tmpl map[string]any) {
			cfn.Dig(tmpl, "Globals", "Function").(map[string]any)["Timout"] = 3
		}, false},
		{"unknown function property", func(tmpl map[string]any) {
			cfn.Dig(tmpl, "Resources", fanoutID, "Properties").(map[string]any)["Polices"] = []any{}
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tmpl map[string]any
			if err := json.Unmarshal(doc, &tmpl); err != nil {
				t.Fatal(err)
			}
			tc.mutate(tmpl)
			b, err := json.Marshal(tmpl)
			if err != nil {
				t.Fatal(err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			err = schema.Validate(inst)
			switch {
			case tc.valid && err != nil:
				t.Fatalf("template.yaml does not validate against the SAM schema:\n%v", err)
			case !tc.valid && err == nil:
				t.Fatal("the SAM schema accepted a broken template")
			}
		})
	}
}

func compileSAMSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.UseRegexpEngine(samSchemaRegexp)
	abs, err := filepath.Abs(samSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile(abs)
	if err != nil {
		t.Fatalf("compile %s: %v", samSchemaPath, err)
	}
	return schema
}

// negativeLookahead matches a pattern of the form ^(?!PREFIX)REST: the SAM
// schema tells plain CloudFormation resources from SAM ones with
// "^(?!AWS::Serverless::).+$", which Go's RE2 cannot compile.
var negativeLookahead = regexp.MustCompile(`^\^\(\?!([^()]*)\)(.*)$`)

// samSchemaRegexp compiles the schema's patterns with Go's regexp, and the
// leading negative lookahead as "does not start with PREFIX and matches REST".
func samSchemaRegexp(s string) (jsonschema.Regexp, error) {
	if re, err := regexp.Compile(s); err == nil {
		return re, nil
	}
	m := negativeLookahead.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("pattern %q: not RE2 and not a leading negative lookahead", s)
	}
	not, err := regexp.Compile("^(?:" + m[1] + ")")
	if err != nil {
		return nil, err
	}
	rest, err := regexp.Compile("^" + m[2])
	if err != nil {
		return nil, err
	}
	return lookaheadRegexp{src: s, not: not, rest: rest}, nil
}

type lookaheadRegexp struct {
	src       string
	not, rest *regexp.Regexp
}

func (r lookaheadRegexp) String() string { return r.src }
func (r lookaheadRegexp) MatchString(s string) bool {
	return !r.not.MatchString(s) && r.rest.MatchString(s)
}

func TestTemplateSchemaRegexpLookahead(t *testing.T) {
	re, err := samSchemaRegexp("^(?!AWS::Serverless::).+$")
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{
		"AWS::SQS::Queue": true, "AWS::Serverless::Function": false, "": false, "Custom::AWS::Serverless::X": true,
	} {
		if got := re.MatchString(s); got != want {
			t.Errorf("MatchString(%q) = %v, want %v", s, got, want)
		}
	}
}
