package keybuzzamazon

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/cfn"
)

// Least privilege: each function keeps SAM's own role and its Policies, and
// may send to exactly the queues its row of samFunctions names.

// policyTemplates are the SAM policy templates this test understands, with
// the queue each lets a function send to: "" for none, "QueueName" for the
// queue its QueueName argument names. A template not listed fails the test.
var policyTemplates = map[string]string{
	"SQSSendMessagePolicy":                  "QueueName",
	"SQSPollerPolicy":                       "",
	"VPCAccessPolicy":                       "",
	"AWSSecretsManagerGetSecretValuePolicy": "",
	"CloudWatchPutMetricPolicy":             "",
}

// anyQueue stands for "every queue" in what a policy lets a function send to.
const anyQueue = "*"

func TestTemplateQueueSendersAreListed(t *testing.T) {
	tmpl := loadTemplate(t)
	for _, f := range samFunctions {
		fn := function(t, tmpl, f.id)
		res := tmpl.Resources[f.id]
		if fn.Role != nil {
			t.Errorf("%s uses its own Role; keep SAM's per-function role so Policies stay least privilege", f.id)
		}
		if len(res.Connectors) > 0 {
			t.Errorf("%s has Connectors; this test only understands Policies", f.id)
		}
		got := policiesSendTo(t.Errorf, f.id, fn.Policies)
		want := slices.Clone(f.sendsTo)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s may send to queues %v, want %v (samFunctions)", f.id, got, want)
		}
	}
	// Nothing else grants SQS rights behind the functions' back: the
	// notifications queue's policy lets only Amazon in (its own test); any
	// other queue policy may only admit an AWS service (SNS delivering to
	// the mail queue) under a condition naming its source.
	for id, r := range tmpl.Resources {
		if id == notificationsQueuePolicyID {
			continue
		}
		switch r.Type {
		case "AWS::SQS::QueuePolicy":
			if !serviceOnlyQueuePolicy(decodeInto[map[string]any](t, r.Properties)) {
				t.Errorf("resource %s (%s): a queue policy may only admit a service principal with an aws:SourceArn condition", id, r.Type)
			}
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role", "AWS::Serverless::Connector":
			t.Errorf("resource %s (%s): grant SQS access through the function's Policies only", id, r.Type)
		}
	}
	// And pollfanout sends to this queue.
	fn := function(t, tmpl, fanoutID)
	if !cfn.IsRefTo(tmpl.EffectiveEnv(fn)["POLL_QUEUE_URL"], pollQueueID) {
		t.Errorf("%s POLL_QUEUE_URL = %v, want !Ref %s", fanoutID, tmpl.EffectiveEnv(fn)["POLL_QUEUE_URL"], pollQueueID)
	}
	for id, env := range allEffectiveEnv(t, tmpl) {
		if _, ok := env["POLL_QUEUE_URL"]; ok && id != fanoutID {
			t.Errorf("%s has POLL_QUEUE_URL but may not send to the queue", id)
		}
	}
}

