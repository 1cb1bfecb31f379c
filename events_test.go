package keybuzzamazon

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	"github.com/keybuzz/keybuzz-amazon/dev/cfn"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
)

// events/: one event per function, as AWS would deliver it, that decodes
// into aws-lambda-go's type with no unknown field; and events/env.json, the
// local run's environment, which sam local applies only to declared names.

// pollJob is the body pollfanout sends and polltenant reads.
type pollJob struct {
	TenantID     string    `json:"tenantId"`
	ConnectionID string    `json:"connectionId"`
	EnqueuedAt   time.Time `json:"enqueuedAt"`
}

func TestEventsDecode(t *testing.T) {
	tmpl := loadTemplate(t)
	routes := routes(t, tmpl)
	local := readEnvJSON(t)["Parameters"]

	for _, f := range samFunctions {
		file := filepath.Join("events", f.dir+".json")
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			switch f.trigger {
			case "HttpApi":
				ev := decodeStrict[events.APIGatewayV2HTTPRequest](t, b)
				checkAPIEvent(t, f.id, ev, routes, local)
			case "Schedule":
				ev := decodeStrict[events.EventBridgeEvent](t, b)
				if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" {
					t.Errorf("detail-type %q, source %q: want a scheduled event", ev.DetailType, ev.Source)
				}
				if ev.Time.IsZero() || len(ev.Resources) != 1 || !strings.HasPrefix(ev.Resources[0], "arn:aws:events:") {
					t.Errorf("time %v, resources %v: want the rule's ARN and a time", ev.Time, ev.Resources)
				}
			case "SQS":
				ev := decodeStrict[events.SQSEvent](t, b)
				checkSQSEvent(t, f.consumes, ev)
			default:
				t.Fatalf("no event check for %s's trigger %s", f.id, f.trigger)
			}
		})
	}
}

// routeMatches says whether the route key "METHOD /a/{p}/b" is method and
// path, with params naming exactly its {p} segments' values.
func routeMatches(key, method, path string, params map[string]string) bool {
	m, pattern, ok := strings.Cut(key, " ")
	if !ok || m != method {
		return false
	}
	ps, segs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(segs) {
		return false
	}
	named := 0
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if segs[i] == "" || params[p[1:len(p)-1]] != segs[i] {
				return false
			}
			named++
		} else if p != segs[i] {
			return false
		}
	}
	return named == len(params)
}

func checkAPIEvent(t *testing.T, id string, ev events.APIGatewayV2HTTPRequest, routes map[string]cfn.Route, local map[string]string) {
	t.Helper()
	rc := ev.RequestContext
	if ev.Version != "2.0" || rc.Stage != "$default" {
		t.Errorf("version %q stage %q, want 2.0 and $default", ev.Version, rc.Stage)
	}
	// routeKey is the template's route; a {param} segment of it matches one
	// segment of rawPath, given in pathParameters.
	key := ev.RouteKey
	if rc.RouteKey != key || rc.HTTP.Path != ev.RawPath || !routeMatches(key, rc.HTTP.Method, ev.RawPath, ev.PathParameters) {
		t.Errorf("routeKey %q / %q, http %s %s, pathParameters %v disagree", ev.RouteKey, rc.RouteKey, rc.HTTP.Method, rc.HTTP.Path, ev.PathParameters)
	}
	r, ok := routes[key]
	if !ok || r.Function != id {
		t.Fatalf("the template sends %s to %q, not %s", key, r.Function, id)
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

	if r.Authorizer == "" {
		if rc.Authorizer != nil || ev.Headers["authorization"] != "" {
			t.Error("a route without authorizer gets no authorizer context and the browser sends no Bearer token")
		}
		want := []string{"state", "spapi_oauth_code", "selling_partner_id"}
		if strings.HasSuffix(ev.RawPath, "/oauth/login") {
			want = []string{"amazon_callback_uri", "amazon_state", "selling_partner_id"}
		}
		for _, p := range want {
			if ev.QueryStringParameters[p] == "" {
				t.Errorf("%s event lacks %s", ev.RawPath, p)
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

// sqsBodies check a message body of each queue a function consumes.
var sqsBodies = map[string]func(t *testing.T, i int, body string){
	mailQueueID: func(t *testing.T, i int, body string) {
		n, err := sesmail.Decode(body)
		if err != nil {
			t.Errorf("record %d: %v", i, err)
			return
		}
		if n.Receipt.Action.Type != "S3" || len(n.Receipt.Recipients) == 0 || n.Receipt.Action.ObjectKey != "raw/"+n.Mail.MessageID {
			t.Errorf("record %d: notification %+v: want an S3 action on raw/<messageId> with recipients", i, n.Receipt)
		}
	},
	pollQueueID: func(t *testing.T, i int, body string) {
		job := decodeStrict[pollJob](t, []byte(body))
		if job.TenantID == "" || job.ConnectionID == "" || job.EnqueuedAt.IsZero() {
			t.Errorf("record %d: body %s lacks tenantId, connectionId or enqueuedAt", i, body)
		}
	},
	// Amazon's ORDER_CHANGE notification, as the intake decodes it.
	notificationsQueueID: func(t *testing.T, i int, body string) {
		if _, err := push.Decode(body); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
	},
	// A reply's job, as send-reply enqueues it.
	replyQueueID: func(t *testing.T, i int, body string) {
		if _, err := reply.DecodeJob(body); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
	},
	// SES's sending event in SNS's envelope, as the configuration set publishes it.
	sesEventsQueueID: func(t *testing.T, i int, body string) {
		e, err := sesmail.DecodeEvent(body)
		if err != nil {
			t.Errorf("record %d: %v", i, err)
			return
		}
		if e.Mail.Tag(reply.TagReply) == "" || e.Mail.Tag(reply.TagTenant) == "" {
			t.Errorf("record %d: event without the reply and tenant tags", i)
		}
	},
}

func checkSQSEvent(t *testing.T, queueID string, ev events.SQSEvent) {
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
		checkBody, ok := sqsBodies[queueID]
		if !ok {
			t.Fatalf("no body check for queue %s: add one to sqsBodies", queueID)
		}
		checkBody(t, i, r.Body)
	}
}

func TestEventsEnvJSON(t *testing.T) {
	tmpl := loadTemplate(t)
	env := readEnvJSON(t)
	all := allEffectiveEnv(t, tmpl)
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
