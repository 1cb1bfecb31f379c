package keybuzzamazon

import (
	"bytes"
	"crypto/md5"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// The deployment's promises, written once and checked against template.yaml.

// samFunctions names each function's logical id in template.yaml and its
// package under functions/.
var samFunctions = []struct{ id, dir string }{
	{"OAuthStartFunction", "oauthstart"},
	{"OAuthCallbackFunction", "oauthcallback"},
	{"StatusFunction", "status"},
	{"PollFanoutFunction", "pollfanout"},
	{"PollTenantFunction", "polltenant"},
}

// apiRoutes are the HTTP API's routes; authorized says whether the JWT
// authorizer guards the route.
var apiRoutes = []struct {
	method, path, function string
	authorized             bool
}{
	{"POST", "/api/v1/marketplaces/amazon/oauth/start", "OAuthStartFunction", true},
	{"GET", "/api/v1/marketplaces/amazon/oauth/callback", "OAuthCallbackFunction", false},
	{"GET", "/api/v1/marketplaces/amazon/status", "StatusFunction", true},
}

const (
	templatePath  = "template.yaml"
	samSchemaPath = "testdata/sam/sam.schema.json"
	pollQueueID   = "PollQueue"
	pollDLQID     = "PollDeadLetterQueue"
	fanoutID      = "PollFanoutFunction"
	pollTenantID  = "PollTenantFunction"
	httpAPIID     = "HttpApi"
)

// ----------------------------------------------------------- short-form tags

// cfnToJSON turns a CloudFormation YAML document into JSON, rewriting the
// short-form intrinsic tags (!Ref, !Sub, !GetAtt, ...) into their long form
// ({"Ref": ...}, {"Fn::Sub": ...}, {"Fn::GetAtt": [...]}), as CloudFormation
// itself reads them.
func cfnToJSON(src []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("empty document")
	}
	v, err := cfnValue(doc.Content[0])
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// cfnFunctions are the short-form tags CloudFormation knows, by tag name;
// each maps to its long-form key.
var cfnFunctions = map[string]string{
	"Ref": "Ref", "Condition": "Condition",
	"Base64": "Fn::Base64", "Cidr": "Fn::Cidr", "FindInMap": "Fn::FindInMap",
	"GetAtt": "Fn::GetAtt", "GetAZs": "Fn::GetAZs", "ImportValue": "Fn::ImportValue",
	"Join": "Fn::Join", "Select": "Fn::Select", "Split": "Fn::Split", "Sub": "Fn::Sub",
	"Transform": "Fn::Transform", "And": "Fn::And", "Equals": "Fn::Equals",
	"If": "Fn::If", "Not": "Fn::Not", "Or": "Fn::Or",
	"Length": "Fn::Length", "ToJsonString": "Fn::ToJsonString",
}

func cfnValue(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode {
		return cfnValue(n.Alias)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return cfnIntrinsic(n)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: YAML merge keys are not CloudFormation", k.Line)
			}
			v, err := cfnValue(val)
			if err != nil {
				return nil, err
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := cfnValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		if n.Tag == "!!timestamp" {
			return n.Value, nil
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}

func cfnIntrinsic(n *yaml.Node) (any, error) {
	name := strings.TrimPrefix(n.Tag, "!")
	key, ok := cfnFunctions[name]
	if !ok {
		return nil, fmt.Errorf("line %d: unknown CloudFormation tag %s", n.Line, n.Tag)
	}
	var arg any
	if n.Kind == yaml.ScalarNode {
		arg = n.Value // the argument of a scalar short form is always a string
		if name == "GetAtt" {
			res, attr, ok := strings.Cut(n.Value, ".")
			if !ok {
				return nil, fmt.Errorf("line %d: !GetAtt %q wants Resource.Attribute", n.Line, n.Value)
			}
			arg = []any{res, attr}
		}
	} else {
		untagged := *n
		untagged.Tag = ""
		v, err := cfnValue(&untagged)
		if err != nil {
			return nil, err
		}
		arg = v
	}
	return map[string]any{key: arg}, nil
}

func TestTemplateShortFormTags(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"Ref", `a: !Ref Param`, `{"a":{"Ref":"Param"}}`},
		{"Sub string", `a: !Sub "arn:${AWS::Partition}:x"`, `{"a":{"Fn::Sub":"arn:${AWS::Partition}:x"}}`},
		{"Sub list", "a: !Sub\n  - ${A}-${B}\n  - B: !Ref Other", `{"a":{"Fn::Sub":["${A}-${B}",{"B":{"Ref":"Other"}}]}}`},
		{"GetAtt dotted", `a: !GetAtt Queue.Arn`, `{"a":{"Fn::GetAtt":["Queue","Arn"]}}`},
		{"GetAtt nested attribute", `a: !GetAtt Db.Endpoint.Address`, `{"a":{"Fn::GetAtt":["Db","Endpoint.Address"]}}`},
		{"GetAtt list", `a: !GetAtt [Queue, QueueName]`, `{"a":{"Fn::GetAtt":["Queue","QueueName"]}}`},
		{"If with NoValue", `a: !If [Cond, !Ref X, !Ref AWS::NoValue]`, `{"a":{"Fn::If":["Cond",{"Ref":"X"},{"Ref":"AWS::NoValue"}]}}`},
		{"Equals Not", `c: !Not [!Equals [!Ref P, ""]]`, `{"c":{"Fn::Not":[{"Fn::Equals":[{"Ref":"P"},""]}]}}`},
		{"Select GetAZs", `a: !Select [0, !GetAZs ""]`, `{"a":{"Fn::Select":[0,{"Fn::GetAZs":""}]}}`},
		{"Join Split", `a: !Join [",", !Split ["|", "x|y"]]`, `{"a":{"Fn::Join":[",",{"Fn::Split":["|","x|y"]}]}}`},
		{"FindInMap", `a: !FindInMap [M, !Ref K, Seconds]`, `{"a":{"Fn::FindInMap":["M",{"Ref":"K"},"Seconds"]}}`},
		{"ImportValue Base64", "a:\n  - !ImportValue Exp\n  - !Base64\n      Fn::Sub: x${Y}", `{"a":[{"Fn::ImportValue":"Exp"},{"Fn::Base64":{"Fn::Sub":"x${Y}"}}]}`},
		{"Condition And Or", `c: !And [!Condition A, !Or [!Condition B, !Condition C]]`, `{"c":{"Fn::And":[{"Condition":"A"},{"Fn::Or":[{"Condition":"B"},{"Condition":"C"}]}]}}`},
		{"Cidr", `a: !Cidr [!Ref Block, 6, 5]`, `{"a":{"Fn::Cidr":[{"Ref":"Block"},6,5]}}`},
		{"plain scalars", "n: 120\nb: true\ns: \"2.0\"\nd: \"2010-09-09\"", `{"b":true,"d":"2010-09-09","n":120,"s":"2.0"}`},
		{"anchor", "a: &x [1]\nb: *x", `{"a":[1],"b":[1]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cfnToJSON([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			assertSameJSON(t, got, []byte(tc.want))
		})
	}
	for _, bad := range []string{"a: !Sbu x", "a: !GetAtt NoDot", "a: 1\na: 2"} {
		if _, err := cfnToJSON([]byte(bad)); err == nil {
			t.Errorf("cfnToJSON(%q) succeeded, want an error", bad)
		}
	}
}

// ------------------------------------------------------------------ schema

func TestTemplateValidatesAgainstSAMSchema(t *testing.T) {
	schema := compileSAMSchema(t)
	doc := templateJSON(t)

	cases := []struct {
		name   string
		mutate func(tmpl map[string]any)
		valid  bool
	}{
		{"as written", func(map[string]any) {}, true},
		// The schema must catch mistakes, or the check above proves nothing.
		{"unknown SQS event property", func(tmpl map[string]any) {
			props := dig(tmpl, "Resources", pollTenantID, "Properties", "Events", "PollJobs", "Properties").(map[string]any)
			props["BatchSizes"] = 5
		}, false},
		{"unknown HttpApi event auth key", func(tmpl map[string]any) {
			auth := dig(tmpl, "Resources", "StatusFunction", "Properties", "Events", "Status", "Properties", "Auth").(map[string]any)
			auth["Authoriser"] = "KeyBuzzJwt"
		}, false},
		{"unknown Globals.Function property", func(tmpl map[string]any) {
			dig(tmpl, "Globals", "Function").(map[string]any)["Timout"] = 3
		}, false},
		{"unknown function property", func(tmpl map[string]any) {
			dig(tmpl, "Resources", fanoutID, "Properties").(map[string]any)["Polices"] = []any{}
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

// ------------------------------------------------------------------ builds

func TestTemplateFunctionsBuild(t *testing.T) {
	tmpl := loadTemplate(t)
	ids := tmpl.resourcesOfType("AWS::Serverless::Function")
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
			fn := tmpl.function(t, f.id)
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
				if got := tmpl.effective(fn, prop); !reflect.DeepEqual(got, want) {
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

// ------------------------------------------------------------------ routes

type route struct {
	function, authorizer string // authorizer "" = none
	event                samHTTPAPIEvent
}

func TestTemplateRoutes(t *testing.T) {
	tmpl := loadTemplate(t)
	routes := tmpl.routes(t)
	if len(routes) != len(apiRoutes) {
		t.Errorf("template.yaml has %d routes, want %d: %v", len(routes), len(apiRoutes), keys(routes))
	}
	for _, want := range apiRoutes {
		key := want.method + " " + want.path
		t.Run(key, func(t *testing.T) {
			got, ok := routes[key]
			if !ok {
				t.Fatalf("no function serves %s", key)
			}
			if got.function != want.function {
				t.Errorf("%s reaches %s, want %s", key, got.function, want.function)
			}
			if r, _ := asRef(got.event.ApiId); r != httpAPIID {
				t.Errorf("ApiId = %v, want !Ref %s", got.event.ApiId, httpAPIID)
			}
			if got.event.PayloadFormatVersion != "2.0" {
				t.Errorf("PayloadFormatVersion = %v, want \"2.0\"", got.event.PayloadFormatVersion)
			}
			if (got.authorizer != "") != want.authorized {
				t.Errorf("authorizer = %q, want authorized=%v", got.authorizer, want.authorized)
			}
		})
	}

	api := tmpl.httpAPI(t)
	if api.StageName != nil && api.StageName != "$default" {
		t.Errorf("StageName = %v: a named stage prefixes rawPath, keep $default", api.StageName)
	}
	jwtAuth, ok := api.Auth.Authorizers[api.Auth.DefaultAuthorizer]
	if api.Auth.DefaultAuthorizer == "" || !ok {
		t.Fatalf("DefaultAuthorizer %q is not among the authorizers", api.Auth.DefaultAuthorizer)
	}
	if jwtAuth.IdentitySource != "$request.header.Authorization" {
		t.Errorf("IdentitySource = %q", jwtAuth.IdentitySource)
	}
	if r, _ := asRef(jwtAuth.JwtConfiguration.Issuer); r != "JwtIssuer" {
		t.Errorf("issuer = %v, want !Ref JwtIssuer", jwtAuth.JwtConfiguration.Issuer)
	}
	if len(jwtAuth.JwtConfiguration.Audience) != 1 || !isRefTo(jwtAuth.JwtConfiguration.Audience[0], "JwtAudience") {
		t.Errorf("audience = %v, want [!Ref JwtAudience]", jwtAuth.JwtConfiguration.Audience)
	}
	if len(api.CorsConfiguration.AllowOrigins) != 1 || !isRefTo(api.CorsConfiguration.AllowOrigins[0], "FrontendOrigin") {
		t.Errorf("CORS AllowOrigins = %v, want [!Ref FrontendOrigin]", api.CorsConfiguration.AllowOrigins)
	}
	for _, h := range []string{"Authorization", "Content-Type"} {
		if !slices.Contains(api.CorsConfiguration.AllowHeaders, h) {
			t.Errorf("CORS AllowHeaders %v lacks %s", api.CorsConfiguration.AllowHeaders, h)
		}
	}
}

func TestTemplateCallbackIsTheOnlyRouteWithoutAuthorizer(t *testing.T) {
	tmpl := loadTemplate(t)
	api := tmpl.httpAPI(t)
	var open []string
	for key, r := range tmpl.routes(t) {
		if r.authorizer == "" {
			open = append(open, key)
			continue
		}
		if _, ok := api.Auth.Authorizers[r.authorizer]; !ok {
			t.Errorf("%s names authorizer %q, which the HTTP API does not define", key, r.authorizer)
		}
	}
	want := []string{"GET /api/v1/marketplaces/amazon/oauth/callback"}
	if !slices.Equal(open, want) {
		t.Errorf("routes without authorizer = %v, want %v", open, want)
	}
}

// ------------------------------------------------------------------ queues

func TestTemplatePollQueueVisibilityTimeout(t *testing.T) {
	tmpl := loadTemplate(t)
	fn := tmpl.function(t, pollTenantID)
	var sqsEvents []samSQSEvent
	for name, ev := range fn.Events {
		if ev.Type != "SQS" {
			t.Errorf("%s has a %s event %s; it should only consume the poll queue", pollTenantID, ev.Type, name)
			continue
		}
		sqsEvents = append(sqsEvents, decodeInto[samSQSEvent](t, ev.Properties))
	}
	if len(sqsEvents) != 1 {
		t.Fatalf("%s has %d SQS events, want 1", pollTenantID, len(sqsEvents))
	}
	ev := sqsEvents[0]
	if att := asGetAtt(ev.Queue); !slices.Equal(att, []string{pollQueueID, "Arn"}) {
		t.Fatalf("SQS event Queue = %v, want !GetAtt %s.Arn", ev.Queue, pollQueueID)
	}
	queue := decodeInto[samQueue](t, tmpl.resource(t, pollQueueID, "AWS::SQS::Queue").Properties)

	timeout := mustNumber(t, "PollTenantFunction Timeout", tmpl.effective(fn, "Timeout"))
	visibility := mustNumber(t, "PollQueue VisibilityTimeout", queue.VisibilityTimeout)
	window := 0.0
	if ev.MaximumBatchingWindowInSeconds != nil {
		window = mustNumber(t, "MaximumBatchingWindowInSeconds", ev.MaximumBatchingWindowInSeconds)
	}
	// Lambda's SQS guide: at least 6 x the function timeout, plus the batching window.
	if visibility < 6*timeout+window {
		t.Errorf("VisibilityTimeout %v < 6 x Timeout %v + batching window %v", visibility, timeout, window)
	}
	if timeout > 900 || timeout < 1 {
		t.Errorf("polltenant Timeout %v is outside Lambda's 1..900 s", timeout)
	}

	batch := mustNumber(t, "BatchSize", ev.BatchSize)
	if batch < 1 || batch > 10 {
		t.Errorf("BatchSize %v: want 1..10 (over 10 needs a batching window and lengthens a batch's run)", batch)
	}
	if ev.MaximumBatchingWindowInSeconds == nil {
		t.Error("MaximumBatchingWindowInSeconds is not set")
	}
	if !slices.Equal(ev.FunctionResponseTypes, []string{"ReportBatchItemFailures"}) {
		t.Errorf("FunctionResponseTypes = %v, want [ReportBatchItemFailures]", ev.FunctionResponseTypes)
	}
	param, ok := asRef(ev.ScalingConfig.MaximumConcurrency)
	if !ok {
		t.Fatalf("ScalingConfig.MaximumConcurrency = %v, want a !Ref to a parameter", ev.ScalingConfig.MaximumConcurrency)
	}
	p, ok := tmpl.Parameters[param]
	if !ok {
		t.Fatalf("MaximumConcurrency refers to %q, not a parameter", param)
	}
	if p.MinValue == nil || *p.MinValue < 2 {
		t.Errorf("parameter %s: MinValue %v, want >= 2 (Lambda's minimum)", param, p.MinValue)
	}
}

func TestTemplateDeadLetterQueue(t *testing.T) {
	tmpl := loadTemplate(t)
	queue := decodeInto[samQueue](t, tmpl.resource(t, pollQueueID, "AWS::SQS::Queue").Properties)
	dlq := decodeInto[samQueue](t, tmpl.resource(t, pollDLQID, "AWS::SQS::Queue").Properties)

	if queue.RedrivePolicy == nil {
		t.Fatal("PollQueue has no RedrivePolicy")
	}
	if att := asGetAtt(queue.RedrivePolicy.DeadLetterTargetArn); !slices.Equal(att, []string{pollDLQID, "Arn"}) {
		t.Errorf("deadLetterTargetArn = %v, want !GetAtt %s.Arn", queue.RedrivePolicy.DeadLetterTargetArn, pollDLQID)
	}
	if !isRefTo(queue.RedrivePolicy.MaxReceiveCount, "MaxReceiveCount") {
		t.Errorf("maxReceiveCount = %v, want !Ref MaxReceiveCount", queue.RedrivePolicy.MaxReceiveCount)
	}
	if p := tmpl.Parameters["MaxReceiveCount"]; p.Type != "Number" || p.MinValue == nil || *p.MinValue < 1 {
		t.Errorf("parameter MaxReceiveCount = %+v, want a Number with MinValue >= 1", p)
	}
	if dlq.RedrivePolicy != nil {
		t.Error("the dead-letter queue must not redrive itself")
	}
	// A message keeps its first enqueue time in the DLQ: the DLQ must keep it longer.
	if q, d := mustNumber(t, "PollQueue retention", queue.MessageRetentionPeriod), mustNumber(t, "DLQ retention", dlq.MessageRetentionPeriod); d <= q {
		t.Errorf("DLQ retention %v s <= queue retention %v s", d, q)
	}

	var alarms int
	for _, id := range tmpl.resourcesOfType("AWS::CloudWatch::Alarm") {
		a := decodeInto[samAlarm](t, tmpl.Resources[id].Properties)
		if a.Namespace != "AWS/SQS" || a.MetricName != "ApproximateNumberOfMessagesVisible" {
			continue
		}
		for _, d := range a.Dimensions {
			if d.Name == "QueueName" && slices.Equal(asGetAtt(d.Value), []string{pollDLQID, "QueueName"}) {
				alarms++
				if a.ComparisonOperator != "GreaterThanThreshold" || mustNumber(t, "Threshold", a.Threshold) != 0 {
					t.Errorf("alarm %s: %s %v, want GreaterThanThreshold 0", id, a.ComparisonOperator, a.Threshold)
				}
			}
		}
	}
	if alarms != 1 {
		t.Errorf("%d alarms on the dead-letter queue's depth, want 1", alarms)
	}

	for name, want := range map[string]string{"PollQueueUrl": pollQueueID, "PollDeadLetterQueueUrl": pollDLQID} {
		if !isRefTo(tmpl.Outputs[name].Value, want) {
			t.Errorf("output %s = %v, want !Ref %s", name, tmpl.Outputs[name].Value, want)
		}
	}
	if api, ok := tmpl.Outputs["ApiUrl"].Value.(map[string]any); !ok || !strings.Contains(fmt.Sprint(api["Fn::Sub"]), "${"+httpAPIID+"}") {
		t.Errorf("output ApiUrl = %v, want a !Sub of ${%s}", tmpl.Outputs["ApiUrl"].Value, httpAPIID)
	}
}

func TestTemplateOnlyFanoutSendsToPollQueue(t *testing.T) {
	tmpl := loadTemplate(t)
	var senders []string
	for _, f := range samFunctions {
		fn := tmpl.function(t, f.id)
		res := tmpl.Resources[f.id]
		if fn.Role != nil {
			t.Errorf("%s uses its own Role; keep SAM's per-function role so Policies stay least privilege", f.id)
		}
		if len(res.Connectors) > 0 {
			t.Errorf("%s has Connectors; this test only understands Policies", f.id)
		}
		if policiesAllowSend(t, f.id, fn.Policies) {
			senders = append(senders, f.id)
		}
	}
	if !slices.Equal(senders, []string{fanoutID}) {
		t.Errorf("functions that may send to the poll queue = %v, want [%s]", senders, fanoutID)
	}
	// Nothing else grants SQS rights behind the functions' back.
	for id, r := range tmpl.Resources {
		switch r.Type {
		case "AWS::SQS::QueuePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role", "AWS::Serverless::Connector":
			t.Errorf("resource %s (%s): grant SQS access through the function's Policies only", id, r.Type)
		}
	}
	// And pollfanout sends to this queue.
	fn := tmpl.function(t, fanoutID)
	if !isRefTo(tmpl.effectiveEnv(fn)["POLL_QUEUE_URL"], pollQueueID) {
		t.Errorf("%s POLL_QUEUE_URL = %v, want !Ref %s", fanoutID, tmpl.effectiveEnv(fn)["POLL_QUEUE_URL"], pollQueueID)
	}
	for id, env := range tmpl.allEffectiveEnv(t) {
		if _, ok := env["POLL_QUEUE_URL"]; ok && id != fanoutID {
			t.Errorf("%s has POLL_QUEUE_URL but may not send to the queue", id)
		}
	}
}

// policiesAllowSend says whether a function's SAM Policies let it call
// sqs:SendMessage. Anything it cannot read is a failure, not a pass.
func policiesAllowSend(t *testing.T, id string, policies any) bool {
	t.Helper()
	var list []any
	switch p := policies.(type) {
	case nil:
		return false
	case []any:
		list = p
	default:
		list = []any{p}
	}
	send := false
	for _, p := range list {
		switch p := p.(type) {
		case string: // a managed policy
			if strings.Contains(strings.ToUpper(p), "SQS") || strings.Contains(p, "Admin") || strings.Contains(p, "PowerUser") {
				t.Errorf("%s: managed policy %s is broader than least privilege", id, p)
				send = true
			}
		case map[string]any:
			if stmts, ok := p["Statement"]; ok {
				for _, s := range asList(stmts) {
					stmt, _ := s.(map[string]any)
					if stmt["Effect"] == "Allow" && actionsMatch(stmt["Action"], "sqs:SendMessage") {
						send = true
					}
				}
				continue
			}
			for name, args := range p {
				switch name {
				case "SQSSendMessagePolicy":
					send = true
					q, _ := args.(map[string]any)
					if att := asGetAtt(q["QueueName"]); !slices.Equal(att, []string{pollQueueID, "QueueName"}) {
						t.Errorf("%s: SQSSendMessagePolicy on %v, want !GetAtt %s.QueueName", id, q["QueueName"], pollQueueID)
					}
				case "SQSPollerPolicy", "VPCAccessPolicy", "AWSSecretsManagerGetSecretValuePolicy", "CloudWatchPutMetricPolicy":
					// no sqs:SendMessage in these policy templates
				default:
					t.Errorf("%s: policy template %s is not known to this test; add it with what it grants", id, name)
				}
			}
		default:
			t.Errorf("%s: cannot read policy %v", id, p)
		}
	}
	return send
}

// actionsMatch reports whether an IAM Action (string or list, with * and ?
// wildcards, case-insensitive) allows action.
func actionsMatch(actions any, action string) bool {
	for _, a := range asList(actions) {
		s, _ := a.(string)
		pattern := "(?i)^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(s)) + "$"
		if regexp.MustCompile(pattern).MatchString(action) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- schedule

func TestTemplatePollSchedule(t *testing.T) {
	tmpl := loadTemplate(t)
	fn := tmpl.function(t, fanoutID)
	var schedule any
	for name, ev := range fn.Events {
		if ev.Type != "Schedule" {
			t.Fatalf("%s event %s has type %s, want Schedule", fanoutID, name, ev.Type)
		}
		schedule = decodeInto[struct{ Schedule any }](t, ev.Properties).Schedule
	}
	if schedule == nil {
		t.Fatalf("%s has no Schedule event", fanoutID)
	}
	p := tmpl.Parameters["PollIntervalMinutes"]
	if p.Type != "Number" || len(p.AllowedValues) == 0 {
		t.Fatalf("parameter PollIntervalMinutes = %+v, want a Number with AllowedValues", p)
	}
	rate := regexp.MustCompile(`^rate\((1 minute|([2-9]|[1-9][0-9]+) minutes)\)$`)
	for _, allowed := range p.AllowedValues {
		minutes := fmt.Sprint(allowed)
		n, err := strconv.Atoi(minutes)
		if err != nil || n < 1 {
			t.Errorf("PollIntervalMinutes allows %v: EventBridge wants whole minutes", allowed)
			continue
		}
		params := map[string]string{"PollIntervalMinutes": minutes}
		expr, err := tmpl.eval(schedule, params)
		if err != nil {
			t.Fatalf("evaluate Schedule: %v", err)
		}
		if !rate.MatchString(fmt.Sprint(expr)) {
			t.Errorf("PollIntervalMinutes=%s gives schedule %q, not a valid rate expression", minutes, expr)
		}
		if want := fmt.Sprintf("rate(%d minute", n); !strings.HasPrefix(fmt.Sprint(expr), want) {
			t.Errorf("PollIntervalMinutes=%s gives %q", minutes, expr)
		}
		secs, err := tmpl.eval(tmpl.effectiveEnv(fn)["MARKETPLACE_POLL_INTERVAL_SECONDS"], params)
		if err != nil {
			t.Fatalf("evaluate MARKETPLACE_POLL_INTERVAL_SECONDS: %v", err)
		}
		if fmt.Sprint(secs) != strconv.Itoa(60*n) {
			t.Errorf("PollIntervalMinutes=%s gives MARKETPLACE_POLL_INTERVAL_SECONDS=%v, want %d", minutes, secs, 60*n)
		}
	}
}

// -------------------------------------------------------------- log groups

func TestTemplateLogGroups(t *testing.T) {
	tmpl := loadTemplate(t)
	if f := tmpl.Globals.Function.LoggingConfig["LogFormat"]; f != "JSON" {
		t.Errorf("Globals LoggingConfig.LogFormat = %v, want JSON", f)
	}
	used := map[string]string{}
	for _, f := range samFunctions {
		fn := tmpl.function(t, f.id)
		group, ok := asRef(fn.LoggingConfig["LogGroup"])
		if !ok {
			t.Errorf("%s: LoggingConfig.LogGroup = %v, want !Ref to its log group", f.id, fn.LoggingConfig["LogGroup"])
			continue
		}
		if other, dup := used[group]; dup {
			t.Errorf("%s and %s share log group %s", f.id, other, group)
		}
		used[group] = f.id
		tmpl.resource(t, group, "AWS::Logs::LogGroup")
	}
	for _, id := range tmpl.resourcesOfType("AWS::Logs::LogGroup") {
		lg := decodeInto[struct{ RetentionInDays any }](t, tmpl.Resources[id].Properties)
		if lg.RetentionInDays == nil {
			t.Errorf("log group %s keeps logs forever: set RetentionInDays", id)
		} else if _, isNum := asNumber(lg.RetentionInDays); !isNum && !isRefTo(lg.RetentionInDays, "LogRetentionDays") {
			t.Errorf("log group %s RetentionInDays = %v, want a number or !Ref LogRetentionDays", id, lg.RetentionInDays)
		}
	}
}

// ----------------------------------------------------------------- secrets

// secretLooking are values that must never be written in the template.
var secretLooking = map[string]*regexp.Regexp{
	"URL with a password": regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@{}$]+:[^@\s/{}$]+@`),
	"AWS access key":      regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`),
	"private key":         regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY`),
	"LWA token":           regexp.MustCompile(`Atz[ar]\|`),
	"LWA client secret":   regexp.MustCompile(`amzn1\.oa2-cs\.`),
	"Vault token":         regexp.MustCompile(`\bhv[sbr]\.[A-Za-z0-9_-]{20,}`),
	"dev secret":          regexp.MustCompile(`(?i)dev-root|local-dev-jwt-secret`),
}

func TestTemplateNoLiteralSecrets(t *testing.T) {
	tmpl := loadTemplate(t)
	var raw any
	if err := json.Unmarshal(templateJSON(t), &raw); err != nil {
		t.Fatal(err)
	}
	walkStrings(raw, "", func(where, s string) {
		for what, re := range secretLooking {
			if re.MatchString(s) {
				t.Errorf("%s: looks like a literal %s: %q", where, what, s)
			}
		}
	})

	dynamicRef := regexp.MustCompile(`^\{\{resolve:(secretsmanager|ssm-secure):\$\{([A-Za-z0-9]+)\}(:.*)?\}\}$`)
	sensitiveName := regexp.MustCompile(`SECRET|PASSWORD|PASSWD|PRIVATE|_KEY$|^VAULT_TOKEN$|^DATABASE_URL$`)
	for id, env := range tmpl.allEffectiveEnv(t) {
		db, _ := env["DATABASE_URL"].(map[string]any)
		sub, _ := db["Fn::Sub"].(string)
		m := dynamicRef.FindStringSubmatch(sub)
		if m == nil {
			t.Errorf("%s: DATABASE_URL = %v, want !Sub \"{{resolve:secretsmanager:${Param}...}}\"", id, env["DATABASE_URL"])
		} else if _, ok := tmpl.Parameters[m[2]]; !ok {
			t.Errorf("%s: DATABASE_URL's reference is built from %q, not a parameter", id, m[2])
		}
		for name, v := range env {
			if name == "DATABASE_URL" || !sensitiveName.MatchString(name) {
				continue
			}
			// Local-only variables are declared so sam local can set them,
			// and dropped in AWS.
			if !isRefTo(v, "AWS::NoValue") {
				t.Errorf("%s: %s = %v; in AWS it must be !Ref AWS::NoValue (secrets come from Vault or a dynamic reference)", id, name, v)
			}
		}
		if env["VAULT_AUTH_METHOD"] != "aws" {
			t.Errorf("%s: VAULT_AUTH_METHOD = %v, want aws (Vault's AWS IAM auth)", id, env["VAULT_AUTH_METHOD"])
		}
	}
	for name, p := range tmpl.Parameters {
		if sensitiveName.MatchString(strings.ToUpper(name)) && !strings.HasSuffix(name, "Arn") && !strings.HasSuffix(name, "Key") && p.NoEcho != true {
			t.Errorf("parameter %s looks secret: pass an ARN instead, or set NoEcho", name)
		}
	}
}

// ------------------------------------------------------------- environment

func TestTemplateEnvironment(t *testing.T) {
	tmpl := loadTemplate(t)
	// The configuration table of ARCHITECTURE.md, as every function reads it in AWS.
	required := []string{
		"DATABASE_URL", "VAULT_ADDR", "VAULT_AUTH_METHOD", "VAULT_AWS_ROLE", "VAULT_KV_MOUNT",
		"AMAZON_SPAPI_APP_SOURCE", "MARKETPLACE_POLL_INTERVAL_SECONDS", "POLL_LOOKBACK_DAYS",
		"AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE", "AUTH_JWKS_URL", "AUTH_TENANT_CLAIM",
		"FRONTEND_RETURN_URL", "AMAZON_LWA_TOKEN_URL", "AMAZON_SPAPI_ENDPOINT", "AMAZON_SELLER_CENTRAL_URL",
	}
	for id, env := range tmpl.allEffectiveEnv(t) {
		for _, name := range required {
			if _, ok := env[name]; !ok {
				t.Errorf("%s: %s is not set", id, name)
			}
		}
	}
	if err := tmpl.checkReferences(); err != nil {
		t.Error(err)
	}
}

// ---------------------------------------------------------------- samconfig

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

// ------------------------------------------------------------------ events

// pollJob is the body pollfanout sends and polltenant reads.
type pollJob struct {
	TenantID     string    `json:"tenantId"`
	ConnectionID string    `json:"connectionId"`
	EnqueuedAt   time.Time `json:"enqueuedAt"`
}

func TestEventsDecode(t *testing.T) {
	tmpl := loadTemplate(t)
	routes := tmpl.routes(t)
	local := readEnvJSON(t)["Parameters"]

	for _, f := range samFunctions {
		file := filepath.Join("events", f.dir+".json")
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			switch f.id {
			case "OAuthStartFunction", "OAuthCallbackFunction", "StatusFunction":
				ev := decodeStrict[events.APIGatewayV2HTTPRequest](t, b)
				checkAPIEvent(t, f.id, ev, routes, local)
			case fanoutID:
				ev := decodeStrict[events.EventBridgeEvent](t, b)
				if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" {
					t.Errorf("detail-type %q, source %q: want a scheduled event", ev.DetailType, ev.Source)
				}
				if ev.Time.IsZero() || len(ev.Resources) != 1 || !strings.HasPrefix(ev.Resources[0], "arn:aws:events:") {
					t.Errorf("time %v, resources %v: want the rule's ARN and a time", ev.Time, ev.Resources)
				}
			case pollTenantID:
				ev := decodeStrict[events.SQSEvent](t, b)
				checkSQSEvent(t, ev)
			default:
				t.Fatalf("no event check for %s", f.id)
			}
		})
	}
}

