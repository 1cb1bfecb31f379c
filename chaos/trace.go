package main

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// trace is the harness's own record of every delivery of every poll
// message and of every infrastructure outage it caused, so that each dead
// letter can be traced to an injected cause (or counted as unexplained).
type trace struct {
	mu       sync.Mutex
	attempts map[string][]attempt // SQS message id -> its deliveries, in order
	outages  []outage
}

// attempt is one delivery of one message to one container.
type attempt struct {
	tenant     string
	start, end time.Time
	outcome    string   // ok, failed, killed
	injected   string   // an injected SQS fault on this delivery: duplicate, not_deleted
	cause      string   // for failed: what explains it ("" = nothing)
	errs       []string // what the connector logged at warning level or above for this delivery
}

type outage struct {
	kind       string
	start, end time.Time
}

func newTrace() *trace { return &trace{attempts: map[string][]attempt{}} }

func (t *trace) add(msgID string, a attempt) {
	t.mu.Lock()
	t.attempts[msgID] = append(t.attempts[msgID], a)
	t.mu.Unlock()
}

// begin records the start of an outage; the returned func its end.
func (t *trace) begin(kind string) func() {
	t.mu.Lock()
	i := len(t.outages)
	t.outages = append(t.outages, outage{kind: kind, start: time.Now(), end: time.Now().Add(24 * time.Hour)})
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		t.outages[i].end = time.Now()
		t.mu.Unlock()
	}
}

// outageDuring returns an outage overlapping [from, to], with a margin of
// 2 s for the connections and retries it leaves behind. A failure up to
// 30 s after a Vault restart or unseal is returned as "<kind>_aftermath"
// (restored secrets are new versions written by the harness): the caller
// accepts it only for a failure of Vault itself, and counts and shows
// those failures apart instead of folding them into the outage.
func (t *trace) outageDuring(from, to time.Time) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range t.outages {
		if strings.HasPrefix(o.kind, "s3_late:") {
			continue // one mail's object, not an outage (objectLate)
		}
		if !o.end.Add(2*time.Second).Before(from) && !o.start.After(to) {
			return o.kind, true
		}
	}
	for _, o := range t.outages {
		if strings.HasPrefix(o.kind, "vault_") && !o.end.Add(30*time.Second).Before(from) && !o.start.After(to) {
			return o.kind + "_aftermath", true
		}
	}
	return "", false
}

// deadLettered reports whether message msgID was delivered at least
// maxReceives times, each delivery explained (explain): what sends an SQS
// message to its DLQ.
func (t *trace) deadLettered(msgID string, maxReceives int) bool {
	t.mu.Lock()
	n := len(t.attempts[msgID])
	t.mu.Unlock()
	_, ok := t.explain(msgID)
	return n >= maxReceives && ok
}

// hadLogged reports whether an earlier failed delivery of msgID logged text.
func (t *trace) hadLogged(msgID, text string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.attempts[msgID] {
		for _, e := range a.errs {
			if a.outcome == "failed" && strings.Contains(e, text) {
				return true
			}
		}
	}
	return false
}

// hadCause reports whether an earlier delivery of msgID failed with cause.
func (t *trace) hadCause(msgID, cause string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.attempts[msgID] {
		if a.outcome == "failed" && a.cause == cause {
			return true
		}
	}
	return false
}

// outageOf reports an outage of kind overlapping [from, to] (2 s margin).
func (t *trace) outageOf(kind string, from, to time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range t.outages {
		if o.kind == kind && !o.end.Add(2*time.Second).Before(from) && !o.start.After(to) {
			return true
		}
	}
	return false
}

// objectLate reports whether mail sesID's S3 object was still being
// written late (an injected s3_late) at some point of [from, to].
func (t *trace) objectLate(sesID string, from, to time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range t.outages {
		if o.kind == "s3_late:"+sesID && !o.end.Before(from) && !o.start.After(to) {
			return true
		}
	}
	return false
}

// lastEnd is when the last outage of kind (a cause, "_aftermath" or not)
// ended before now.
func (t *trace) lastEnd(kind string) time.Time {
	kind = strings.TrimSuffix(kind, "_aftermath")
	t.mu.Lock()
	defer t.mu.Unlock()
	var end time.Time
	for _, o := range t.outages {
		if o.kind == kind && o.end.Before(time.Now()) && o.end.After(end) {
			end = o.end
		}
	}
	return end
}

// explain says why message msgID reached the dead-letter queue: every one
// of its deliveries must have ended in an injected fault (a kill, an
// injected SQS fault, or a failure during which the sandbox, LWA or the
// infrastructure misbehaved for that tenant). It returns "" when one did
// not, or when the harness never saw the message.
func (t *trace) explain(msgID string) (causes []string, ok bool) {
	t.mu.Lock()
	as := append([]attempt(nil), t.attempts[msgID]...)
	t.mu.Unlock()
	if len(as) == 0 {
		return nil, false
	}
	dup := false
	for _, a := range as {
		if a.injected == "duplicate" {
			dup = true
		}
	}
	for i, a := range as {
		switch {
		case a.outcome == "killed":
			causes = append(causes, "killed")
		case a.injected == "not_deleted":
			causes = append(causes, "not_deleted")
		case a.outcome == "failed" && a.cause != "":
			causes = append(causes, a.cause)
		case a.outcome == "ok" && a.cause != "":
			// Handled, but its batch outlasted the visibility timeout
			// because of an injected fault: delivered again.
			causes = append(causes, a.cause)
		case a.outcome == "ok" && dup:
			causes = append(causes, "duplicate_delivery")
		case a.outcome == "failed" && len(a.errs) == 0 && dup:
			// A concurrent duplicate delivery of the same message logged
			// under the same request id and took this one's errors: it
			// shares the cause of the delivery it overlapped.
			c := ""
			for j, b := range as {
				if j != i && !b.end.Before(a.start) && !b.start.After(a.end) && (b.cause != "" || b.outcome == "killed") {
					c = b.cause + b.outcome
				}
			}
			if c == "" {
				return causes, false
			}
			causes = append(causes, "concurrent_duplicate")
		default:
			return causes, false
		}
	}
	return causes, true
}

// describe renders every delivery of msgID, for a person reading an
// unexplained dead letter.
func (t *trace) describe(msgID string) string {
	t.mu.Lock()
	as := append([]attempt(nil), t.attempts[msgID]...)
	t.mu.Unlock()
	var b strings.Builder
	for i, a := range as {
		fmt.Fprintf(&b, "\n  - delivery %d %s..%s: %s", i+1, a.start.UTC().Format("15:04:05.000"), a.end.UTC().Format("15:04:05.000"), a.outcome)
		if a.injected != "" {
			fmt.Fprintf(&b, " (injected %s)", a.injected)
		}
		if a.cause != "" {
			fmt.Fprintf(&b, " (cause %s)", a.cause)
		}
		for _, e := range a.errs {
			fmt.Fprintf(&b, "; logged %q", e)
		}
	}
	return b.String()
}

// interfered reports whether a delivery for tenant, between from and to,
// was killed or failed: what can leave an event served but not stored.
func (t *trace) interfered(tenant string, from, to time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, as := range t.attempts {
		for _, a := range as {
			if a.tenant == tenant && a.outcome != "ok" && !a.end.Before(from) && !a.start.After(to) {
				return true
			}
		}
	}
	return false
}
