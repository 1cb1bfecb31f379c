package cfn

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

const samTemplate = `
Globals:
  Function:
    Runtime: provided.al2023
    Timeout: 10
    Environment:
      Variables:
        SHARED: global
        OVERRIDDEN: global
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
  Guarded:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 30
      Environment:
        Variables:
          OVERRIDDEN: own
      Events:
        Get:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: get, Path: /a}
        Other:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: POST, Path: /b, Auth: {Authorizer: Admin}}
  Open:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Callback:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: /cb, Auth: {Authorizer: NONE}}
        Tick:
          Type: Schedule
          Properties: {Schedule: rate(1 minute)}
  Queue:
    Type: AWS::SQS::Queue
`

func TestTemplateResources(t *testing.T) {
	tp := mustParse(t, samTemplate)
	if got, want := tp.ResourcesOfType("AWS::Serverless::Function"), []string{"Guarded", "Open"}; !slices.Equal(got, want) {
		t.Errorf("ResourcesOfType = %v, want %v", got, want)
	}
	if got := tp.ResourcesOfType("AWS::SNS::Topic"); len(got) != 0 {
		t.Errorf("ResourcesOfType(SNS) = %v, want none", got)
	}
	for _, tc := range []struct{ id, typ, wantErr string }{
		{"Queue", "AWS::SQS::Queue", ""},
		{"Queue", "AWS::SNS::Topic", `resource Queue: type "AWS::SQS::Queue", want AWS::SNS::Topic`},
		{"Missing", "AWS::SQS::Queue", `resource Missing: type ""`},
	} {
		_, err := tp.Resource(tc.id, tc.typ)
		if (tc.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Resource(%s, %s) = %v, want %q", tc.id, tc.typ, err, tc.wantErr)
		}
	}
	if _, err := tp.Function("Queue"); err == nil {
		t.Error("Function(Queue) succeeded on a queue")
	}
}

func TestTemplateEffective(t *testing.T) {
	tp := mustParse(t, samTemplate)
	guarded, err := tp.Function("Guarded")
	if err != nil {
		t.Fatal(err)
	}
	open, err := tp.Function("Open")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		fn   Function
		prop string
		want any
	}{
		{"own value wins", guarded, "Timeout", float64(30)},
		{"Globals fills in", open, "Timeout", float64(10)},
		{"Globals only", guarded, "Runtime", "provided.al2023"},
		{"set nowhere", open, "MemorySize", nil},
	}
	for _, tc := range cases {
		if got := tp.Effective(tc.fn, tc.prop); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Effective(%s) = %#v, want %#v", tc.name, tc.prop, got, tc.want)
		}
	}

	all, err := tp.AllEffectiveEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]any{
		"Guarded": {"SHARED": "global", "OVERRIDDEN": "own"},
		"Open":    {"SHARED": "global", "OVERRIDDEN": "global"},
	}
	if !reflect.DeepEqual(all, want) {
		t.Errorf("AllEffectiveEnv = %v, want %v", all, want)
	}
}

func TestTemplateRoutes(t *testing.T) {
	tp := mustParse(t, samTemplate)
	routes, err := tp.Routes("Api")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ fn, auth string }{
		"GET /a":  {"Guarded", "Jwt"},   // DefaultAuthorizer; method upper-cased
		"POST /b": {"Guarded", "Admin"}, // its own authorizer
		"GET /cb": {"Open", ""},         // NONE
	}
	if len(routes) != len(want) {
		t.Errorf("Routes = %v, want %d routes (the Schedule event is no route)", routes, len(want))
	}
	for key, w := range want {
		r, ok := routes[key]
		if !ok || r.Function != w.fn || r.Authorizer != w.auth {
			t.Errorf("route %s = %+v, want function %s authorizer %q", key, r, w.fn, w.auth)
		}
	}
	if !IsRefTo(routes["GET /a"].Event.ApiId, "Api") {
		t.Errorf("route event ApiId = %v", routes["GET /a"].Event.ApiId)
	}

	dup := strings.Replace(samTemplate, "Path: /cb", "Path: /a", 1)
	if _, err := mustParse(t, dup).Routes("Api"); err == nil || !strings.Contains(err.Error(), "GET /a is served twice") {
		t.Errorf("Routes with a route served twice = %v, want an error", err)
	}
	if _, err := tp.Routes("Queue"); err == nil {
		t.Error("Routes of a queue succeeded")
	}
}