func checkAPIEvent(t *testing.T, id string, ev events.APIGatewayV2HTTPRequest, routes map[string]route, local map[string]string) {
	t.Helper()
	rc := ev.RequestContext
	if ev.Version != "2.0" || rc.Stage != "$default" {
		t.Errorf("version %q stage %q, want 2.0 and $default", ev.Version, rc.Stage)
	}
	key := rc.HTTP.Method + " " + ev.RawPath
	if ev.RouteKey != key || rc.RouteKey != key || rc.HTTP.Path != ev.RawPath {
		t.Errorf("routeKey %q / %q, http %s %s disagree", ev.RouteKey, rc.RouteKey, rc.HTTP.Method, rc.HTTP.Path)
	}
	r, ok := routes[key]
	if !ok || r.function != id {
		t.Fatalf("the template sends %s to %q, not %s", key, r.function, id)
	}
	if q, err := url.ParseQuery(ev.RawQueryString); err != nil {
		t.Errorf("rawQueryString: %v", err)
	} else {
		for k, v := range ev.QueryStringParameters {
			if q.Get(k) != v {
				t.Errorf("queryStringParameters[%s] = %q, rawQueryString has %q", k, v, q.Get(k))
			}
		}
		if len(q) != len(ev.QueryStringParameters) {
			t.Errorf("rawQueryString %q and queryStringParameters %v disagree", ev.RawQueryString, ev.QueryStringParameters)
		}
	}
	for h := range ev.Headers {
		if h != strings.ToLower(h) {
			t.Errorf("header %q: HTTP API sends header names in lower case", h)
		}
	}

	if r.authorizer == "" {
		if rc.Authorizer != nil || ev.Headers["authorization"] != "" {
			t.Error("a route without authorizer gets no authorizer context and the browser sends no Bearer token")
		}
		for _, p := range []string{"state", "spapi_oauth_code", "selling_partner_id"} {
			if ev.QueryStringParameters[p] == "" {
				t.Errorf("callback event lacks %s", p)
			}
		}
		return
	}
	if rc.Authorizer == nil || rc.Authorizer.JWT == nil {
		t.Fatal("requestContext.authorizer.jwt is missing")
	}
	claims := rc.Authorizer.JWT.Claims
	for _, c := range []string{"tenantId", "iss", "aud", "sub"} {
		if claims[c] == "" {
			t.Errorf("authorizer claims lack %s", c)
		}
	}
	// The Bearer token is the one the claims came from, and the local run
	// (events/env.json) accepts it: handlers verify it too (sam local skips
	// the authorizer).
	bearer, ok := strings.CutPrefix(ev.Headers["authorization"], "Bearer ")
	if !ok {
		t.Fatal("no Bearer token in the authorization header")
	}
	tok, err := jwt.Parse(bearer, func(*jwt.Token) (any, error) { return []byte(local["AUTH_JWT_HS256_SECRET"]), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(local["AUTH_JWT_ISSUER"]),
		jwt.WithAudience(local["AUTH_JWT_AUDIENCE"]), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("the Bearer token does not verify with events/env.json: %v", err)
	}
	mc := tok.Claims.(jwt.MapClaims)
	for _, c := range []string{"tenantId", "iss", "aud", "sub"} {
		if fmt.Sprint(mc[c]) != claims[c] {
			t.Errorf("claim %s: token has %v, authorizer context has %q", c, mc[c], claims[c])
		}
	}
}

func checkSQSEvent(t *testing.T, ev events.SQSEvent) {
	t.Helper()
	if len(ev.Records) != 3 {
		t.Errorf("%d records, want a batch of 3", len(ev.Records))
	}
	ids := map[string]bool{}
	for i, r := range ev.Records {
		if r.MessageId == "" || ids[r.MessageId] {
			t.Errorf("record %d: messageId %q empty or repeated (batch item failures name it)", i, r.MessageId)
		}
		ids[r.MessageId] = true
		if r.ReceiptHandle == "" || r.EventSource != "aws:sqs" || !strings.HasPrefix(r.EventSourceARN, "arn:aws:sqs:") {
			t.Errorf("record %d: receiptHandle %q, eventSource %q, eventSourceARN %q", i, r.ReceiptHandle, r.EventSource, r.EventSourceARN)
		}
		if r.Attributes["ApproximateReceiveCount"] == "" || r.Attributes["SentTimestamp"] == "" {
			t.Errorf("record %d: attributes %v lack ApproximateReceiveCount or SentTimestamp", i, r.Attributes)
		}
		if sum := md5.Sum([]byte(r.Body)); r.Md5OfBody != hex.EncodeToString(sum[:]) {
			t.Errorf("record %d: md5OfBody %s does not match the body", i, r.Md5OfBody)
		}
		job := decodeStrict[pollJob](t, []byte(r.Body))
		if job.TenantID == "" || job.ConnectionID == "" || job.EnqueuedAt.IsZero() {
			t.Errorf("record %d: body %s lacks tenantId, connectionId or enqueuedAt", i, r.Body)
		}
	}
}

func TestEventsEnvJSON(t *testing.T) {
	tmpl := loadTemplate(t)
	env := readEnvJSON(t)
	all := tmpl.allEffectiveEnv(t)
	for section, vars := range env {
		if section == "Parameters" {
			// Applies to every function: sam local only overrides variables
			// the template declares, so each must be declared for all.
			for name := range vars {
				if _, ok := tmpl.Globals.Function.Environment.Variables[name]; !ok {
					t.Errorf("env.json Parameters sets %s, which Globals does not declare: sam local would ignore it", name)
				}
			}
			continue
		}
		declared, ok := all[section]
		if !ok {
			t.Errorf("env.json section %q is not a function of template.yaml", section)
			continue
		}
		for name := range vars {
			if _, ok := declared[name]; !ok {
				t.Errorf("env.json %s sets %s, which the function does not declare: sam local would ignore it", section, name)
			}
		}
	}
	for _, f := range samFunctions {
		if _, ok := env[f.id]; !ok {
			t.Errorf("env.json has no section for %s", f.id)
		}
	}

	local := env["Parameters"]
	for name, want := range map[string]string{"VAULT_AUTH_METHOD": "token", "VAULT_KV_MOUNT": "secret", "AUTH_TENANT_CLAIM": "tenantId"} {
		if local[name] != want {
			t.Errorf("env.json Parameters %s = %q, want %q", name, local[name], want)
		}
	}
	for _, name := range []string{"DATABASE_URL", "VAULT_ADDR", "VAULT_TOKEN", "AUTH_JWT_HS256_SECRET", "AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE"} {
		if local[name] == "" {
			t.Errorf("env.json Parameters lacks %s", name)
		}
	}
	if env[fanoutID]["POLL_QUEUE_URL"] == "" || env[fanoutID]["AWS_ENDPOINT_URL_SQS"] == "" {
		t.Errorf("env.json %s lacks POLL_QUEUE_URL or AWS_ENDPOINT_URL_SQS", fanoutID)
	}
	// Local means this machine: every address is on loopback.
	for section, vars := range env {
		for name, v := range vars {
			if !strings.Contains(v, "://") {
				continue
			}
			u, err := url.Parse(v)
			if err != nil {
				t.Errorf("%s %s: %v", section, name, err)
				continue
			}
			if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
				t.Errorf("env.json %s %s points at %s, not at a local service", section, name, h)
			}
		}
	}
}

