package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/localpoll"
	"github.com/keybuzz/keybuzz-amazon/dev/rie"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/dev/sesout"
	"github.com/keybuzz/keybuzz-amazon/shared/amazon"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/replies"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/replyqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
	"github.com/keybuzz/keybuzz-amazon/shared/sessender"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
)

// Real kills of the replysender bootstrap under aws-lambda-rie. Buyers of
// kill tenants write through the mail intake (their mails become tickets
// with the buyer's relay alias); agents reply through the real send-reply
// route (some requests twice with the same Idempotency-Key, some texts
// twice), which stores each reply and puts its job on the kill phase's
// reply queue. The SESv2 stand-in (dev/sesout) of this phase records every
// mail it accepts and publishes SES's events through SNS to a queue that an
// in-process sesevents consumer reads. The harness plays the event source
// mapping of the reply queue and SIGKILLs the emulator and the function
//
//   - reply_after_claim: the claim is committed, the SendEmail request is
//     held by a proxy in front of the stand-in and never reaches it;
//   - reply_after_ses_accepted: the proxy lets SendEmail through, the
//     stand-in accepts the mail (and publishes its Send event), the proxy
//     holds the answer: the function dies before it records the reply;
//   - reply_before_ack: the function returned, the job is not deleted.
//
// After a kill the killed sender's claims are expired (the lease passing).
// Then SES throttling, a 5xx and an answer lost after the mail went are
// injected on replies sent by a container that is not killed, and the
// queue is drained: a stale claim is re-examined, SES's own record (its
// Send event) looked for before any new SendEmail.
//
// The stand-in relays every mail it accepts to the kill sandbox's buyer
// relay (Amazon's), which delivers it to the buyer's inbox or refuses it:
// some tenants did not approve their sending address, some buyers opted
// out; Amazon's notice then comes back through the real mail intake (the
// SES receiver, the mail queue, the inboundmail bootstrap). The stand-in's
// outcome events are faulted on their way (replySESEventFaults: lost,
// duplicated, delayed, reordered, a bounce after a delivery).
//
// Judged against the stand-in's record of every mail it accepted: each
// reply the API accepted ends SENT with exactly one mail, or FAILED with a
// reason; no mail from an address of another tenant, or to another
// tenant's buyer. Then its fate against what SES published and what
// Amazon did (judgeFates): a reply Amazon refused, or whose Bounce SES
// published, ends FAILED with that reason; otherwise one whose Delivery
// event SES published ends DELIVERED, and one whose Delivery was lost
// stays SENT (ACCEPTED), the connector's contract: SENT when SES accepted,
// DELIVERED and FAILED only from SES's events and Amazon's notices. The
// buyers' inboxes hold at most one mail per reply, each of a reply the API
// accepted for that seller's tenant.
var replyKillCategories = []string{"reply_after_claim", "reply_after_ses_accepted", "reply_before_ack"}

// replyFaults are the SES faults injected on replies sent without a kill.
var replyFaults = []string{"reply_ses_throttled", "reply_ses_5xx", "reply_ses_answer_lost"}

const replyConfigurationSet = "chaos-replies"

// replySESEventFaults fault the stand-in's outcome events in the reply
// phase. A late bounce every 5th delivery makes 6 outcome events a period,
// which DropEvery 7 does not divide: with LateBounceEvery 6 every late
// bounce was the 7th event and dropped, and no Delivery ever was.
var replySESEventFaults = sesout.EventFaults{DropEvery: 7, DuplicateEvery: 5, DelayEvery: 4, Delay: 1500 * time.Millisecond,
	ReorderEvery: 3, ReorderWait: time.Second, LateBounceEvery: 5}

// replyRefusals: the n-th tenant of the phase (n % len) has Amazon refuse
// its replies for this reason ("": delivered), the sandbox's reasons.
var replyRefusals = []string{"", "sender_not_approved", "", "buyer_opted_out"}

// replyRig is the reply side of the kill phase.
type replyRig struct {
	ses    *sesout.Server
	relay  *sandbox.ReplyRelay // Amazon's relay to the buyers (the kill sandbox)
	proxy  *httptest.Server
	api    *httptest.Server
	before hold // SendEmail held before it reaches the stand-in
	after  hold // SendEmail's answer held after the stand-in accepted
	// heldStatus is the stand-in's answer the after hold kept (200: accepted).
	heldStatus atomic.Int32
	queueURL   string
	dlqURL     string
	eventsURL  string
	eventsDLQ  string
	stopEv     context.CancelFunc
	evDone     chan struct{}
	env        []string
	// What the harness asked for, the record the checker judges against.
	requests []replyRequest
	aliases  map[string]string // buyer alias (lower case) -> tenant
	refusing map[string]string // tenant -> the reason Amazon refuses its replies
	// killedEvents are the SES events whose sesevents invocation was killed.
	killedEvents []killedEvent
}

