package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keybuzz/keybuzz-amazon/dev/rie"
	"github.com/keybuzz/keybuzz-amazon/dev/smtpses"
)

// Real kills of the inboundmail bootstrap under aws-lambda-rie: a buyer
// mail to a kill tenant's address goes through the SES stand-in (S3 +
// SNS -> the mail queue); the harness plays the event source mapping and
// SIGKILLs the emulator and the function
//
//   - inside_mail_transaction: the page-transaction hook (the statement
//     trigger on "ExternalMessage") holds IngestMail's transaction; the
//     harness sees the backend waiting, then kills;
//   - mail_before_ack: the function returned, the message is not deleted.
//
// The redelivered mail must then be stored exactly once (the channel
// checker, with the other mails).
var mailKillCategories = []string{"inside_mail_transaction", "mail_before_ack"}

// mailKills runs MailKills kills, alternating the categories, then drains
// the mail queue with a container that is not killed.
func (k *killer) mailKills(ctx context.Context) error {
	w := k.w
	bin := mailBootstrap(k.bin)
	var in *rie.Instance
	start := func() error {
		var err error
		in, err = rie.Start(ctx, bin, k.env)
		return err
	}
	defer func() {
		if in != nil {
			in.Close()
			k.keepLogs(in)
		}
	}()
	for n := 0; n < w.set.MailKills; n++ {
		cat := mailKillCategories[n%len(mailKillCategories)]
		t := w.killTenants[n%len(w.killTenants)]
		if t.address == "" {
			return fmt.Errorf("kill tenant %s has no inbound address", t.id)
		}
		if err := k.sendMail(t); err != nil {
			return err
		}
		if in == nil {
			if err := start(); err != nil {
				return err
			}
		}
		msgs, ev, err := k.receiveFrom(ctx, w.ch.mailURL, "mail", 2)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			k.missed[cat]++
			continue
		}
		if cat == "inside_mail_transaction" {
			if err := k.setHold(ctx, true); err != nil {
				return err
			}
		}
		t0 := time.Now()
		ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
		done := invoke(ictx, in, ev)
		landed := false
		switch cat {
		case "inside_mail_transaction":
			_, landed = k.heldBackend(ctx, done, 30*time.Second)
		case "mail_before_ack":
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
			k.ackOn(ctx, w.ch.mailURL, msgs, r, t0)
			k.missed[cat]++
			continue
		}
		k.kill(in)
		in = nil
		cancel()
		_ = k.setHold(ctx, false)
		for _, m := range msgs {
			w.trace.add(aws.ToString(m.MessageId), attempt{tenant: w.mailTenant(aws.ToString(m.Body)), start: t0, end: time.Now(), outcome: "killed"})
		}
		k.landed[cat]++
		w.stats.fault("kill_" + cat)
	}
	// Recovery: the killed mails come back after the visibility timeout.
	if in == nil {
		if err := start(); err != nil {
			return err
		}
	}
	return k.drainMail(ctx, in)
}

// drainMail runs the mail queue through in, not killed, until it stays empty.
func (k *killer) drainMail(ctx context.Context, in *rie.Instance) error {
	return k.drainThrough(ctx, in, k.w.ch.mailURL, "mail", nil)
}

// sendMail writes a relay-shaped buyer mail to t's address through the
// SES stand-in, recorded as the sandbox's relay records its own.
func (k *killer) sendMail(t *tenant) error {
	_, err := k.sendMailFrom(t, "")
	return err
}

// sendMailFrom is sendMail from the buyer's relay alias from ("": one of
// marketplace.amazon.com); it returns the mail's order.
func (k *killer) sendMailFrom(t *tenant, from string) (string, error) {
	order, err := k.sb.AddOrder(t.seller, "", false)
	if err != nil {
		return "", err
	}
	return order, k.sendMailAbout(t, order, from)
}

// sendMailAbout is sendMailFrom about an order of the kill sandbox.
func (k *killer) sendMailAbout(t *tenant, order, from string) error {
	ch := k.w.ch
	ch.mu.Lock()
	ch.nextMail++
	token := fmt.Sprintf("chaos-mail-%d", ch.nextMail)
	ch.pendingFault = append(ch.pendingFault, "")
	if from == "" {
		from = fmt.Sprintf("kim%d@marketplace.amazon.com", ch.nextMail)
	}
	ch.mu.Unlock()
	raw := fmt.Sprintf("From: \"Kim Buyer - Amazon Marketplace\" <%s>\r\nTo: %s\r\n"+
		"Subject: Shipping inquiry from Amazon customer Kim Buyer (Order: %s)\r\nMessage-ID: <%s@chaos.kill>\r\n"+
		"Date: Tue, 01 Dec 2026 09:01:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"+
		"Order ID: %s\r\n\r\n------------- Begin message -------------\r\n\r\nWhere is my parcel? %s\r\n\r\n------------- End message -------------\r\n",
		from, t.address, order, token, order, token)
	if err := smtpses.Send(ch.smtp.Addr(), "bounce@marketplace.amazon.com", []string{t.address}, []byte(raw)); err != nil {
		return fmt.Errorf("mail to %s: %w", t.address, err)
	}
	ch.mu.Lock()
	ch.mails = append(ch.mails, &sentMail{token: token, tenant: t.id, order: order, to: t.address, accepting: true})
	ch.mu.Unlock()
	k.w.stats.add("mails_relayed_kill_phase", 1)
	return nil
}

// receiveFrom is the event source mapping's poll of queueURL.
func (k *killer) receiveFrom(ctx context.Context, queueURL, kind string, wait int32) ([]types.Message, events.SQSEvent, error) {
	saved := k.queueURL
	k.queueURL = queueURL
	defer func() { k.queueURL = saved }()
	msgs, ev, err := k.receive(ctx, wait)
	for _, m := range msgs {
		k.w.payloads.keep(kind, aws.ToString(m.MessageId), aws.ToString(m.Body))
	}
	return msgs, ev, err
}

// ackOn is ack on queueURL.
func (k *killer) ackOn(ctx context.Context, queueURL string, msgs []types.Message, r invokeResult, t0 time.Time) {
	saved := k.queueURL
	k.queueURL = queueURL
	defer func() { k.queueURL = saved }()
	k.ack(ctx, msgs, r, t0)
}