// serviceOnlyQueuePolicy: every statement allows a Service principal, and
// only under an aws:SourceArn condition.
func serviceOnlyQueuePolicy(props map[string]any) bool {
	doc, _ := props["PolicyDocument"].(map[string]any)
	stmts := cfn.AsList(doc["Statement"])
	if len(stmts) == 0 {
		return false
	}
	for _, s := range stmts {
		stmt, _ := s.(map[string]any)
		principal, _ := stmt["Principal"].(map[string]any)
		if _, ok := principal["Service"]; !ok || len(principal) != 1 {
			return false
		}
		cond, _ := stmt["Condition"].(map[string]any)
		found := false
		for _, c := range cond {
			m, _ := c.(map[string]any)
			for k := range m {
				found = found || strings.EqualFold(k, "aws:SourceArn")
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// policiesSendTo lists, sorted and once each, the queues a function's SAM
// Policies let it call sqs:SendMessage on (anyQueue when it cannot tell
// which). Anything it cannot read is reported to errorf (t.Errorf): a
// failure, not a pass.
func policiesSendTo(errorf func(format string, args ...any), id string, policies any) []string {
	var list []any
	switch p := policies.(type) {
	case nil:
		return nil
	case []any:
		list = p
	default:
		list = []any{p}
	}
	var queues []string
	for _, p := range list {
		switch p := p.(type) {
		case string: // a managed policy
			if strings.Contains(strings.ToUpper(p), "SQS") || strings.Contains(p, "Admin") || strings.Contains(p, "PowerUser") {
				errorf("%s: managed policy %s is broader than least privilege", id, p)
				queues = append(queues, anyQueue)
			}
		case map[string]any:
			if stmts, ok := p["Statement"]; ok {
				for _, s := range cfn.AsList(stmts) {
					stmt, _ := s.(map[string]any)
					if stmt["Effect"] == "Allow" && actionsMatch(stmt["Action"], "sqs:SendMessage") {
						queues = append(queues, statementQueues(stmt["Resource"])...)
					}
				}
				continue
			}
			for name, args := range p {
				arg, known := policyTemplates[name]
				switch {
				case !known:
					errorf("%s: policy template %s is not known to this test; add it to policyTemplates with what it grants", id, name)
				case arg != "":
					q, _ := args.(map[string]any)
					att := cfn.AsGetAtt(q[arg])
					if len(att) != 2 || att[1] != "QueueName" {
						errorf("%s: %s on %v, want !GetAtt <Queue>.QueueName", id, name, q[arg])
						queues = append(queues, anyQueue)
						continue
					}
					queues = append(queues, att[0])
				}
			}
		default:
			errorf("%s: cannot read policy %v", id, p)
		}
	}
	slices.Sort(queues)
	return slices.Compact(queues)
}

// statementQueues are the queues an IAM statement's Resource names with
// !GetAtt <Queue>.Arn; anything else may be every queue.
func statementQueues(resource any) []string {
	var queues []string
	for _, r := range cfn.AsList(resource) {
		if att := cfn.AsGetAtt(r); len(att) == 2 && att[1] == "Arn" {
			queues = append(queues, att[0])
		} else {
			queues = append(queues, anyQueue)
		}
	}
	return queues
}

// actionsMatch reports whether an IAM Action (string or list, with * and ?
// wildcards, case-insensitive) allows action.
func actionsMatch(actions any, action string) bool {
	for _, a := range cfn.AsList(actions) {
		s, _ := a.(string)
		pattern := "(?i)^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(s)) + "$"
		if regexp.MustCompile(pattern).MatchString(action) {
			return true
		}
	}
	return false
}

// TestPoliciesSendTo holds the reader above to what it promises: a test that
// cannot tell a sender from a non-sender proves nothing.
func TestPoliciesSendTo(t *testing.T) {
	att := func(res, a string) any { return map[string]any{"Fn::GetAtt": []any{res, a}} }
	cases := []struct {
		name     string
		policies any
		want     []string
	}{
		{"none", nil, nil},
		{"send policy", []any{map[string]any{"SQSSendMessagePolicy": map[string]any{"QueueName": att("Q", "QueueName")}}}, []string{"Q"}},
		{"poller only", []any{map[string]any{"SQSPollerPolicy": map[string]any{"QueueName": att("Q", "QueueName")}}}, nil},
		{"statement on a queue", map[string]any{"Statement": []any{map[string]any{
			"Effect": "Allow", "Action": []any{"sqs:Send*"}, "Resource": att("Q", "Arn")}}}, []string{"Q"}},
		{"statement on everything", []any{map[string]any{"Statement": map[string]any{
			"Effect": "Allow", "Action": "SQS:*", "Resource": "*"}}}, []string{anyQueue}},
		{"denied", []any{map[string]any{"Statement": map[string]any{
			"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": "*"}}}, nil},
		{"other action", []any{map[string]any{"Statement": map[string]any{
			"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"}}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := policiesSendTo(t.Errorf, "Fn", tc.policies); !slices.Equal(got, tc.want) {
				t.Errorf("policiesSendTo = %v, want %v", got, tc.want)
			}
		})
	}
	// What it cannot read, or reads as too broad, fails the test.
	for name, p := range map[string]any{
		"unknown template": []any{map[string]any{"S3CrudPolicy": map[string]any{}}},
		"managed SQS":      []any{"AmazonSQSFullAccess"},
		"send to a name":   []any{map[string]any{"SQSSendMessagePolicy": map[string]any{"QueueName": "poll"}}},
		"unreadable":       []any{42},
	} {
		var reported []string
		policiesSendTo(func(format string, args ...any) { reported = append(reported, fmt.Sprintf(format, args...)) }, "Fn", p)
		if len(reported) == 0 {
			t.Errorf("%s: policiesSendTo reported nothing", name)
		}
	}
}

const (
	notificationsQueuePolicyID = "NotificationsQueuePolicy"
	mailQueuePolicyID          = "MailQueuePolicy"      // SNS's mail topic only (serviceOnlyQueuePolicy)
	sesEventsQueuePolicyID     = "SesEventsQueuePolicy" // SNS's SES-events topic only (serviceOnlyQueuePolicy)
)

// TestTemplateNotificationsQueuePolicy: Amazon's notifications principal,
// and only it, may send to the notifications queue and read its attributes;
// the policy grants nothing else and no other queue.
func TestTemplateNotificationsQueuePolicy(t *testing.T) {
	tmpl := loadTemplate(t)
	if got := tmpl.ResourcesOfType("AWS::SQS::QueuePolicy"); !slices.Equal(got, []string{mailQueuePolicyID, notificationsQueuePolicyID, sesEventsQueuePolicyID}) {
		t.Fatalf("queue policies = %v, want only %s, %s and %s", got, mailQueuePolicyID, notificationsQueuePolicyID, sesEventsQueuePolicyID)
	}
	p := decodeInto[struct {
		Queues         []any
		PolicyDocument struct {
			Version   string
			Statement []struct {
				Effect    string
				Principal map[string]any
				Action    any
				Resource  any
				Condition any
			}
		}
	}](t, tmpl.Resources[notificationsQueuePolicyID].Properties)
	if len(p.Queues) != 1 || !cfn.IsRefTo(p.Queues[0], notificationsQueueID) {
		t.Errorf("Queues = %v, want [!Ref %s]", p.Queues, notificationsQueueID)
	}
	if len(p.PolicyDocument.Statement) != 1 {
		t.Fatalf("%d statements, want 1", len(p.PolicyDocument.Statement))
	}
	st := p.PolicyDocument.Statement[0]
	if st.Effect != "Allow" || len(st.Principal) != 1 || st.Principal["AWS"] != amazonNotificationsPrincipal {
		t.Errorf("Effect %s, Principal %v: want Allow for AWS %s only", st.Effect, st.Principal, amazonNotificationsPrincipal)
	}
	actions, _ := st.Action.([]any)
	got := []string{}
	for _, a := range actions {
		got = append(got, fmt.Sprint(a))
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"sqs:GetQueueAttributes", "sqs:SendMessage"}) {
		t.Errorf("Action = %v, want exactly sqs:SendMessage and sqs:GetQueueAttributes", st.Action)
	}
	if att := cfn.AsGetAtt(st.Resource); !slices.Equal(att, []string{notificationsQueueID, "Arn"}) {
		t.Errorf("Resource = %v, want !GetAtt %s.Arn", st.Resource, notificationsQueueID)
	}
	// The queue is standard (Amazon does not deliver to FIFO queues) and
	// dead-letters into an alarmed queue.
	q := decodeInto[cfn.Queue](t, resource(t, tmpl, notificationsQueueID, "AWS::SQS::Queue").Properties)
	if q.RedrivePolicy == nil || !slices.Equal(cfn.AsGetAtt(q.RedrivePolicy.DeadLetterTargetArn), []string{notificationsDLQID, "Arn"}) {
		t.Errorf("%s RedrivePolicy = %+v, want the dead-letter queue %s", notificationsQueueID, q.RedrivePolicy, notificationsDLQID)
	}
	fifo := decodeInto[struct{ FifoQueue any }](t, tmpl.Resources[notificationsQueueID].Properties)
	if fifo.FifoQueue != nil {
		t.Errorf("%s FifoQueue = %v: Amazon delivers to standard queues only", notificationsQueueID, fifo.FifoQueue)
	}
	var alarmed bool
	for _, id := range tmpl.ResourcesOfType("AWS::CloudWatch::Alarm") {
		a := decodeInto[cfn.Alarm](t, tmpl.Resources[id].Properties)
		for _, d := range a.Dimensions {
			if d.Name == "QueueName" && slices.Equal(cfn.AsGetAtt(d.Value), []string{notificationsDLQID, "QueueName"}) &&
				a.MetricName == "ApproximateNumberOfMessagesVisible" && a.ComparisonOperator == "GreaterThanThreshold" {
				alarmed = true
			}
		}
	}
	if !alarmed {
		t.Errorf("no alarm on %s's depth", notificationsDLQID)
	}
	// Every function knows the queue's ARN (the destination it subscribes
	// connections to).
	for id, env := range allEffectiveEnv(t, tmpl) {
		if !slices.Equal(cfn.AsGetAtt(env["NOTIFICATIONS_QUEUE_ARN"]), []string{notificationsQueueID, "Arn"}) {
			t.Errorf("%s NOTIFICATIONS_QUEUE_ARN = %v, want !GetAtt %s.Arn", id, env["NOTIFICATIONS_QUEUE_ARN"], notificationsQueueID)
		}
	}
}