// replyRequest is one agent reply the API accepted (202), with its duplicates.
type replyRequest struct {
	tenant, ticket, alias string
	ids                   []string // the jobIds the API answered (a replayed key must answer the first)
	sameKey               bool
}

func (k *killer) startReplies(ctx context.Context) (*replyRig, error) {
	w := k.w
	rr := &replyRig{aliases: map[string]string{}, refusing: map[string]string{}}
	var err error
	if rr.queueURL, rr.dlqURL, err = w.createQueuePair(ctx, "chaos-kill-replies", 2); err != nil {
		return nil, err
	}
	eventsURL, eventsDLQ, err := w.createQueuePair(ctx, "chaos-kill-ses-events", 5)
	if err != nil {
		return nil, err
	}
	rr.eventsURL, rr.eventsDLQ = eventsURL, eventsDLQ
	snsc := sns.New(sns.Options{Region: devstack.Region, BaseEndpoint: aws.String(w.stack.Get("AWS_ENDPOINT_URL_SQS")), Credentials: w.awsCreds})
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("chaos-kill-ses-events")})
	if err != nil {
		return nil, fmt.Errorf("SES events topic: %w", err)
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(fmt.Sprintf("arn:aws:sqs:%s:000000000000:chaos-kill-ses-events", devstack.Region))}); err != nil {
		return nil, fmt.Errorf("subscribe the SES events queue: %w", err)
	}
	// The stand-in keeps every mail it accepts and relays it to Amazon's
	// relay (the kill sandbox), which fills the buyers' inboxes.
	if rr.relay, err = k.sb.StartReplyRelay("127.0.0.1:0"); err != nil {
		return nil, err
	}
	if rr.ses, err = sesout.Start("127.0.0.1:0", sesout.Config{Region: devstack.Region, VerifiedDomains: []string{devstack.InboundDomain},
		ConfigurationSets: []string{replyConfigurationSet}, TopicArn: aws.ToString(topic.TopicArn), SNS: snsc, Log: w.log,
		RelaySMTP: rr.relay.Addr()}); err != nil {
		return nil, err
	}
	rr.ses.SetEventFaults(replySESEventFaults)
	target, _ := url.Parse(rr.ses.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	rr.proxy = httptest.NewServer(http.HandlerFunc(func(wr http.ResponseWriter, r *http.Request) {
		if rr.before.catch(wr, r) {
			return
		}
		rr.after.mu.Lock()
		a := rr.after.cur
		if a == nil || !a.pred(r) {
			rr.after.mu.Unlock()
			rp.ServeHTTP(wr, r)
			return
		}
		rr.after.cur = nil
		rr.after.mu.Unlock()
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r) // the stand-in accepts; its answer stays here
		rr.heldStatus.Store(int32(rec.Code))
		close(a.arrived)
		select {
		case <-a.release:
		case <-r.Context().Done():
		}
		if c, _, err := http.NewResponseController(wr).Hijack(); err == nil {
			c.Close()
		}
	}))
	// SES's events, consumed in process (sesevents is not killed here).
	store := postgres.New(w.pool, postgres.WithClock(time.Now))
	evctx, stop := context.WithCancel(ctx)
	rr.stopEv, rr.evDone = stop, make(chan struct{})
	go func() {
		defer close(rr.evDone)
		localpoll.Consumer{Handler: sqsbatch.Handler(replies.NewEvents(store, w.log)), SQS: w.sqs, QueueURL: eventsURL,
			Region: devstack.Region, Log: w.log, Name: "sesevents"}.Run(evctx)
	}()
	q := replies.NewQueue(store, replyqueue.NewJobs(w.sqs, rr.queueURL), reply.DefaultRules(), w.log)
	rr.api = httptest.NewServer(httpapi.Mux(httpapi.SendReplyRoute(q, w.verifier, w.log)))
	rr.env = append(append([]string(nil), k.env...), "AWS_ENDPOINT_URL_SESV2="+rr.proxy.URL, "SES_CONFIGURATION_SET="+replyConfigurationSet,
		"SES_MAX_SEND_RATE=50", "REPLY_QUEUE_URL="+rr.queueURL)
	return rr, nil
}

