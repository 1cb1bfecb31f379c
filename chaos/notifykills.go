package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/rie"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
)

// Real kills of the ordernotify bootstrap under aws-lambda-rie. The kill
// tenants are subscribed to ORDER_CHANGE when they connect (their
// subscriptions point at a queue of the kill phase); a buyer's
// cancellation request on the kill sandbox publishes a notification to it;
// the harness plays the event source mapping and SIGKILLs the emulator
// and the function
//
//   - inside_notification_transaction: the hook (the statement trigger on
//     "ExternalMessage") holds the push ingestion's statement inside its
//     transaction, which the intake opened explicitly (the connection's
//     CONNECTED guard first, then the events): the harness kills the
//     client there, releases the hook, waits until PostgreSQL has ended
//     the backend, and checks that nothing of the notification's order
//     remains — a real rollback, unlike a poll page killed mid-statement,
//     which PostgreSQL completes and commits without its client;
//   - notify_before_ack: the function returned, the message is not deleted.
//
// The redelivered notification must then store its event exactly once
// (the invariant checker, with the polled ones).
var notifyKillCategories = []string{"inside_notification_transaction", "notify_before_ack"}

// notifyBootstrap is where buildBootstrap puts the ordernotify bootstrap.
func notifyBootstrap(pollBin string) string {
	return filepath.Join(filepath.Dir(filepath.Dir(pollBin)), "ordernotify", "bootstrap")
}

// notifyQueueName is the kill phase's notifications queue.
const notifyQueueName = "chaos-kill-notify"

func notifyQueueARN() string {
	return fmt.Sprintf("arn:aws:sqs:%s:000000000000:%s", devstack.Region, notifyQueueName)
}

// notifyKills runs NotifyKills kills, alternating the categories, then
// drains the queue with a container that is not killed.
func (k *killer) notifyKills(ctx context.Context) error {
	w := k.w
	bin := notifyBootstrap(k.bin)
	env := append(append([]string(nil), k.env...), "NOTIFICATIONS_QUEUE_ARN="+notifyQueueARN())
	var in *rie.Instance
	start := func() error {
		var err error
		in, err = rie.Start(ctx, bin, env)
		return err
	}
	defer func() {
		if in != nil {
			in.Close()
			k.keepLogs(in)
		}
	}()
	for n := 0; n < w.set.NotifyKills; n++ {
		cat := notifyKillCategories[n%len(notifyKillCategories)]
		t := w.killTenants[n%len(w.killTenants)]
		if in == nil {
			if err := start(); err != nil {
				return err
			}
		}
		// What the earlier phases' orders published goes first, so that
		// the killed batch holds only this order's notifications.
		if err := k.drainNotifications(ctx, in); err != nil {
			return err
		}
		order, err := k.sb.AddOrder(t.seller, "", true)
		if err != nil {
			return fmt.Errorf("order for %s: %w", t.id, err)
		}
		for k.sb.NotificationStats().InFlight != 0 {
			time.Sleep(10 * time.Millisecond)
		}
		msgs, ev, err := k.receiveFrom(ctx, k.notifyURL, "kill-notify", 5)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			k.missed[cat]++
			continue
		}
		if cat == "inside_notification_transaction" {
			if err := k.setHold(ctx, true); err != nil {
				return err
			}
		}
		t0 := time.Now()
		ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
		done := invoke(ictx, in, ev)
		landed, pid := false, 0
		switch cat {
		case "inside_notification_transaction":
			pid, landed = k.heldBackend(ctx, done, 30*time.Second)
		case "notify_before_ack":
			select {
			case r := <-done:
				landed = r.err == nil
				done <- r
			case <-time.After(45 * time.Second):
			}
		}
		if !landed {
			_ = k.setHold(ctx, false)
			r := <-done
			cancel()
			k.ackOn(ctx, k.notifyURL, msgs, r, t0)
			k.missed[cat]++
			continue
		}
		k.kill(in)
		in = nil
		cancel()
		_ = k.setHold(ctx, false)
		if cat == "inside_notification_transaction" {
			if err := k.checkRolledBack(ctx, pid, t, order); err != nil {
				return err
			}
		}
		for _, m := range msgs {
			w.trace.add(aws.ToString(m.MessageId), attempt{tenant: k.notifyTenant(aws.ToString(m.Body)), start: t0, end: time.Now(), outcome: "killed"})
		}
		k.landed[cat]++
		w.stats.fault("kill_" + cat)
	}
	// Recovery: the killed notifications come back after the visibility timeout.
	if in == nil {
		if err := start(); err != nil {
			return err
		}
	}
	return k.drainNotifications(ctx, in)
}

// drainNotifications runs the kill phase's notifications queue through in,
// not killed, until it stays empty and the sandbox has nothing on its way.
func (k *killer) drainNotifications(ctx context.Context, in *rie.Instance) error {
	return k.drainThrough(ctx, in, k.notifyURL, "kill-notify", func(context.Context) (bool, error) {
		return k.sb.NotificationStats().InFlight == 0, nil
	})
}

// checkRolledBack waits until PostgreSQL has ended the killed client's
// backend (pid), then checks that the transaction it held left nothing of
// the order behind: a committed half would show the order's event (or its
// ticket) before the notification is redelivered.
func (k *killer) checkRolledBack(ctx context.Context, pid int, t *tenant, order string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var alive bool
		if err := k.w.check.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, pid).Scan(&alive); err != nil {
			return fmt.Errorf("rollback check: %w", err)
		}
		if !alive {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rollback check: the killed client's backend %d still runs after 30 s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var msgs, tickets, records int
	if err := k.w.check.QueryRow(ctx, `
SELECT (SELECT count(*) FROM public."ExternalMessage" WHERE "tenantId" = $1 AND "orderId" = $2),
       (SELECT count(*) FROM public."Ticket" WHERE "tenantId" = $1 AND "externalId" = $2),
       (SELECT count(*) FROM keybuzz_amazon."Notification" WHERE "tenantId" = $1 AND "orderId" = $2)`, t.id, order).Scan(&msgs, &tickets, &records); err != nil {
		return fmt.Errorf("rollback check: %w", err)
	}
	if msgs+tickets+records > 0 {
		k.w.stats.add("kill_rollback_half_done", 1)
		k.halfDone = append(k.halfDone, fmt.Sprintf("tenant %s order %s: %d messages, %d tickets, %d notification records after the kill", t.id, order, msgs, tickets, records))
		return nil
	}
	k.w.stats.add("kill_rollback_verified", 1)
	return nil
}

// notifyTenant is the kill tenant a notification body is for.
func (k *killer) notifyTenant(body string) string {
	n, err := push.Decode(body)
	if err != nil {
		return ""
	}
	for _, t := range k.w.killTenants {
		if t.seller == n.SellerID {
			return t.id
		}
	}
	return ""
}