func readEnvJSON(t *testing.T) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile("events/env.json")
	if err != nil {
		t.Fatal(err)
	}
	return decodeStrict[map[string]map[string]string](t, b)
}

// ------------------------------------------------------- template reading

// samTemplate is the part of template.yaml the tests read, in long form.
type samTemplate struct {
	Parameters map[string]samParameter
	Mappings   map[string]map[string]map[string]any
	Conditions map[string]any
	Globals    struct{ Function samFunction }
	Resources  map[string]samResource
	Outputs    map[string]struct{ Value any }

	raw []byte // the whole template as JSON
}

type samParameter struct {
	Type          string
	Default       any
	AllowedValues []any
	MinValue      *float64
	NoEcho        any
}

type samResource struct {
	Type       string
	Condition  string
	Metadata   map[string]any
	Connectors map[string]any
	Properties json.RawMessage
}

type samFunction struct {
	CodeUri       any
	Runtime       any
	Handler       any
	Architectures []any
	Timeout       any
	MemorySize    any
	Role          any
	Policies      any
	LoggingConfig map[string]any
	Environment   struct{ Variables map[string]any }
	Events        map[string]struct {
		Type       string
		Properties json.RawMessage
	}
}

type samHTTPAPIEvent struct {
	ApiId                any
	Method               string
	Path                 string
	PayloadFormatVersion any
	Auth                 struct{ Authorizer string }
}

