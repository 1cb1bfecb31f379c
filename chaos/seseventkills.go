package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keybuzz/keybuzz-amazon/dev/rie"
	"github.com/keybuzz/keybuzz-amazon/dev/sesout"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
)

// Real kills of the sesevents bootstrap under aws-lambda-rie, after the
// reply kills: the in-process consumer of SES's events stops, agents
// reply again (the replysender bootstrap, not killed, sends them), their
// events wait in the SES-events queue; the harness plays the event source
// mapping, one record per invocation, and SIGKILLs the emulator and the
// function
//
//   - inside_ses_event_transaction: a statement trigger on
//     "MarketplaceOutboundMessage" holds ApplySESEvent's transaction after
//     it recorded the event ("SesEvent") and moved the reply ("Reply"),
//     before KeyBuzz's TicketEvent; the harness kills the client there,
//     waits until PostgreSQL has ended the backend, and checks that the
//     event, the reply, the outbound message and the ticket's events are
//     as before the invocation (a real rollback);
//   - ses_event_before_ack: the function returned, the message is not
//     deleted.
//
// The redelivered events are then applied once: every killed event is
// recorded once, every reply writes each of KeyBuzz's status events at
// most once (checkReplies), and its fate is judged with the others.
var sesEventKillCategories = []string{"inside_ses_event_transaction", "ses_event_before_ack"}

// sesEventsBootstrap is where buildBootstrap puts the sesevents bootstrap.
func sesEventsBootstrap(pollBin string) string {
	return filepath.Join(filepath.Dir(filepath.Dir(pollBin)), "sesevents", "bootstrap")
}

// killedEvent is an event whose invocation was killed.
type killedEvent struct{ sesID, eventType string }

// sesEventKills runs SESEventKills kills; replies is the replysender
// instance (not killed), threads the phase's tickets of tenants whose
// replies Amazon delivers.
func (k *killer) sesEventKills(ctx context.Context, rr *replyRig, replies *rie.Instance, delivered []*tenant, threads map[string][2]string, n *int) error {
	w := k.w
	if len(delivered) == 0 {
		return fmt.Errorf("SES-event kills: no tenant whose replies Amazon delivers")
	}
	// From here the bootstrap consumes SES's events.
	rr.stopEv()
	<-rr.evDone
	rr.stopEv = nil
	rr.ses.SetEventFaults(sesout.EventFaults{})
	if _, err := w.check.Exec(ctx, `
DROP TRIGGER IF EXISTS chaos_hold ON public."MarketplaceOutboundMessage";
CREATE TRIGGER chaos_hold AFTER UPDATE ON public."MarketplaceOutboundMessage" FOR EACH STATEMENT EXECUTE FUNCTION chaos_hold();`); err != nil {
		return fmt.Errorf("install the SES-event transaction hook: %w", err)
	}
	defer func() {
		_, _ = w.check.Exec(context.WithoutCancel(ctx), `DROP TRIGGER IF EXISTS chaos_hold ON public."MarketplaceOutboundMessage"`)
	}()
	bin := sesEventsBootstrap(k.bin)
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
	for i := 0; i < w.set.SESEventKills; i++ {
		cat := sesEventKillCategories[i%len(sesEventKillCategories)]
		if in == nil {
			if err := start(); err != nil {
				return err
			}
		}
		// A fresh reply's outcome event: the reply sent (its Send event
		// goes through unkilled), then its Delivery.
		t := delivered[i%len(delivered)]
		th := threads[t.id]
		*n++
		if err := k.reply(ctx, rr, t, th[0], th[1], *n); err != nil {
			return err
		}
		if err := k.drainReplies(ctx, rr, replies); err != nil {
			return err
		}
		rr.ses.Wait()
		var msgs []types.Message
		var ev events.SQSEvent
		var e sesmail.Event
		for tries := 0; ; tries++ {
			if tries > 50 {
				return fmt.Errorf("SES-event kills: no outcome event in the queue")
			}
			var err error
			msgs, ev, err = k.receiveOne(ctx, rr.eventsURL)
			if err != nil {
				return err
			}
			if len(msgs) == 0 {
				continue
			}
			e, err = sesmail.DecodeEvent(aws.ToString(msgs[0].Body))
			if err == nil && e.EventType != sesmail.EventSend {
				break
			}
			// A Send of a reply already recorded as sent changes nothing
			// to hold: applied without a kill.
			t0 := time.Now()
			k.ackOn(ctx, rr.eventsURL, msgs, <-invoke(ctx, in, ev), t0)
		}
		before, err := k.eventSnapshot(ctx, e.Mail.MessageID, e.EventType)
		if err != nil {
			return err
		}
		if cat == "inside_ses_event_transaction" {
			if err := k.setHold(ctx, true); err != nil {
				return err
			}
		}
		t0 := time.Now()
		ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
		done := invoke(ictx, in, ev)
		landed, pid := false, 0
		switch cat {
		case "inside_ses_event_transaction":
			pid, landed = k.heldBackend(ctx, done, 30*time.Second)
		default:
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
			k.ackOn(ctx, rr.eventsURL, msgs, r, t0)
			k.missed[cat]++
			continue
		}
		k.kill(in)
		in = nil
		cancel()
		_ = k.setHold(ctx, false)
		if cat == "inside_ses_event_transaction" {
			if err := k.checkEventRolledBack(ctx, pid, e, before); err != nil {
				return err
			}
		}
		for _, m := range msgs {
			w.trace.add(aws.ToString(m.MessageId), attempt{tenant: t.id, start: t0, end: time.Now(), outcome: "killed"})
		}
		rr.killedEvents = append(rr.killedEvents, killedEvent{e.Mail.MessageID, e.EventType})
		k.landed[cat]++
		w.stats.fault("kill_" + cat)
	}
	if in == nil {
		if err := start(); err != nil {
			return err
		}
	}
	// Recovery: the killed events come back after the visibility timeout.
	return k.drainThrough(ctx, in, rr.eventsURL, "ses-event", func(context.Context) (bool, error) { rr.ses.Wait(); return true, nil })
}