func (rr *replyRig) close() {
	if rr.stopEv != nil {
		rr.stopEv()
		<-rr.evDone
	}
	for _, s := range []*httptest.Server{rr.proxy, rr.api} {
		if s != nil {
			s.Close()
		}
	}
	if rr.ses != nil {
		_ = rr.ses.Close()
	}
	if rr.relay != nil {
		_ = rr.relay.Close()
	}
}

// replyBootstrap is where buildBootstrap puts the replysender bootstrap.
func replyBootstrap(pollBin string) string {
	return filepath.Join(filepath.Dir(filepath.Dir(pollBin)), "replysender", "bootstrap")
}

// buyerTickets has a buyer of each tenant write from a relay alias of the
// country of its inbound address, through the mail intake (drained by in),
// and returns each tenant's ticket and alias.
func (k *killer) buyerTickets(ctx context.Context, rr *replyRig, ts []*tenant, in *rie.Instance) (map[string][2]string, error) {
	w := k.w
	aliases := map[string]string{}
	for i, t := range ts {
		var cc string
		if err := w.check.QueryRow(ctx, `SELECT "country" FROM public."inbound_addresses" WHERE "tenantId" = $1 AND lower("emailAddress") = lower($2)`,
			t.id, t.address).Scan(&cc); err != nil {
			return nil, fmt.Errorf("country of %s: %w", t.address, err)
		}
		m, ok := amazon.MarketplaceForCountry(cc)
		if !ok {
			return nil, fmt.Errorf("no marketplace for %q", cc)
		}
		// A buyer of an order of the seller on that marketplace, known to
		// Amazon's relay.
		order, err := k.sb.AddOrder(t.seller, m.ID, false)
		if err != nil {
			return nil, fmt.Errorf("order of %s on %s: %w", t.id, m.ID, err)
		}
		alias, _, ok := k.sb.OrderAlias(t.seller, order)
		if !ok {
			return nil, fmt.Errorf("no alias for order %s of %s", order, t.id)
		}
		if err := k.sendMailAbout(t, order, alias); err != nil {
			return nil, err
		}
		aliases[t.id] = alias
		switch why := replyRefusals[i%len(replyRefusals)]; why {
		case "sender_not_approved": // the tenant's address is not under Messaging Permissions
			rr.refusing[t.id] = why
		case "buyer_opted_out":
			k.sb.SetApprovedSenders(t.seller, m.ID, []string{t.address})
			k.sb.SetBuyerOptedOut(alias, true)
			rr.refusing[t.id] = why
		default:
			k.sb.SetApprovedSenders(t.seller, m.ID, []string{t.address})
		}
	}
	if err := k.drainMail(ctx, in); err != nil {
		return nil, err
	}
	out := map[string][2]string{}
	for _, t := range ts {
		alias := aliases[t.id]
		var ticket string
		if err := w.check.QueryRow(ctx, `SELECT "ticketId" FROM public."ExternalMessage" WHERE "tenantId" = $1 AND "buyerEmail" = $2 LIMIT 1`,
			t.id, alias).Scan(&ticket); err != nil {
			return nil, fmt.Errorf("the buyer mail from %s did not become a ticket of %s: %w", alias, t.id, err)
		}
		rr.aliases[strings.ToLower(alias)] = t.id
		out[t.id] = [2]string{ticket, alias}
	}
	return out, nil
}

// postReply is the agent's reply through the send-reply route.
func (k *killer) postReply(ctx context.Context, rr *replyRig, t *tenant, ticket, text, key string) (string, error) {
	tok, err := k.w.token(t.id)
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"message": text})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, rr.api.URL+strings.Replace(httpapi.SendReplyPath, "{ticketId}", url.PathEscape(ticket), 1), bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		JobID string `json:"jobId"`
	}
	raw := new(bytes.Buffer)
	_, _ = raw.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw.Bytes(), &out) != nil || out.JobID == "" {
		return "", fmt.Errorf("send-reply for %s: %d %.300s", t.id, resp.StatusCode, raw.String())
	}
	k.w.stats.add("reply_requests", 1)
	return out.JobID, nil
}