type samHTTPAPI struct {
	StageName any
	Auth      struct {
		DefaultAuthorizer string
		Authorizers       map[string]struct {
			IdentitySource   string
			JwtConfiguration struct {
				Issuer   any   `json:"issuer"`
				Audience []any `json:"audience"`
			}
		}
	}
	CorsConfiguration struct {
		AllowOrigins []any
		AllowHeaders []string
	}
}

type samSQSEvent struct {
	Queue                          any
	BatchSize                      any
	MaximumBatchingWindowInSeconds any
	FunctionResponseTypes          []string
	ScalingConfig                  struct{ MaximumConcurrency any }
}

type samQueue struct {
	VisibilityTimeout      any
	MessageRetentionPeriod any
	RedrivePolicy          *struct {
		DeadLetterTargetArn any `json:"deadLetterTargetArn"`
		MaxReceiveCount     any `json:"maxReceiveCount"`
	}
}

type samAlarm struct {
	Namespace, MetricName, ComparisonOperator string
	Threshold                                 any
	Dimensions                                []struct {
		Name  string
		Value any
	}
}

func templateJSON(t *testing.T) []byte {
	t.Helper()
	src, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cfnToJSON(src)
	if err != nil {
		t.Fatalf("%s: %v", templatePath, err)
	}
	return b
}