// receiveOne is the event source mapping's poll of one record.
func (k *killer) receiveOne(ctx context.Context, queueURL string) ([]types.Message, events.SQSEvent, error) {
	out, err := k.w.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 1, WaitTimeSeconds: 1,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount}})
	if err != nil {
		return nil, events.SQSEvent{}, err
	}
	var ev events.SQSEvent
	for _, m := range out.Messages {
		k.w.payloads.keep("ses-event", aws.ToString(m.MessageId), aws.ToString(m.Body))
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), EventSource: "aws:sqs", Attributes: m.Attributes})
	}
	return out.Messages, ev, nil
}

// eventSnapshot is what an SES event's transaction writes: the event's
// record, the reply, KeyBuzz's outbound message and its ticket's events.
func (k *killer) eventSnapshot(ctx context.Context, sesID, eventType string) (string, error) {
	var recorded, ticketEvents int
	var r, m string
	err := k.w.check.QueryRow(ctx, `
SELECT (SELECT count(*) FROM keybuzz_amazon."SesEvent" WHERE "sesMessageId" = $1 AND "eventType" = $2),
       COALESCE((SELECT row_to_json(r)::text FROM keybuzz_amazon."Reply" r WHERE r."sesMessageId" = $1), ''),
       COALESCE((SELECT row_to_json(m)::text FROM public."MarketplaceOutboundMessage" m JOIN keybuzz_amazon."Reply" r ON r."id" = m."id" WHERE r."sesMessageId" = $1), ''),
       (SELECT count(*) FROM public."TicketEvent" e JOIN keybuzz_amazon."Reply" r ON r."ticketId" = e."ticketId" WHERE r."sesMessageId" = $1)`,
		sesID, eventType).Scan(&recorded, &r, &m, &ticketEvents)
	if err != nil {
		return "", fmt.Errorf("snapshot of SES %s of %s: %w", eventType, sesID, err)
	}
	if r == "" {
		return "", fmt.Errorf("snapshot of SES %s of %s: no reply has that MessageId", eventType, sesID)
	}
	return fmt.Sprintf("events %d; reply %s; outbound %s; ticket events %d", recorded, r, m, ticketEvents), nil
}

// checkEventRolledBack waits until PostgreSQL has ended the killed
// client's backend (pid), then checks that the event's transaction left
// nothing: the snapshot is the one taken before the invocation.
func (k *killer) checkEventRolledBack(ctx context.Context, pid int, e sesmail.Event, before string) error {
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
	after, err := k.eventSnapshot(ctx, e.Mail.MessageID, e.EventType)
	if err != nil {
		return err
	}
	if after != before {
		k.w.stats.add("kill_rollback_half_done", 1)
		k.halfDone = append(k.halfDone, fmt.Sprintf("SES %s of %s: before the kill %s; after %s", e.EventType, e.Mail.MessageID, before, after))
		return nil
	}
	k.w.stats.add("kill_rollback_verified", 1)
	return nil
}
