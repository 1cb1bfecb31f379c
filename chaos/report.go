package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// idleInTransactionTimeout is the connector role's
// idle_in_transaction_session_timeout (migrations/0009_server_timeouts.sql).
const idleInTransactionTimeout = 15 * time.Second

// Result is one soak: its setting, what was injected, the verdict.
type Result struct {
	Setting    Settings       `json:"setting"`
	Date       time.Time      `json:"date"`
	Cores      int            `json:"cores"`
	GoVersion  string         `json:"goVersion"`
	Seconds    float64        `json:"seconds"`
	Faults     map[string]int `json:"faults"`
	Crashes    int            `json:"crashes"`
	Counters   map[string]int `json:"counters"`
	Invariants Invariants     `json:"invariants"`
	Passed     bool           `json:"passed"`
	Load       *LoadResult    `json:"load,omitempty"`
	// The real-kill phase: where each SIGKILL of the bootstrap landed, the
	// attempts whose invocation never reached the point, and for each
	// freeze the seconds until a second container completed the poll.
	RealKills         map[string]int `json:"realKills,omitempty"`
	RealKillsMissed   map[string]int `json:"realKillsMissed,omitempty"`
	TakeoverSeconds   []float64      `json:"takeoverSeconds,omitempty"`
	LocksFreedSeconds []float64      `json:"locksFreedSeconds,omitempty"`
	KillTenants       int            `json:"killTenants,omitempty"`
	Commit            string         `json:"commit"`
	Command           string         `json:"command"`
}