// reply posts one agent reply on ticket; variant 1 repeats the request
// with the same Idempotency-Key, variant 2 sends the same text twice
// without a key (two replies).
func (k *killer) reply(ctx context.Context, rr *replyRig, t *tenant, ticket, alias string, n int) error {
	text := fmt.Sprintf("Bonjour, votre colis part demain (reponse %d).", n)
	key := ""
	if n%3 != 2 {
		key = fmt.Sprintf("chaos-reply-%d", n)
	}
	id, err := k.postReply(ctx, rr, t, ticket, text, key)
	if err != nil {
		return err
	}
	rq := replyRequest{tenant: t.id, ticket: ticket, alias: alias, ids: []string{id}, sameKey: key != ""}
	switch n % 3 {
	case 1: // the agent's client retries: the same key answers the same reply
		id2, err := k.postReply(ctx, rr, t, ticket, text, key)
		if err != nil {
			return err
		}
		rq.ids = append(rq.ids, id2)
		k.w.stats.fault("reply_duplicate_request")
	case 2: // the same text twice: two replies
		id2, err := k.postReply(ctx, rr, t, ticket, text, "")
		if err != nil {
			return err
		}
		rr.requests = append(rr.requests, replyRequest{tenant: t.id, ticket: ticket, alias: alias, ids: []string{id2}})
		k.w.stats.fault("reply_same_text_twice")
	}
	rr.requests = append(rr.requests, rq)
	return nil
}

// expireReplyClaims stands for the lease passing after a sender died.
func (k *killer) expireReplyClaims(ctx context.Context) error {
	_, err := k.w.check.Exec(ctx, `UPDATE keybuzz_amazon."Reply" SET "leaseUntil" = now() - interval '1 second' WHERE "state" = 'SENDING'`)
	if err != nil {
		return fmt.Errorf("expire reply claims: %w", err)
	}
	return nil
}

