package keybuzzamazon

import (
	"bytes"
	"encoding/json"
	"os"
	"sort"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/cfn"
)

// The deployment's promises, written once and checked against template.yaml
// by the template_*_test.go files (read through dev/cfn), events_test.go and
// samconfig_test.go.

// samFunctions is the deployment's function list: one row per
// AWS::Serverless::Function of template.yaml. A new function is a new row;
// the tests then hold it to a package under functions/, a build, its own log
// group, an event file in events/ and a section of events/env.json, and to
// exactly the triggers, routes and queues its row names.
var samFunctions = []samFunction{
	{id: "OAuthStartFunction", dir: "oauthstart", trigger: "HttpApi",
		routes: []apiRoute{{"POST", "/api/v1/marketplaces/amazon/oauth/start", true}}},
	{id: "OAuthCallbackFunction", dir: "oauthcallback", trigger: "HttpApi",
		routes: []apiRoute{{"GET", "/api/v1/marketplaces/amazon/oauth/callback", false}}},
	{id: "OAuthLoginFunction", dir: "oauthlogin", trigger: "HttpApi",
		routes: []apiRoute{{"GET", "/api/v1/marketplaces/amazon/oauth/login", false}}},
	{id: "StatusFunction", dir: "status", trigger: "HttpApi",
		routes: []apiRoute{{"GET", "/api/v1/marketplaces/amazon/status", true}, {"GET", "/api/v1/marketplaces/amazon/inbound-address", true}}},
	{id: "DisconnectFunction", dir: "disconnect", trigger: "HttpApi",
		routes: []apiRoute{{"POST", "/api/v1/marketplaces/amazon/disconnect", true}}},
	{id: fanoutID, dir: "pollfanout", trigger: "Schedule", sendsTo: []string{pollQueueID, replyQueueID}},
	{id: pollTenantID, dir: "polltenant", trigger: "SQS", consumes: pollQueueID},
	{id: orderNotifyID, dir: "ordernotify", trigger: "SQS", consumes: notificationsQueueID},
	{id: "InboundMailFunction", dir: "inboundmail", trigger: "SQS", consumes: mailQueueID},
	{id: "SendReplyFunction", dir: "sendreply", trigger: "HttpApi", sendsTo: []string{replyQueueID},
		routes: []apiRoute{{"POST", "/api/v1/marketplaces/amazon/tickets/{ticketId}/send-reply", true}}},
	{id: "OutboundFunction", dir: "outbound", trigger: "HttpApi",
		routes: []apiRoute{{"GET", "/api/v1/marketplaces/amazon/tickets/{ticketId}/outbound", true}}},
	{id: "ReplySenderFunction", dir: "replysender", trigger: "SQS", consumes: replyQueueID},
	{id: "SesEventsFunction", dir: "sesevents", trigger: "SQS", consumes: sesEventsQueueID},
}

type samFunction struct {
	id  string // logical id in template.yaml
	dir string // its package under functions/ and its event events/<dir>.json

	// trigger is the type of every event of the function: "HttpApi",
	// "Schedule" or "SQS".
	trigger  string
	routes   []apiRoute // HttpApi: the routes it serves
	consumes string     // SQS: the queue it consumes
	sendsTo  []string   // the queues it may send to (sqs:SendMessage)
}

// apiRoute is one route of the HTTP API; authorized says whether the JWT
// authorizer guards it.
type apiRoute struct {
	method, path string
	authorized   bool
}

const (
	templatePath     = "template.yaml"
	samSchemaPath    = "testdata/sam/sam.schema.json"
	pollQueueID      = "PollQueue"
	pollDLQID        = "PollDeadLetterQueue"
	mailQueueID      = "MailQueue"
	replyQueueID     = "ReplyQueue"
	sesEventsQueueID = "SesEventsQueue"
	fanoutID         = "PollFanoutFunction"
	pollTenantID     = "PollTenantFunction"
	httpAPIID        = "HttpApi"

	orderNotifyID        = "OrderNotifyFunction"
	notificationsQueueID = "NotificationsQueue"
	notificationsDLQID   = "NotificationsDeadLetterQueue"
	// amazonNotificationsPrincipal is the AWS account the Notifications API
	// sends from (Amazon's Notifications API guide, "Grant Selling Partner
	// API permission to write to your SQS queue").
	amazonNotificationsPrincipal = "arn:aws:iam::437568002678:root"
)

// ------------------------------------------------ template.yaml, for a test

func loadTemplate(t *testing.T) *cfn.Template {
	t.Helper()
	src, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := cfn.Parse(src)
	if err != nil {
		t.Fatalf("%s: %v", templatePath, err)
	}
	return tmpl
}

func resource(t *testing.T, tmpl *cfn.Template, id, typ string) cfn.Resource {
	t.Helper()
	r, err := tmpl.Resource(id, typ)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func function(t *testing.T, tmpl *cfn.Template, id string) cfn.Function {
	t.Helper()
	return decodeInto[cfn.Function](t, resource(t, tmpl, id, "AWS::Serverless::Function").Properties)
}

func httpAPI(t *testing.T, tmpl *cfn.Template) cfn.HTTPAPI {
	t.Helper()
	return decodeInto[cfn.HTTPAPI](t, resource(t, tmpl, httpAPIID, "AWS::Serverless::HttpApi").Properties)
}

func allEffectiveEnv(t *testing.T, tmpl *cfn.Template) map[string]map[string]any {
	t.Helper()
	all, err := tmpl.AllEffectiveEnv()
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// routes are the HTTP API's routes; a route served twice fails the test.
func routes(t *testing.T, tmpl *cfn.Template) map[string]cfn.Route {
	t.Helper()
	r, err := tmpl.Routes(httpAPIID)
	if r == nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Error(err)
	}
	return r
}

// ------------------------------------------------------------------ helpers

func decodeInto[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	v, err := cfn.Decode[T](raw)
	if err != nil {
		t.Fatal(err)
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

func mustNumber(t *testing.T, what string, v any) float64 {
	t.Helper()
	n, ok := cfn.AsNumber(v)
	if !ok {
		t.Fatalf("%s = %v, want a literal number the tests can compare", what, v)
	}
	return n
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