func loadTemplate(t *testing.T) *samTemplate {
	t.Helper()
	raw := templateJSON(t)
	tmpl := samTemplate{raw: raw}
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		t.Fatalf("%s: %v", templatePath, err)
	}
	return &tmpl
}

func (tp *samTemplate) resourcesOfType(typ string) []string {
	var ids []string
	for id, r := range tp.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func (tp *samTemplate) resource(t *testing.T, id, typ string) samResource {
	t.Helper()
	r, ok := tp.Resources[id]
	if !ok || r.Type != typ {
		t.Fatalf("resource %s: type %q, want %s", id, r.Type, typ)
	}
	return r
}

func (tp *samTemplate) function(t *testing.T, id string) samFunction {
	t.Helper()
	return decodeInto[samFunction](t, tp.resource(t, id, "AWS::Serverless::Function").Properties)
}

func (tp *samTemplate) httpAPI(t *testing.T) samHTTPAPI {
	t.Helper()
	return decodeInto[samHTTPAPI](t, tp.resource(t, httpAPIID, "AWS::Serverless::HttpApi").Properties)
}

// effective is a function property as SAM resolves it: the function's own
// value, else the Globals one.
func (tp *samTemplate) effective(fn samFunction, prop string) any {
	own := reflect.ValueOf(fn).FieldByName(prop)
	if !own.IsNil() {
		return own.Interface()
	}
	return reflect.ValueOf(tp.Globals.Function).FieldByName(prop).Interface()
}

// effectiveEnv merges Globals' environment with the function's, as SAM does.
func (tp *samTemplate) effectiveEnv(fn samFunction) map[string]any {
	env := map[string]any{}
	for k, v := range tp.Globals.Function.Environment.Variables {
		env[k] = v
	}
	for k, v := range fn.Environment.Variables {
		env[k] = v
	}
	return env
}

func (tp *samTemplate) allEffectiveEnv(t *testing.T) map[string]map[string]any {
	t.Helper()
	all := map[string]map[string]any{}
	for _, id := range tp.resourcesOfType("AWS::Serverless::Function") {
		all[id] = tp.effectiveEnv(tp.function(t, id))
	}
	return all
}

// routes maps "METHOD /path" to the function it reaches and the authorizer
// that guards it ("" for none), resolving the HTTP API's DefaultAuthorizer.
func (tp *samTemplate) routes(t *testing.T) map[string]route {
	t.Helper()
	def := tp.httpAPI(t).Auth.DefaultAuthorizer
	routes := map[string]route{}
	for _, id := range tp.resourcesOfType("AWS::Serverless::Function") {
		for name, ev := range tp.function(t, id).Events {
			if ev.Type != "HttpApi" && ev.Type != "Api" {
				continue
			}
			e := decodeInto[samHTTPAPIEvent](t, ev.Properties)
			key := strings.ToUpper(e.Method) + " " + e.Path
			if _, dup := routes[key]; dup {
				t.Errorf("%s.%s: %s is served twice", id, name, key)
			}
			auth := e.Auth.Authorizer
			if auth == "" {
				auth = def
			}
			if auth == "NONE" {
				auth = ""
			}
			routes[key] = route{function: id, authorizer: auth, event: e}
		}
	}
	return routes
}

// eval evaluates the intrinsics the tests need (Ref to parameters, Fn::If,
// Fn::Equals, Fn::Not, Fn::Sub of parameters, Fn::FindInMap) for the given
// parameter values.
func (tp *samTemplate) eval(v any, params map[string]string) (any, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return v, nil
	}
	for fn, arg := range m {
		args := asList(arg)
		switch fn {
		case "Ref":
			name := fmt.Sprint(arg)
			if p, ok := params[name]; ok {
				return p, nil
			}
			if p, ok := tp.Parameters[name]; ok && p.Default != nil {
				return fmt.Sprint(p.Default), nil
			}
			return nil, fmt.Errorf("no value for %s", name)
		case "Condition":
			return tp.eval(tp.Conditions[fmt.Sprint(arg)], params)
		case "Fn::Equals":
			a, err := tp.eval(args[0], params)
			if err != nil {
				return nil, err
			}
			b, err := tp.eval(args[1], params)
			if err != nil {
				return nil, err
			}
			return fmt.Sprint(a) == fmt.Sprint(b), nil
		case "Fn::Not":
			b, err := tp.eval(args[0], params)
			if err != nil {
				return nil, err
			}
			return b != true, nil
		case "Fn::If":
			cond, ok := tp.Conditions[fmt.Sprint(args[0])]
			if !ok {
				return nil, fmt.Errorf("no condition %v", args[0])
			}
			b, err := tp.eval(cond, params)
			if err != nil {
				return nil, err
			}
			if b == true {
				return tp.eval(args[1], params)
			}
			return tp.eval(args[2], params)
		case "Fn::Sub":
			s, ok := arg.(string)
			if !ok {
				return nil, fmt.Errorf("Fn::Sub with variables is not evaluated here")
			}
			var err error
			out := subVariable.ReplaceAllStringFunc(s, func(x string) string {
				r, e := tp.eval(map[string]any{"Ref": x[2 : len(x)-1]}, params)
				if e != nil {
					err = e
				}
				return fmt.Sprint(r)
			})
			return out, err
		case "Fn::FindInMap":
			var keys [3]string
			for i := range keys {
				k, err := tp.eval(args[i], params)
				if err != nil {
					return nil, err
				}
				keys[i] = fmt.Sprint(k)
			}
			val, ok := tp.Mappings[keys[0]][keys[1]][keys[2]]
			if !ok {
				return nil, fmt.Errorf("mapping %v has no value", keys)
			}
			return val, nil
		}
		return nil, fmt.Errorf("%s is not evaluated here", fn)
	}
	return nil, nil
}

