package main

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestChaosShort is `make chaos`'s short setting inside `make test`: 200
// tenants through the Connect flow, faults of every kind, then the
// invariant checker, the log scanner and the database scanner. It needs
// what `make test` installs first (PostgreSQL, the Vault dev server,
// fauxqs) and starts a private stack of its own, since it restarts Vault
// and PostgreSQL.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak takes a few minutes")
	}
	set := Short()
	var out bytes.Buffer
	set.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	res, err := Run(ctx, set)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("the soak did not run: %v", err)
	}
	v := res.Invariants
	if v.Lost != 0 || v.Duplicated != 0 || v.WrongTenant != 0 || v.AfterRevocation != 0 || v.Phantom != 0 || v.TicketMessageMissing != 0 ||
		v.TicketsWrong != 0 || v.QueueLeft != 0 || v.OutsideContract != 0 || v.SecretsFound() != 0 ||
		v.Channels.NotificationsUnrecorded != 0 || v.HalfDone != 0 || v.KeybuzzUnreadable != 0 ||
		v.Replies.Duplicated != 0 || v.Replies.Lost != 0 || v.Replies.WrongTenant != 0 {
		t.Fatal("a data invariant is violated (table above)")
	}
	if !res.Passed {
		// Open findings (RELIABILITY.md): a dead letter the tracer cannot
		// attribute, a connection left behind. `make chaos` fails on them;
		// here they are reported without failing make test.
		t.Logf("OPEN: %d dead letters not traced to an injected fault, %d connections not in their expected state (table above)",
			v.DLQUnexplained, v.ConnectionsWrong)
	}
	if res.Crashes < 20 || res.Invariants.EventsExpected < 1000 || res.Invariants.Revoked == 0 {
		t.Fatalf("the soak proved too little: %d crashes, %d events, %d revoked, faults %v",
			res.Crashes, res.Invariants.EventsExpected, res.Invariants.Revoked, res.Faults)
	}
	if v.KeybuzzRowsRead == 0 {
		t.Error("KeyBuzz's client read no row after the soak")
	}
	if res.Counters["kill_rollback_verified"] == 0 {
		t.Errorf("no kill inside a transaction was shown to roll back: %v", res.Counters)
	}
	if c := v.Channels; c.MailsStored == 0 || c.NotificationsRecorded == 0 || c.NotificationsForged == 0 || c.HostileSent == 0 {
		t.Errorf("the channels proved too little: %+v", c)
	}
	if r := v.Replies; r.Requested < res.Setting.ReplyKills || r.Sent == 0 || r.Mails == 0 || r.Delivered == 0 || r.Refused == 0 || r.Failed == 0 {
		t.Errorf("the replies proved too little: %+v", r)
	}
	for _, why := range replyRefusals {
		if why != "" && res.Counters["reply_refused_"+why] == 0 {
			t.Errorf("Amazon never refused a reply for %s: %v", why, res.Counters)
		}
	}
	for _, c := range append(append(append(append(append(append([]string(nil), killCategories...), mailKillCategories...), notifyKillCategories...), replyKillCategories...), sesEventKillCategories...), "frozen_takeover") {
		if res.RealKills[c] == 0 {
			t.Errorf("no real kill landed %s: %v (missed %v)", c, res.RealKills, res.RealKillsMissed)
		}
	}
	for _, f := range []string{"vault_restarted", "vault_sealed", "postgres_restarted", "app_secret_rotated", "lwa_500", "lwa_slow", "lwa_drop",
		"sandbox_500", "sandbox_slow", "sandbox_drop", "sqs_duplicate_delivery", "sqs_visibility_timeout_redelivery",
		// The push and mail channels.
		"notification_dropped", "notification_duplicated", "notification_delayed", "notification_out_of_order",
		"notification_forged_seller_id", "notification_malformed", "notify_crash", "mail_crash",
		"mail_s3_object_missing", "mail_s3_object_late", "mail_sns_duplicate", "mail_malformed", "mail_oversized",
		// Replies.
		"reply_ses_throttled", "reply_ses_5xx", "reply_ses_answer_lost", "reply_duplicate_request", "reply_same_text_twice",
		"ses_event_dropped", "ses_event_duplicated", "ses_event_delayed", "ses_event_reordered"} {
		if res.Faults[f] == 0 {
			t.Errorf("fault %s never injected: %v", f, res.Faults)
		}
	}
}
