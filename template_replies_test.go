package keybuzzamazon

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/dev/cfn"
)

// TestTemplateReplySending: the inbound domain is SES's sending identity
// with Easy DKIM; the replies' configuration set publishes every fate an
// agent needs (send, delivery, bounce, complaint, reject, rendering
// failure, delay) to an SNS topic that only SES of this account may
// publish to and that feeds the SES-events queue; and only replysender may
// call ses:SendEmail, for that identity and that configuration set, and
// for nothing else.
func TestTemplateReplySending(t *testing.T) {
	tmpl := loadTemplate(t)
	identity := decodeInto[map[string]any](t, resource(t, tmpl, "ReplyEmailIdentity", "AWS::SES::EmailIdentity").Properties)
	if !cfn.IsRefTo(identity["EmailIdentity"], "InboundMailDomain") {
		t.Errorf("ReplyEmailIdentity.EmailIdentity = %v, want !Ref InboundMailDomain", identity["EmailIdentity"])
	}
	if cfn.Dig(identity, "DkimAttributes", "SigningEnabled") != true || cfn.Dig(identity, "DkimSigningAttributes", "NextSigningKeyLength") == nil {
		t.Errorf("ReplyEmailIdentity: want Easy DKIM (DkimAttributes.SigningEnabled and a signing key length), got %v", identity)
	}
	if !cfn.IsRefTo(cfn.Dig(identity, "ConfigurationSetAttributes", "ConfigurationSetName"), "ReplyConfigurationSet") {
		t.Error("ReplyEmailIdentity: its default configuration set is not ReplyConfigurationSet")
	}
	dest := decodeInto[map[string]any](t, resource(t, tmpl, "ReplyConfigurationSetEventDestination", "AWS::SES::ConfigurationSetEventDestination").Properties)
	if !cfn.IsRefTo(dest["ConfigurationSetName"], "ReplyConfigurationSet") || !cfn.IsRefTo(cfn.Dig(dest, "EventDestination", "SnsDestination", "TopicARN"), "SesEventsTopic") ||
		cfn.Dig(dest, "EventDestination", "Enabled") != true {
		t.Errorf("event destination %v: want ReplyConfigurationSet's events to SesEventsTopic, enabled", dest)
	}
	var types []string
	for _, v := range cfn.AsList(cfn.Dig(dest, "EventDestination", "MatchingEventTypes")) {
		types = append(types, v.(string))
	}
	for _, want := range []string{"send", "delivery", "bounce", "complaint", "reject", "renderingFailure", "deliveryDelay"} {
		if !slices.Contains(types, want) {
			t.Errorf("the configuration set does not publish %s", want)
		}
	}
	sub := decodeInto[map[string]any](t, resource(t, tmpl, "SesEventsTopicSubscription", "AWS::SNS::Subscription").Properties)
	if !cfn.IsRefTo(sub["TopicArn"], "SesEventsTopic") || !slices.Equal(cfn.AsGetAtt(sub["Endpoint"]), []string{sesEventsQueueID, "Arn"}) {
		t.Errorf("SesEventsTopicSubscription %v: want SesEventsTopic -> SesEventsQueue", sub)
	}
	topicPolicy := decodeInto[map[string]any](t, resource(t, tmpl, "SesEventsTopicPolicy", "AWS::SNS::TopicPolicy").Properties)
	for _, s := range cfn.AsList(cfn.Dig(topicPolicy, "PolicyDocument", "Statement")) {
		if cfn.Dig(s, "Principal", "Service") != "ses.amazonaws.com" || cfn.Dig(s, "Condition", "StringEquals", "AWS:SourceAccount") == nil {
			t.Errorf("SesEventsTopicPolicy statement %v: want SES of this account only", s)
		}
	}

	// ses:* only in replysender, only SendEmail, only on the identity and the set.
	for id, r := range tmpl.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		fn := function(t, tmpl, id)
		raw, _ := json.Marshal(fn.Policies)
		hasSES := strings.Contains(string(raw), `"ses:`)
		if id != "ReplySenderFunction" {
			if hasSES {
				t.Errorf("%s has an SES permission", id)
			}
			continue
		}
		var actions, resources []string
		for _, p := range cfn.AsList(fn.Policies) {
			for _, s := range cfn.AsList(cfn.Dig(p, "Statement")) {
				for _, a := range cfn.AsList(cfn.Dig(s, "Action")) {
					actions = append(actions, a.(string))
				}
				for _, res := range cfn.AsList(cfn.Dig(s, "Resource")) {
					b, _ := json.Marshal(res)
					resources = append(resources, string(b))
				}
			}
		}
		if !slices.Equal(actions, []string{"ses:SendEmail"}) {
			t.Errorf("ReplySenderFunction actions %v, want ses:SendEmail only", actions)
		}
		if len(resources) != 2 || !strings.Contains(resources[0], "identity/${InboundMailDomain}") ||
			!strings.Contains(resources[1], "configuration-set/${ReplyConfigurationSet}") {
			t.Errorf("ReplySenderFunction may send on %v, want the inbound domain's identity and the replies' configuration set only", resources)
		}
		env := tmpl.EffectiveEnv(fn)
		if !cfn.IsRefTo(env["SES_CONFIGURATION_SET"], "ReplyConfigurationSet") {
			t.Errorf("ReplySenderFunction SES_CONFIGURATION_SET = %v, want !Ref ReplyConfigurationSet", env["SES_CONFIGURATION_SET"])
		}
	}
	// And only sendreply and pollfanout (its reply sweep) know the outbound queue.
	for id, env := range allEffectiveEnv(t, tmpl) {
		if v, ok := env["REPLY_QUEUE_URL"]; ok && ((id != "SendReplyFunction" && id != fanoutID) || !cfn.IsRefTo(v, replyQueueID)) {
			t.Errorf("%s has REPLY_QUEUE_URL %v", id, v)
		}
	}
}