// replyKills runs ReplyKills kills, alternating the categories, then the
// SES faults, then drains the reply queue with a container not killed.
func (k *killer) replyKills(ctx context.Context) error {
	w := k.w
	t0 := time.Now()
	rr, err := k.startReplies(ctx)
	if err != nil {
		return err
	}
	k.replies = rr
	defer rr.close()
	mailIn, err := rie.Start(ctx, mailBootstrap(k.bin), k.env)
	if err != nil {
		return err
	}
	defer func() { mailIn.Close(); k.keepLogs(mailIn) }()
	bin := replyBootstrap(k.bin)
	var in *rie.Instance
	start := func() error {
		var err error
		in, err = rie.Start(ctx, bin, rr.env)
		return err
	}
	defer func() {
		if in != nil {
			in.Close()
			k.keepLogs(in)
		}
	}()
	// One buyer ticket per tenant used.
	var used []*tenant
	for i := 0; i < w.set.ReplyKills+len(replyFaults) && i < len(w.killTenants); i++ {
		used = append(used, w.killTenants[i])
	}
	threads, err := k.buyerTickets(ctx, rr, used, mailIn)
	if err != nil {
		return err
	}
	n := 0
	for i := 0; i < w.set.ReplyKills; i++ {
		cat := replyKillCategories[i%len(replyKillCategories)]
		t := used[i%len(used)]
		th := threads[t.id]
		if in == nil {
			if err := start(); err != nil {
				return err
			}
		}
		n++
		if err := k.reply(ctx, rr, t, th[0], th[1], n); err != nil {
			return err
		}
		msgs, ev, err := k.receiveFrom(ctx, rr.queueURL, "reply", 2)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			k.missed[cat]++
			continue
		}
		isSend := func(r *http.Request) bool {
			return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/outbound-emails")
		}
		var arrived <-chan struct{}
		release := func() {}
		switch cat {
		case "reply_after_claim":
			arrived, release = rr.before.arm(isSend)
		case "reply_after_ses_accepted":
			arrived, release = rr.after.arm(isSend)
		}
		t0 := time.Now()
		ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
		done := invoke(ictx, in, ev)
		landed := false
		switch cat {
		case "reply_before_ack":
			select {
			case r := <-done:
				landed = r.err == nil
				done <- r
			case <-time.After(45 * time.Second):
			}
		default:
			select {
			case <-arrived:
				// After SES accepted: only when the stand-in did.
				landed = cat != "reply_after_ses_accepted" || rr.heldStatus.Load() == http.StatusOK
			case r := <-done:
				done <- r
			case <-time.After(30 * time.Second):
			}
		}
		if !landed {
			release()
			r := <-done
			cancel()
			k.ackOn(ctx, rr.queueURL, msgs, r, t0)
			k.missed[cat]++
			continue
		}
		k.kill(in)
		in = nil
		cancel()
		release()
		for _, m := range msgs {
			w.trace.add(aws.ToString(m.MessageId), attempt{tenant: t.id, start: t0, end: time.Now(), outcome: "killed"})
		}
		if err := k.expireReplyClaims(ctx); err != nil {
			return err
		}
		k.landed[cat]++
		w.stats.fault("kill_" + cat)
	}
	// SES's faults, on replies sent by a container not killed.
	if in == nil {
		if err := start(); err != nil {
			return err
		}
	}
	for i, f := range replyFaults {
		t := used[(w.set.ReplyKills+i)%len(used)]
		th := threads[t.id]
		if err := k.drainReplies(ctx, rr, in); err != nil {
			return err
		}
		var fl sesout.Faults
		switch f {
		case "reply_ses_throttled":
			fl.Throttle = 1
		case "reply_ses_5xx":
			fl.ServerErrors = 1
		case "reply_ses_answer_lost":
			fl.LostAnswers = 1
		}
		rr.ses.SetFaults(fl)
		calls := rr.ses.Calls()
		n++
		if err := k.reply(ctx, rr, t, th[0], th[1], n); err != nil {
			return err
		}
		if err := k.drainReplies(ctx, rr, in); err != nil {
			return err
		}
		if rr.ses.Calls() > calls {
			w.stats.fault(f)
		}
		rr.ses.SetFaults(sesout.Faults{})
	}
	// Recovery: the killed jobs come back after the visibility timeout.
	if err := k.drainReplies(ctx, rr, in); err != nil {
		return err
	}
	// What SES and Amazon answered: the relays and the faulted events
	// settle, Amazon's notices go through the mail intake, the events are
	// consumed.
	if err := k.settleReplyFates(ctx, rr, mailIn); err != nil {
		return err
	}
	if w.set.SESEventKills > 0 {
		var delivered []*tenant
		for _, t := range used {
			if rr.refusing[t.id] == "" {
				delivered = append(delivered, t)
			}
		}
		if err := k.sesEventKills(ctx, rr, in, delivered, threads, &n); err != nil {
			return fmt.Errorf("SES-event kills: %w", err)
		}
		if err := k.drainMail(ctx, mailIn); err != nil {
			return err
		}
	}
	w.stats.add("reply_kill_phase_ms", int(time.Since(t0).Milliseconds()))
	w.stats.add("reply_sendemail_calls", rr.ses.Calls())
	w.print("reply kills: %d replies asked for, %d SendEmail calls, %d mails accepted by SES, in %s",
		n, rr.ses.Calls(), len(rr.ses.Sent()), time.Since(t0).Round(time.Second))
	return nil
}