func (r Result) faultKinds() []string {
	var ks []string
	for k := range r.Faults {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Table is the human-readable verdict (markdown, also fine in a terminal).
func (r Result) Table() string {
	v := r.Invariants
	var b strings.Builder
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "Setting `%s`: %d tenants, %d chaos cycles + %d settle, %d containers, seed %d — %s in %s (%d cores, %s)\n\n",
		r.Setting.Name, r.Setting.Tenants, r.Setting.Cycles, r.Counters["settle_cycles"], r.Setting.Workers, r.Setting.Seed, verdict,
		time.Duration(r.Seconds*float64(time.Second)).Round(time.Second), r.Cores, r.GoVersion)
	b.WriteString("| buyer events | count |\n| --- | ---: |\n")
	for _, row := range []struct {
		k string
		n int
	}{
		{"expected (in the look-back window, readable)", v.EventsExpected},
		{"stored exactly once (ExternalMessage + TicketMessage)", v.EventsStored},
		{"**lost**", v.Lost},
		{"**duplicated** (one event in several rows whatever their externalId, extra TicketMessage or Ticket rows)", v.Duplicated},
		{"**in the wrong tenant**", v.WrongTenant},
		{"**stored after the tenant's access ended** (revoked, Vault secret deleted)", v.AfterRevocation},
		{"**SP-API requests outside Amazon's contract** (of " + strconv.Itoa(v.RequestsChecked) + " checked against the models)", v.OutsideContract},
		{"**phantom** (stored, unknown to Amazon)", v.Phantom},
		{"ExternalMessage without TicketMessage", v.TicketMessageMissing},
		{"not expected: older than the look-back window", v.BeforeWindow},
		{"not expected: before access ended, never served by Amazon or served to an interrupted poll", v.UnreachableRevoked},
		{"tickets (one per tenant and order; wrong counts)", v.Tickets},
		{"(tenant, order) with a ticket count other than 1", v.TicketsWrong},
	} {
		fmt.Fprintf(&b, "| %s | %d |\n", row.k, row.n)
	}
	b.WriteString("\n| connections, queue, secrets | count |\n| --- | ---: |\n")
	for _, row := range []struct {
		k string
		n int
	}{
		{"revoked tenants / in NEEDS_REAUTH", v.Revoked},
		{"tenants whose Vault secret was deleted (want ERROR or NEEDS_REAUTH)", v.SecretGone},
		{"connections not in the state their last fault implies", v.ConnectionsWrong},
		{"messages left in the queues (poll, notifications, mail)", v.QueueLeft},
		{"**transactions killed before their commit that left rows behind**", v.HalfDone},
		{"rows of the shared models read by KeyBuzz's own Prisma client after the soak", v.KeybuzzRowsRead},
		{"**rows KeyBuzz's client could not read**", v.KeybuzzUnreadable},
		{"dead letters (re-polled by the next schedule)", v.DLQ},
		{"**dead letters not traced to an injected fault**", v.DLQUnexplained},
		{"secret values issued (tokens, codes, JWTs, states)", v.SecretsIssued},
	} {
		n := fmt.Sprint(row.n)
		if strings.HasPrefix(row.k, "revoked") {
			n = fmt.Sprintf("%d / %d", v.Revoked, v.NeedsReauth)
		}
		fmt.Fprintf(&b, "| %s | %s |\n", row.k, n)
	}
	b.WriteString("\n| secret scanner (exact, URL-encoded, JSON-escaped, base64 forms) | scanned | secrets found |\n| --- | ---: | ---: |\n")
	for _, k := range []struct{ key, what string }{
		{"logs", "output and logs (bytes)"}, {"database", "database values"}, {"queues", "SQS payloads (messages)"}, {"s3", "S3 objects"},
	} {
		r := v.Scans[k.key]
		fmt.Fprintf(&b, "| %s | %d | %d |\n", k.what, r.Scanned, r.Found)
	}
	if c := v.Channels; c.MailsSent+c.NotificationsSent > 0 {
		b.WriteString("\n| push and mail channels (against the senders' records) | count |\n| --- | ---: |\n")
		for _, row := range []struct {
			k string
			n int
		}{
			{"buyer mails relayed (sandbox relay -> SMTP -> SES stand-in -> S3 + SNS -> SQS)", c.MailsSent},
			{"stored exactly once, in their tenant", c.MailsStored},
			{"not expected (S3 object never written, or the tenant not CONNECTED)", c.MailsNotExpected},
			{"not stored: every delivery met an injected fault, then the DLQ (the raw mail stays in S3)", c.MailsDeadLettered},
			{"**mails lost**", c.MailsLost},
			{"**mails duplicated** (one mail in several messages, whatever their externalId)", c.MailsDuplicated},
			{"malformed and oversized mails sent / refused (MALFORMED, TOO_LARGE) / **stored**", -1},
			{"notifications delivered to the queue (genuine; duplicates once)", c.NotificationsSent},
			{"of those, recorded once (MarketplaceNotification)", c.NotificationsRecorded},
			{"**recorded under another tenant**", c.NotificationsWrongOwner},
			{"not recorded: every delivery met an injected fault, then the DLQ (the fallback poll stores the event)", c.NotificationsDeadLettered},
			{"**received and never recorded**", c.NotificationsUnrecorded},
			{"forged notifications (another tenant's SellerId and order) / **stored**", -2},
			{"malformed notification bodies sent", c.NotificationsMalformed},
		} {
			n := fmt.Sprint(row.n)
			switch row.n {
			case -1:
				n = fmt.Sprintf("%d / %d / %d", c.HostileSent, c.HostileRefused, c.HostileStored)
			case -2:
				n = fmt.Sprintf("%d / %d", c.NotificationsForged, c.ForgedStored)
			}
			fmt.Fprintf(&b, "| %s | %s |\n", row.k, n)
		}
		if len(c.NotificationOutcomes) > 0 {
			keys := make([]string, 0, len(c.NotificationOutcomes))
			for k := range c.NotificationOutcomes {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := []string{}
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s %d", k, c.NotificationOutcomes[k]))
			}
			fmt.Fprintf(&b, "\nOutcomes of the genuine notifications recorded: %s (an event pushed and polled is stored once: DUPLICATE).\n", strings.Join(parts, ", "))
		}
	}
	if rp := v.Replies; rp.Requested > 0 {
		b.WriteString("\n| replies to buyers (send-reply route -> reply queue -> replysender bootstrap -> SESv2 stand-in), against the stand-in's record of every mail it accepted | count |\n| --- | ---: |\n")
		for _, row := range []struct {
			k string
			n int
		}{
			{"replies the API accepted (a replayed Idempotency-Key counted once)", rp.Requested},
			{"SENT with exactly one mail accepted by SES", rp.Sent},
			{"FAILED with a reason", rp.Failed},
			{"mails SES accepted", rp.Mails},
			{"**delivered twice** (a second mail for one reply, a mail of no reply, a replayed key answering another reply)", rp.Duplicated},
			{"**lost** (not SENT with its mail, nor FAILED with a reason)", rp.Lost},
			{"**from another tenant's address or to another tenant's buyer**", rp.WrongTenant},
			{"DELIVERED (a Delivery event reached the connector)", rp.Delivered},
			{"refused by Amazon (the sandbox's relay: sender not approved, buyer opted out)", rp.Refused},
			{"bounced (SES published a Bounce, a late one after the Delivery included)", rp.Bounced},
			{"left SENT, as the contract says, their Delivery event lost", rp.DeliveryLost},
			{"**wrong fate** (refused or bounced and not FAILED; DELIVERED without a Delivery event published; a published Delivery not applied)", rp.WrongFate},
			{"**FAILED for a reason neither Amazon's refusal nor SES's bounce gave**", rp.WrongReason},
			{"**in a buyer's inbox twice, or of no reply**", rp.BuyerDuplicated},
			{"**SES events killed in sesevents not recorded once after redelivery**", rp.EventsUnapplied},
			{"**replies with a status event (OUTBOUND_SENT, OUTBOUND_FAILED) written twice**", rp.TicketEventsTwice},
		} {
			fmt.Fprintf(&b, "| %s | %d |\n", row.k, row.n)
		}
	}
	b.WriteString("\n| fault injected | count |\n| --- | ---: |\n")
	for _, k := range r.faultKinds() {
		fmt.Fprintf(&b, "| %s | %d |\n", k, r.Faults[k])
	}
	fmt.Fprintf(&b, "| **crashes (killed invocations, simulated inside one process), total** | **%d** |\n", r.Crashes)
	if len(r.RealKills) > 0 {
		fmt.Fprintf(&b, "\n| real kills: polltenant (and inboundmail) bootstraps under aws-lambda-rie, %d tenants on real time | SIGKILL / SIGSTOP landed | attempts that missed the point |\n| --- | ---: | ---: |\n", r.KillTenants)
		total := 0
		for _, c := range append(append([]string(nil), killCategories...), "frozen_takeover") {
			fmt.Fprintf(&b, "| %s | %d | %d |\n", c, r.RealKills[c], r.RealKillsMissed[c])
			if c != "frozen_takeover" {
				total += r.RealKills[c]
			}
		}
		for _, c := range mailKillCategories {
			if r.RealKills[c]+r.RealKillsMissed[c] > 0 {
				fmt.Fprintf(&b, "| %s (inboundmail bootstrap) | %d | %d |\n", c, r.RealKills[c], r.RealKillsMissed[c])
				total += r.RealKills[c]
			}
		}
		for _, c := range notifyKillCategories {
			if r.RealKills[c]+r.RealKillsMissed[c] > 0 {
				fmt.Fprintf(&b, "| %s (ordernotify bootstrap) | %d | %d |\n", c, r.RealKills[c], r.RealKillsMissed[c])
				total += r.RealKills[c]
			}
		}
		for _, c := range replyKillCategories {
			if r.RealKills[c]+r.RealKillsMissed[c] > 0 {
				fmt.Fprintf(&b, "| %s (replysender bootstrap) | %d | %d |\n", c, r.RealKills[c], r.RealKillsMissed[c])
				total += r.RealKills[c]
			}
		}
		for _, c := range sesEventKillCategories {
			if r.RealKills[c]+r.RealKillsMissed[c] > 0 {
				fmt.Fprintf(&b, "| %s (sesevents bootstrap) | %d | %d |\n", c, r.RealKills[c], r.RealKillsMissed[c])
				total += r.RealKills[c]
			}
		}
		if n := r.Counters["kill_rollback_verified"]; n > 0 {
			fmt.Fprintf(&b, "| of the kills inside a transaction, rolled back by PostgreSQL and checked to leave nothing behind | %d | |\n", n)
		}
		fmt.Fprintf(&b, "| **real SIGKILLs, total** | **%d** | |\n", total)
		if len(r.TakeoverSeconds) > 0 {
			why := "PostgreSQL's idle_in_transaction_session_timeout ended the frozen transaction"
			if slices.Max(append([]float64{0}, r.LocksFreedSeconds...)) < idleInTransactionTimeout.Seconds() {
				why = fmt.Sprintf("before the %s idle_in_transaction_session_timeout: the page is one statement, which PostgreSQL ran to its end and committed without the frozen client", idleInTransactionTimeout)
			}
			fmt.Fprintf(&b, "\nFrozen (SIGSTOP) inside its page statement: the frozen transaction's locks were freed after %s s (%s), a second container completed the poll after %s s.\n",
				secondsList(r.LocksFreedSeconds), why, secondsList(r.TakeoverSeconds))
		}
	}
	if l := r.Load; l != nil {
		fmt.Fprintf(&b, "\nAPI load (before the soak): %d requests (status and start alternately), %d in flight, Vault delayed %s: %.0f req/s; "+
			"latency p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms; answers %v.\n", l.Requests, l.Concurrency, l.VaultDelay, l.PerSecond,
			l.P50, l.P95, l.P99, l.Max, l.Status)
	}
	fmt.Fprintf(&b, "\nSQS: %d receives, %d records, %d batch item failures; fan-out enqueued %d; connect flow for all tenants %.1f s.\n",
		r.Counters["sqs_receives"], r.Counters["sqs_records"], r.Counters["batch_item_failures"], r.Counters["fanout_enqueued"],
		float64(r.Counters["connect_ms"])/1000)
	v.Problems = append([]string(nil), v.Problems...)
	for _, k := range []string{"logs", "database", "queues", "s3"} {
		for _, where := range v.Scans[k].Where {
			v.Problems = append(v.Problems, "secret scan: "+where)
		}
	}
	if len(v.Problems) > 0 {
		b.WriteString("\nFirst violations:\n\n")
		for _, p := range v.Problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	return b.String()
}

// writeMarkdown replaces this setting's block of RELIABILITY.md (between
// its markers), appending the block when the file has none.
func (r Result) writeMarkdown(path string) error {
	begin := fmt.Sprintf("<!-- chaos:%s:begin -->", r.Setting.Name)
	end := fmt.Sprintf("<!-- chaos:%s:end -->", r.Setting.Name)
	block := fmt.Sprintf("%s\n_Written by `%s` on %s at commit %s._\n\n%s%s", begin, r.Command, r.Date.Format("2006-01-02 15:04 MST"), r.Commit, r.Table(), end)
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(end):]
	} else {
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		s += "\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func (r Result) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func newResult(set Settings) Result {
	return Result{Setting: set, Date: time.Now().UTC(), Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Commit: gitCommit(),
		Command: "go run ./chaos " + strings.Join(os.Args[1:], " ")}
}

// gitCommit is the commit the run ran on ("+dirty" with uncommitted changes).
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += "+dirty"
	}
	return c
}

func secondsList(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.1f", x))
	}
	return strings.Join(parts, ", ")
}
