package cfn

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Template is the part of a SAM template its tests read, in long form.
type Template struct {
	Parameters map[string]Parameter
	Mappings   map[string]map[string]map[string]any
	Conditions map[string]any
	Globals    struct{ Function Function }
	Resources  map[string]Resource
	Outputs    map[string]struct{ Value any }

	raw []byte // the whole template as JSON
}

// Parameter is one entry of the Parameters section.
type Parameter struct {
	Type          string
	Default       any
	AllowedValues []any
	MinValue      *float64
	NoEcho        any
}

// Resource is one entry of the Resources section; Properties are decoded by
// type with Decode.
type Resource struct {
	Type       string
	Condition  string
	Metadata   map[string]any
	Connectors map[string]any
	Properties json.RawMessage
}

// Function is the Properties of an AWS::Serverless::Function (and the
// Globals' Function section).
type Function struct {
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

// HTTPAPIEvent is the Properties of a function's HttpApi event.
type HTTPAPIEvent struct {
	ApiId                any
	Method               string
	Path                 string
	PayloadFormatVersion any
	Auth                 struct{ Authorizer string }
}

// HTTPAPI is the Properties of an AWS::Serverless::HttpApi.
type HTTPAPI struct {
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
		AllowOrigins     []any
		AllowHeaders     []string
		AllowCredentials bool
	}
	DefaultRouteSettings RouteSettings
	// RouteSettings are per route key ("GET /path").
	RouteSettings map[string]RouteSettings
}

// RouteSettings is an HTTP API route's throttling.
type RouteSettings struct {
	ThrottlingBurstLimit int
	ThrottlingRateLimit  float64
}

// SQSEvent is the Properties of a function's SQS event.
type SQSEvent struct {
	Queue                          any
	BatchSize                      any
	MaximumBatchingWindowInSeconds any
	FunctionResponseTypes          []string
	ScalingConfig                  struct{ MaximumConcurrency any }
}

// Queue is the Properties of an AWS::SQS::Queue.
type Queue struct {
	VisibilityTimeout      any
	MessageRetentionPeriod any
	RedrivePolicy          *struct {
		DeadLetterTargetArn any `json:"deadLetterTargetArn"`
		MaxReceiveCount     any `json:"maxReceiveCount"`
	}
}

// Alarm is the Properties of an AWS::CloudWatch::Alarm.
type Alarm struct {
	Namespace, MetricName, ComparisonOperator string
	Threshold                                 any
	Dimensions                                []struct {
		Name  string
		Value any
	}
}

// Route is what one "METHOD /path" of an HTTP API reaches.
type Route struct {
	Function   string // logical id of the function
	Authorizer string // "" when no authorizer guards the route
	Event      HTTPAPIEvent
}

// Parse reads a template written in YAML (short or long form).
func Parse(src []byte) (*Template, error) {
	raw, err := ToJSON(src)
	if err != nil {
		return nil, err
	}
	tp := Template{raw: raw}
	if err := json.Unmarshal(raw, &tp); err != nil {
		return nil, err
	}
	return &tp, nil
}

// JSON is the whole template in long-form JSON.
func (tp *Template) JSON() []byte { return tp.raw }

// Decode decodes a resource's or event's Properties into T.
func Decode[T any](raw json.RawMessage) (T, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("decode %T: %w", v, err)
	}
	return v, nil
}

// ResourcesOfType lists the logical ids of the resources of a type, sorted.
func (tp *Template) ResourcesOfType(typ string) []string {
	var ids []string
	for id, r := range tp.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Resource is the resource id, which must be of type typ.
func (tp *Template) Resource(id, typ string) (Resource, error) {
	r, ok := tp.Resources[id]
	if !ok || r.Type != typ {
		return r, fmt.Errorf("resource %s: type %q, want %s", id, r.Type, typ)
	}
	return r, nil
}

// Function is the Properties of the AWS::Serverless::Function id, as
// written (Effective and EffectiveEnv add the Globals).
func (tp *Template) Function(id string) (Function, error) {
	r, err := tp.Resource(id, "AWS::Serverless::Function")
	if err != nil {
		return Function{}, err
	}
	return Decode[Function](r.Properties)
}

// HTTPAPI is the Properties of the AWS::Serverless::HttpApi id.
func (tp *Template) HTTPAPI(id string) (HTTPAPI, error) {
	r, err := tp.Resource(id, "AWS::Serverless::HttpApi")
	if err != nil {
		return HTTPAPI{}, err
	}
	return Decode[HTTPAPI](r.Properties)
}

// Effective is a function property as SAM resolves it: the function's own
// value, else the Globals one. prop names a Function field that holds an
// interface, slice or map (it panics on any other).
func (tp *Template) Effective(fn Function, prop string) any {
	own := reflect.ValueOf(fn).FieldByName(prop)
	if !own.IsNil() {
		return own.Interface()
	}
	return reflect.ValueOf(tp.Globals.Function).FieldByName(prop).Interface()
}

// EffectiveEnv merges Globals' environment with the function's, as SAM does.
func (tp *Template) EffectiveEnv(fn Function) map[string]any {
	env := map[string]any{}
	for k, v := range tp.Globals.Function.Environment.Variables {
		env[k] = v
	}
	for k, v := range fn.Environment.Variables {
		env[k] = v
	}
	return env
}

// AllEffectiveEnv is EffectiveEnv of every function, by logical id.
func (tp *Template) AllEffectiveEnv() (map[string]map[string]any, error) {
	all := map[string]map[string]any{}
	for _, id := range tp.ResourcesOfType("AWS::Serverless::Function") {
		fn, err := tp.Function(id)
		if err != nil {
			return nil, err
		}
		all[id] = tp.EffectiveEnv(fn)
	}
	return all, nil
}

// Routes maps "METHOD /path" to what it reaches, resolving the
// DefaultAuthorizer of the HTTP API apiID ("NONE" means no authorizer). A
// route served twice is reported in the error; the map then holds the last.
func (tp *Template) Routes(apiID string) (map[string]Route, error) {
	api, err := tp.HTTPAPI(apiID)
	if err != nil {
		return nil, err
	}
	def := api.Auth.DefaultAuthorizer
	routes := map[string]Route{}
	var dups []string
	for _, id := range tp.ResourcesOfType("AWS::Serverless::Function") {
		fn, err := tp.Function(id)
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(fn.Events))
		for name := range fn.Events {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			ev := fn.Events[name]
			if ev.Type != "HttpApi" && ev.Type != "Api" {
				continue
			}
			e, err := Decode[HTTPAPIEvent](ev.Properties)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", id, name, err)
			}
			key := strings.ToUpper(e.Method) + " " + e.Path
			if _, dup := routes[key]; dup {
				dups = append(dups, fmt.Sprintf("%s.%s: %s is served twice", id, name, key))
			}
			auth := e.Auth.Authorizer
			if auth == "" {
				auth = def
			}
			if auth == "NONE" {
				auth = ""
			}
			routes[key] = Route{Function: id, Authorizer: auth, Event: e}
		}
	}
	if len(dups) > 0 {
		return routes, fmt.Errorf("%s", strings.Join(dups, "\n"))
	}
	return routes, nil
}
