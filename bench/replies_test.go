package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
)

// TestReplyCostGoal: the at-most-once row fails on a reply sent twice, a
// reply not sent, or one never DELIVERED, and holds on one send each.
func TestReplyCostGoal(t *testing.T) {
	base := replyCost{replies: 6, perTenant: 3, delivered: 6, sesSends: 1,
		records:    map[string]float64{"sendreply": 1, "replysender": 1, "sesevents": 2},
		batches:    map[string]float64{"sendreply": 1, "replysender": 1, "sesevents": 1},
		statements: map[string]float64{"sendreply": 9, "replysender": 6, "sesevents": 4},
		seconds:    map[string]float64{"sendreply": 0.004, "replysender": 0.006, "sesevents": 0.002}}
	base.dollars = replyDollarsPer(base)
	for _, tt := range []struct {
		name string
		edit func(*replyCost)
		met  bool
	}{
		{"once", func(*replyCost) {}, true},
		{"twice", func(c *replyCost) { c.sesSends = 2 }, false},
		{"some never sent", func(c *replyCost) { c.sesSends = 0.5 }, false},
		{"not delivered", func(c *replyCost) { c.delivered = 5 }, false},
	} {
		c := base
		tt.edit(&c)
		rows, note := replyCostResults(c)
		got := mergeRuns([][]Result{rows})
		if got[0].Name != "cost_reply_ses_sends" || got[0].Met != tt.met || got[0].Miss == "" {
			t.Errorf("%s: %+v", tt.name, got[0])
		}
		if !strings.Contains(note, "per tenant per month") {
			t.Errorf("%s: note %q", tt.name, note)
		}
	}
	// SES's $0.10 per 1,000 dominates; the month is 300 replies.
	d := base.dollars
	if math.Abs(d.ses-0.0001) > 1e-12 || d.total <= d.ses || d.total > 2*d.ses {
		t.Errorf("dollars %+v", d)
	}
	rows, _ := replyCostResults(base)
	if m := rows[3]; math.Abs(m.Value-round6(d.total*repliesPerTenantMo)) > 1e-9 {
		t.Errorf("per tenant month %v, want %v", m.Value, d.total*repliesPerTenantMo)
	}
}

// TestLegStats: p50, p99 and max over the replies that arrived, and the
// count of those that did.
func TestLegStats(t *testing.T) {
	var ts []replyTiming
	for i := range 200 {
		ts = append(ts, replyTiming{toSES: msDur(i + 1), sesFound: i != 7})
	}
	s := legStats(ts, func(t replyTiming) (time.Duration, bool) { return t.toSES, t.sesFound })
	if s.n != 199 || s.of != 200 || s.max != msDur(200) || s.p99 != msDur(199) || s.p50 != msDur(101) {
		t.Errorf("%+v", s)
	}
}

func msDur(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// TestFunctionEventTicket: the reply routes' events name the ticket made
// for the cold start, in the path and the path parameters, with its
// tenant's token; other events keep theirs.
func TestFunctionEventTicket(t *testing.T) {
	repo, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tk := &replyTenant{id: "tenant-ticket", token: "tok-ticket", ticket: "cticket123"}
	for _, fn := range []string{"sendreply", "outbound"} {
		b, err := functionEvent(repo, fn, "tok-other", tk)
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			RawPath        string            `json:"rawPath"`
			Headers        map[string]string `json:"headers"`
			PathParameters map[string]string `json:"pathParameters"`
			RequestContext struct {
				HTTP struct {
					Path string `json:"path"`
				} `json:"http"`
				Authorizer struct {
					JWT struct {
						Claims map[string]string `json:"claims"`
					} `json:"jwt"`
				} `json:"authorizer"`
			} `json:"requestContext"`
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.PathParameters["ticketId"] != "cticket123" || !strings.Contains(ev.RawPath, "/tickets/cticket123/") ||
			ev.RequestContext.HTTP.Path != ev.RawPath || ev.Headers["authorization"] != "Bearer tok-ticket" ||
			ev.RequestContext.Authorizer.JWT.Claims["tenantId"] != "tenant-ticket" {
			t.Errorf("%s: %+v", fn, ev)
		}
	}
	b, err := functionEvent(repo, "status", "tok-other", tk)
	if err != nil || !strings.Contains(string(b), "Bearer tok-other") {
		t.Errorf("status: %s %v", b, err)
	}
	for answer, ok := range map[string]bool{
		`{"statusCode":202,"body":"{}"}`: true, `{"statusCode":400,"body":"{\"error\":\"empty\"}"}`: true,
		`{"statusCode":404,"body":"{}"}`: false, `{"statusCode":401}`: false, `{"statusCode":503}`: false,
		`{"claimed":3}`: true,
	} {
		if err := routeReached([]byte(answer)); (err == nil) != ok {
			t.Errorf("routeReached(%s) = %v", answer, err)
		}
	}
}