var subVariable = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// checkReferences makes sure every Ref, GetAtt, Sub variable, condition and
// mapping the template names exists: the schema cannot see a typo in a name.
func (tp *samTemplate) checkReferences() error {
	var raw any
	if err := json.Unmarshal(tp.raw, &raw); err != nil {
		return err
	}
	var problems []string
	known := func(name string) bool {
		if strings.HasPrefix(name, "AWS::") {
			return true
		}
		if _, ok := tp.Parameters[name]; ok {
			return true
		}
		_, ok := tp.Resources[name]
		return ok
	}
	// SAM generates <Function>Role for each function without a Role.
	resourceOrGenerated := func(name string) bool {
		if _, ok := tp.Resources[name]; ok {
			return true
		}
		fn, ok := strings.CutSuffix(name, "Role")
		return ok && tp.Resources[fn].Type == "AWS::Serverless::Function"
	}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s[%d]", where, i), c)
			}
		case map[string]any:
			if len(v) == 1 {
				for fn, arg := range v {
					args := asList(arg)
					switch fn {
					case "Ref":
						if !known(fmt.Sprint(arg)) {
							problems = append(problems, fmt.Sprintf("%s: !Ref %v names nothing", where, arg))
						}
					case "Fn::GetAtt":
						if len(args) != 2 || !resourceOrGenerated(fmt.Sprint(args[0])) {
							problems = append(problems, fmt.Sprintf("%s: !GetAtt %v names no resource", where, arg))
						}
					case "Fn::Sub":
						s, _ := args[0].(string)
						vars := map[string]any{}
						if len(args) > 1 {
							vars, _ = args[1].(map[string]any)
						}
						for _, m := range subVariable.FindAllStringSubmatch(s, -1) {
							name, _, dotted := strings.Cut(m[1], ".")
							if _, ok := vars[name]; ok {
								continue
							}
							if dotted && !resourceOrGenerated(name) || !dotted && !known(name) {
								problems = append(problems, fmt.Sprintf("%s: !Sub ${%s} names nothing", where, m[1]))
							}
						}
					case "Fn::If", "Condition":
						if _, ok := tp.Conditions[fmt.Sprint(args[0])]; !ok {
							problems = append(problems, fmt.Sprintf("%s: condition %v is not declared", where, args[0]))
						}
					case "Fn::FindInMap":
						if _, ok := tp.Mappings[fmt.Sprint(args[0])]; !ok {
							problems = append(problems, fmt.Sprintf("%s: mapping %v is not declared", where, args[0]))
						}
					}
				}
			}
			for k, c := range v {
				walk(where+"."+k, c)
			}
		}
	}
	walk("", raw)
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("unresolved names in template.yaml:\n%s", strings.Join(problems, "\n"))
	}
	return nil
}

// ---------------------------------------------------------------- helpers

func decodeInto[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	return v
}

// decodeStrict decodes JSON into T, failing on fields T does not know.
func decodeStrict[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	return v
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func asRef(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	s, ok := m["Ref"].(string)
	return s, ok
}

func isRefTo(v any, name string) bool {
	r, ok := asRef(v)
	return ok && r == name
}

func asGetAtt(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for _, a := range asList(m["Fn::GetAtt"]) {
		s, ok := a.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

func asNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case string:
		f, err := strconv.ParseFloat(n, 64)
		return f, err == nil
	}
	return 0, false
}

func mustNumber(t *testing.T, what string, v any) float64 {
	t.Helper()
	n, ok := asNumber(v)
	if !ok {
		t.Fatalf("%s = %v, want a literal number the tests can compare", what, v)
	}
	return n
}

func walkStrings(v any, where string, f func(where, s string)) {
	switch v := v.(type) {
	case string:
		f(where, v)
	case []any:
		for i, c := range v {
			walkStrings(c, fmt.Sprintf("%s[%d]", where, i), f)
		}
	case map[string]any:
		for k, c := range v {
			f(where+"."+k, k)
			walkStrings(c, where+"."+k, f)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func assertSameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
