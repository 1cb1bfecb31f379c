package keybuzzamazon

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/cfn"
)

// The queues and the schedule: each SQS consumer's queue outlasts its
// batches, the poll queue dead-letters into an alarmed queue, and the
// schedule's rate matches the interval the functions are told.

func TestTemplatePollQueueVisibilityTimeout(t *testing.T) {
	tmpl := loadTemplate(t)
	var consumers int
	for _, f := range samFunctions {
		if f.consumes == "" {
			continue
		}
		consumers++
		t.Run(f.id, func(t *testing.T) { checkSQSConsumer(t, tmpl, f.id, f.consumes) })
	}
	if consumers == 0 {
		t.Fatal("no function of samFunctions consumes a queue")
	}
}

// checkSQSConsumer holds function id, which consumes queueID, to Lambda's
// SQS guidance: the queue's visibility timeout outlasts six runs and the
// batching window, batches are small, failures are reported per item, and
// concurrency is capped by a parameter.
func checkSQSConsumer(t *testing.T, tmpl *cfn.Template, id, queueID string) {
	t.Helper()
	fn := function(t, tmpl, id)
	var sqsEvents []cfn.SQSEvent
	for name, ev := range fn.Events {
		if ev.Type != "SQS" {
			t.Errorf("%s has a %s event %s; it should only consume %s", id, ev.Type, name, queueID)
			continue
		}
		sqsEvents = append(sqsEvents, decodeInto[cfn.SQSEvent](t, ev.Properties))
	}
	if len(sqsEvents) != 1 {
		t.Fatalf("%s has %d SQS events, want 1", id, len(sqsEvents))
	}
	ev := sqsEvents[0]
	if att := cfn.AsGetAtt(ev.Queue); !slices.Equal(att, []string{queueID, "Arn"}) {
		t.Fatalf("SQS event Queue = %v, want !GetAtt %s.Arn", ev.Queue, queueID)
	}
	queue := decodeInto[cfn.Queue](t, resource(t, tmpl, queueID, "AWS::SQS::Queue").Properties)

	timeout := mustNumber(t, id+" Timeout", tmpl.Effective(fn, "Timeout"))
	visibility := mustNumber(t, queueID+" VisibilityTimeout", queue.VisibilityTimeout)
	window := 0.0
	if ev.MaximumBatchingWindowInSeconds != nil {
		window = mustNumber(t, "MaximumBatchingWindowInSeconds", ev.MaximumBatchingWindowInSeconds)
	}
	// Lambda's SQS guide: at least 6 x the function timeout, plus the batching window.
	if visibility < 6*timeout+window {
		t.Errorf("VisibilityTimeout %v < 6 x Timeout %v + batching window %v", visibility, timeout, window)
	}
	if timeout > 900 || timeout < 1 {
		t.Errorf("%s Timeout %v is outside Lambda's 1..900 s", id, timeout)
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
	param, ok := cfn.AsRef(ev.ScalingConfig.MaximumConcurrency)
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
	queue := decodeInto[cfn.Queue](t, resource(t, tmpl, pollQueueID, "AWS::SQS::Queue").Properties)
	dlq := decodeInto[cfn.Queue](t, resource(t, tmpl, pollDLQID, "AWS::SQS::Queue").Properties)

	if queue.RedrivePolicy == nil {
		t.Fatal("PollQueue has no RedrivePolicy")
	}
	if att := cfn.AsGetAtt(queue.RedrivePolicy.DeadLetterTargetArn); !slices.Equal(att, []string{pollDLQID, "Arn"}) {
		t.Errorf("deadLetterTargetArn = %v, want !GetAtt %s.Arn", queue.RedrivePolicy.DeadLetterTargetArn, pollDLQID)
	}
	if !cfn.IsRefTo(queue.RedrivePolicy.MaxReceiveCount, "MaxReceiveCount") {
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
	for _, id := range tmpl.ResourcesOfType("AWS::CloudWatch::Alarm") {
		a := decodeInto[cfn.Alarm](t, tmpl.Resources[id].Properties)
		if a.Namespace != "AWS/SQS" || a.MetricName != "ApproximateNumberOfMessagesVisible" {
			continue
		}
		for _, d := range a.Dimensions {
			if d.Name == "QueueName" && slices.Equal(cfn.AsGetAtt(d.Value), []string{pollDLQID, "QueueName"}) {
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
		if !cfn.IsRefTo(tmpl.Outputs[name].Value, want) {
			t.Errorf("output %s = %v, want !Ref %s", name, tmpl.Outputs[name].Value, want)
		}
	}
	if api, ok := tmpl.Outputs["ApiUrl"].Value.(map[string]any); !ok || !strings.Contains(fmt.Sprint(api["Fn::Sub"]), "${"+httpAPIID+"}") {
		t.Errorf("output ApiUrl = %v, want a !Sub of ${%s}", tmpl.Outputs["ApiUrl"].Value, httpAPIID)
	}
}

func TestTemplatePollSchedule(t *testing.T) {
	tmpl := loadTemplate(t)
	fn := function(t, tmpl, fanoutID)
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
		expr, err := tmpl.Eval(schedule, params)
		if err != nil {
			t.Fatalf("evaluate Schedule: %v", err)
		}
		if !rate.MatchString(fmt.Sprint(expr)) {
			t.Errorf("PollIntervalMinutes=%s gives schedule %q, not a valid rate expression", minutes, expr)
		}
		if want := fmt.Sprintf("rate(%d minute", n); !strings.HasPrefix(fmt.Sprint(expr), want) {
			t.Errorf("PollIntervalMinutes=%s gives %q", minutes, expr)
		}
		secs, err := tmpl.Eval(tmpl.EffectiveEnv(fn)["MARKETPLACE_POLL_INTERVAL_SECONDS"], params)
		if err != nil {
			t.Fatalf("evaluate MARKETPLACE_POLL_INTERVAL_SECONDS: %v", err)
		}
		if fmt.Sprint(secs) != strconv.Itoa(60*n) {
			t.Errorf("PollIntervalMinutes=%s gives MARKETPLACE_POLL_INTERVAL_SECONDS=%v, want %d", minutes, secs, 60*n)
		}
	}
}