// settleReplyFates waits for the stand-in's relays and events (delayed or
// held ones included), drains Amazon's notices through the mail intake
// (in), then waits until the SES-events queue stays empty.
func (k *killer) settleReplyFates(ctx context.Context, rr *replyRig, in *rie.Instance) error {
	w := k.w
	rr.ses.Wait()
	if err := k.drainMail(ctx, in); err != nil {
		return err
	}
	deadline := time.Now().Add(w.set.DrainTimeout)
	for empty := 0; empty < 3; {
		if time.Now().After(deadline) {
			return fmt.Errorf("reply kills: the SES-events queue not drained after %s", w.set.DrainTimeout)
		}
		d, err := w.queueDepth(ctx, rr.eventsURL)
		if err != nil {
			return err
		}
		if d == 0 {
			empty++
		} else {
			empty = 0
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, e := range rr.ses.Events() {
		if e.Fault != "" {
			w.stats.fault("ses_event_" + e.Fault)
		}
	}
	return nil
}

// drainReplies runs the reply queue through in, not killed, until it
// stays empty and no reply of the phase waits to be sent (or the one that
// does had its job dead-lettered: it stays open, and the checker counts it
// lost).
func (k *killer) drainReplies(ctx context.Context, rr *replyRig, in *rie.Instance) error {
	return k.drainThrough(ctx, in, rr.queueURL, "reply", func(ctx context.Context) (bool, error) {
		var open int
		if err := k.w.check.QueryRow(ctx, `SELECT count(*) FROM keybuzz_amazon."Reply" WHERE "state" IN ('QUEUED', 'SENDING')`).Scan(&open); err != nil {
			return false, err
		}
		if open == 0 {
			return true, nil
		}
		dl, err := k.w.queueDepth(ctx, rr.dlqURL)
		return err == nil && dl > 0, nil
	})
}

// replyRow is a reply as the connector recorded it.
type replyRow struct {
	id, tenant, state, reasonCode, reason, from, to string
}

// ReplyInvariants judge the replies against the SES stand-in's record.
type ReplyInvariants struct {
	Requested   int `json:"requested"`   // replies the API accepted (202), duplicates of a key counted once
	Sent        int `json:"sent"`        // SENT (accepted or delivered) with exactly one mail
	Failed      int `json:"failed"`      // FAILED with a reason
	Mails       int `json:"mails"`       // mails the stand-in accepted
	Duplicated  int `json:"duplicated"`  // mails beyond one per reply, or no reply's; a replayed key answering another reply
	Lost        int `json:"lost"`        // accepted requests not ending SENT with its mail, or FAILED with a reason
	WrongTenant int `json:"wrongTenant"` // mails from an address not the reply's tenant's, or to a buyer not of its ticket
	// Fates (judgeFates), against SES's published events and Amazon's answers.
	Delivered int `json:"delivered"` // DELIVERED (a Delivery event reached the connector)
	Refused   int `json:"refused"`   // replies Amazon refused (the sandbox's record)
	Bounced   int `json:"bounced"`   // replies whose Bounce SES published (a late one after the Delivery included)
	// DeliveryLost: replies left SENT as they should, SES accepted and
	// their Delivery event lost.
	DeliveryLost int `json:"deliveryLost"`
	WrongFate    int `json:"wrongFate"` // a state the events and Amazon's answer do not give
	// EventsUnapplied: an SES event whose sesevents invocation was killed
	// not recorded exactly once after its redelivery.
	EventsUnapplied int `json:"eventsUnapplied"`
	// TicketEventsTwice: a reply that wrote one of KeyBuzz's status events
	// (OUTBOUND_SENT, OUTBOUND_FAILED) more than once.
	TicketEventsTwice int `json:"ticketEventsTwice"`
	WrongReason       int `json:"wrongReason"`     // FAILED with a reason neither Amazon's refusal nor SES's bounce gave
	BuyerDuplicated   int `json:"buyerDuplicated"` // a buyer's inbox holding a reply twice, or a mail of no reply
}

// judgeReplies compares the requests the API accepted, the replies the
// connector recorded and the mails SES accepted. addresses are each
// tenant's inbound addresses (lower case).
func judgeReplies(v *Invariants, reqs []replyRequest, rows []replyRow, mails []sesout.Sent, addresses map[string]map[string]bool, aliases map[string]string) {
	r := &v.Replies
	byID := map[string]replyRow{}
	for _, row := range rows {
		byID[row.id] = row
	}
	perReply := map[string]int{}
	for _, m := range mails {
		perReply[m.Tags[reply.TagReply]]++
	}
	r.Mails = len(mails)
	seen := map[string]bool{}
	for _, q := range reqs {
		for _, id := range q.ids[1:] {
			if id != q.ids[0] {
				r.Duplicated++
				v.problem("a replayed Idempotency-Key answered reply %s, the first request %s", id, q.ids[0])
			}
		}
		id := q.ids[0]
		if seen[id] {
			continue
		}
		seen[id] = true
		r.Requested++
		row, ok := byID[id]
		n := perReply[sessender.TagValue(id)]
		if n > 1 {
			r.Duplicated += n - 1
			v.problem("reply %s of %s: SES accepted %d mails", id, q.tenant, n)
		}
		switch {
		case !ok:
			r.Lost++
			v.problem("reply %s of %s: accepted by the API, not recorded", id, q.tenant)
		case (row.state == reply.StateAccepted || row.state == reply.StateDelivered) && n >= 1:
			r.Sent++
		case row.state == reply.StateFailed && strings.TrimSpace(row.reason) != "":
			r.Failed++
		default:
			r.Lost++
			v.problem("reply %s of %s: state %s (reason %q) with %d mails accepted by SES", id, q.tenant, row.state, row.reason, n)
		}
		if ok && (row.tenant != q.tenant || !strings.EqualFold(row.to, q.alias)) {
			r.WrongTenant++
			v.problem("reply %s asked by %s to %s recorded for %s to %s", id, q.tenant, q.alias, row.tenant, row.to)
		}
	}
	for _, m := range mails {
		tag := m.Tags[reply.TagReply]
		var row replyRow
		found := false
		for id := range seen {
			if sessender.TagValue(id) == tag {
				row, found = byID[id], true
				break
			}
		}
		if !found {
			r.Duplicated++
			v.problem("SES accepted mail %s for no reply the API accepted (tag %q)", m.MessageID, tag)
			continue
		}
		wrong := !addresses[row.tenant][strings.ToLower(m.From)] || m.Tags[reply.TagTenant] != sessender.TagValue(row.tenant) || len(m.To) != 1
		for _, to := range m.To {
			wrong = wrong || aliases[strings.ToLower(to)] != row.tenant
		}
		if wrong {
			r.WrongTenant++
			v.problem("mail %s of reply %s (tenant %s): from %s to %v", m.MessageID, row.id, row.tenant, m.From, m.To)
		}
	}
}

// judgeAppliedOnce: each killed SES event (with how many times it is
// recorded) recorded once after its redelivery; twice are the replies'
// status events written more than once ("<reply> <type>" -> count).
func judgeAppliedOnce(v *Invariants, killed map[killedEvent]int, twice map[string]int) {
	for e, c := range killed {
		if c != 1 {
			v.Replies.EventsUnapplied++
			v.problem("SES %s of %s, killed in sesevents: recorded %d times after its redelivery", e.eventType, e.sesID, c)
		}
	}
	for key, c := range twice {
		v.Replies.TicketEventsTwice++
		v.problem("reply and status event %s written %d times", key, c)
	}
}

// sesIDOf is SES's MessageId of a Message-ID SES gave (<id@region.amazonses.com>).
func sesIDOf(msgID string) string {
	id, _, _ := strings.Cut(strings.Trim(strings.TrimSpace(msgID), "<>"), "@")
	return id
}

// judgeFates judges each reply with one mail against what became of it:
// Amazon's refusals and the buyers' inboxes (the kill sandbox's record,
// sellerTenant maps its sellers to tenants) and the events the SES
// stand-in published (a dropped event was never published).
func judgeFates(v *Invariants, rows []replyRow, mails []sesout.Sent, evs []sesout.Event, inbox []sandbox.BuyerMail,
	refused []sandbox.RefusedReply, sellerTenant map[string]string) {
	r := &v.Replies
	mailsOf := map[string][]sesout.Sent{}
	bySES := map[string]sesout.Sent{}
	for _, m := range mails {
		tag := m.Tags[reply.TagReply]
		mailsOf[tag] = append(mailsOf[tag], m)
		bySES[m.MessageID] = m
	}
	published := map[string]map[string]bool{}
	for _, e := range evs {
		if e.Published > 0 {
			if published[e.MessageID] == nil {
				published[e.MessageID] = map[string]bool{}
			}
			published[e.MessageID][e.Type] = true
		}
	}
	refusedFor := map[string]string{}
	for _, f := range refused {
		refusedFor[sesIDOf(f.MessageID)] = f.Reason
	}
	inBox := map[string]int{}
	for _, b := range inbox {
		m, ok := bySES[sesIDOf(b.MessageID)]
		if !ok {
			r.BuyerDuplicated++
			v.problem("the buyer %s of seller %s received mail %s, of no mail SES accepted", b.Alias, b.SellerID, b.MessageID)
			continue
		}
		if inBox[m.MessageID]++; inBox[m.MessageID] > 1 {
			r.BuyerDuplicated++
			v.problem("the buyer %s received mail %s (reply %s) %d times", b.Alias, m.MessageID, m.Tags[reply.TagReply], inBox[m.MessageID])
		}
		if m.Tags[reply.TagTenant] != sessender.TagValue(sellerTenant[b.SellerID]) {
			r.WrongTenant++
			v.problem("mail %s of tenant %s reached a buyer of seller %s", m.MessageID, m.Tags[reply.TagTenant], b.SellerID)
		}
	}
	for _, row := range rows {
		ms := mailsOf[sessender.TagValue(row.id)]
		if len(ms) != 1 {
			continue // judgeReplies counts these
		}
		id := ms[0].MessageID
		why, wasRefused := refusedFor[id]
		bounced := published[id][sesmail.EventBounce]
		want := reply.StateAccepted
		switch {
		case wasRefused || bounced:
			want = reply.StateFailed
		case published[id][sesmail.EventDelivery]:
			want = reply.StateDelivered
		}
		if wasRefused {
			r.Refused++
		}
		if bounced {
			r.Bounced++
		}
		if want == reply.StateAccepted && row.state == want {
			r.DeliveryLost++
		}
		if row.state == reply.StateDelivered {
			r.Delivered++
		}
		if row.state != want {
			r.WrongFate++
			v.problem("reply %s of %s (mail %s): %s, want %s (Amazon refused: %q, SES published %v)", row.id, row.tenant, id, row.state, want, why, published[id])
			continue
		}
		if want == reply.StateFailed && !(wasRefused && row.reasonCode == "amazon_"+why) && !(bounced && strings.HasPrefix(row.reasonCode, "bounce_")) {
			r.WrongReason++
			v.problem("reply %s of %s FAILED for %q (%s); Amazon refused it for %q, SES bounce published: %v", row.id, row.tenant, row.reasonCode, row.reason, why, bounced)
		}
	}
}

// checkReplies reads what the judge needs.
func (w *world) checkReplies(ctx context.Context, v *Invariants) error {
	k := w.killer
	if k == nil || k.replies == nil {
		return nil
	}
	rr := k.replies
	var ids []string
	for _, t := range w.killTenants {
		ids = append(ids, t.id)
	}
	rows, err := w.check.Query(ctx, `SELECT "id", "tenantId", "state", COALESCE("reasonCode", ''), COALESCE("reason", ''), "fromAddress", "toAddress" FROM keybuzz_amazon."Reply" WHERE "tenantId" = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("replies: %w", err)
	}
	var rs []replyRow
	for rows.Next() {
		var r replyRow
		if err := rows.Scan(&r.id, &r.tenant, &r.state, &r.reasonCode, &r.reason, &r.from, &r.to); err != nil {
			rows.Close()
			return err
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	addrs := map[string]map[string]bool{}
	arows, err := w.check.Query(ctx, `SELECT "tenantId", lower("emailAddress") FROM public."inbound_addresses" WHERE "tenantId" = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("inbound addresses: %w", err)
	}
	for arows.Next() {
		var t, a string
		if err := arows.Scan(&t, &a); err != nil {
			arows.Close()
			return err
		}
		if addrs[t] == nil {
			addrs[t] = map[string]bool{}
		}
		addrs[t][a] = true
	}
	arows.Close()
	mails := rr.ses.Sent()
	judgeReplies(v, rr.requests, rs, mails, addrs, rr.aliases)
	var inbox []sandbox.BuyerMail
	var refused []sandbox.RefusedReply
	sellerTenant := map[string]string{}
	for _, t := range w.killTenants {
		inbox = append(inbox, k.sb.BuyerInbox(t.seller)...)
		refused = append(refused, k.sb.RefusedReplies(t.seller)...)
		sellerTenant[t.seller] = t.id
	}
	judgeFates(v, rs, mails, rr.ses.Events(), inbox, refused, sellerTenant)
	for _, f := range refused {
		w.stats.add("reply_refused_"+f.Reason, 1)
	}
	counts := map[killedEvent]int{}
	for _, e := range rr.killedEvents {
		var c int
		if err := w.check.QueryRow(ctx, `SELECT count(*) FROM keybuzz_amazon."SesEvent" WHERE "sesMessageId" = $1 AND "eventType" = $2`, e.sesID, e.eventType).Scan(&c); err != nil {
			return fmt.Errorf("killed SES events: %w", err)
		}
		counts[e] = c
	}
	twice := map[string]int{}
	trows, err := w.check.Query(ctx, `SELECT e."payload"->>'outboundMessageId' || ' ' || e."type"::text, count(*) FROM public."TicketEvent" e
WHERE e."tenantId" = ANY($1) AND e."type"::text IN ('OUTBOUND_SENT', 'OUTBOUND_FAILED') GROUP BY 1 HAVING count(*) > 1`, ids)
	if err != nil {
		return fmt.Errorf("ticket events: %w", err)
	}
	for trows.Next() {
		var key string
		var c int
		if err := trows.Scan(&key, &c); err != nil {
			trows.Close()
			return err
		}
		twice[key] = c
	}
	trows.Close()
	if err := trows.Err(); err != nil {
		return err
	}
	judgeAppliedOnce(v, counts, twice)
	d, err := w.queueDepth(ctx, rr.queueURL)
	if err != nil {
		return err
	}
	v.QueueLeft += d
	if d, err = w.queueDepth(ctx, rr.eventsURL); err != nil {
		return err
	}
	v.QueueLeft += d
	return nil
}
