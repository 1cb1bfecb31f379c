package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/poll"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/pollsender"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/secret"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/sqsbatch"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// errKilled is what a killed container's calls get: nothing of it reaches
// PostgreSQL, Amazon or Vault any more.
var errKilled = errors.New("chaos: container killed")

// container is one polltenant Lambda container: its own warm caches
// (credentials, access tokens) and a kill switch. Killed, it stops at once,
// wherever it is, writes nothing more (not even the poll's outcome) and
// acknowledges nothing: SQS redelivers its records after the visibility
// timeout, as after a crash or a timeout. A new, cold container replaces it.
type container struct {
	dead     atomic.Bool
	inIngest atomic.Int32 // page transactions in flight
	inHTTP   atomic.Int32 // LWA or SP-API calls in flight
	inPage   atomic.Int32 // polls between their first and last page
	poller   *poll.Poller
	bug      func(tenantID string) error // a test's deliberate defect in the store (nil: none)
}

// deadStore is the connector's store as a container sees it.
type deadStore struct {
	c *container
	s *postgres.Store
}

func (d deadStore) AcquirePoll(ctx context.Context, tenantID, connectionID, owner string, leaseFor time.Duration) (marketplace.PollState, error) {
	if d.c.dead.Load() {
		return marketplace.PollState{}, errKilled
	}
	return d.s.AcquirePoll(ctx, tenantID, connectionID, owner, leaseFor)
}

func (d deadStore) IngestPage(ctx context.Context, p marketplace.InboundPage) (marketplace.PageResult, error) {
	if d.c.dead.Load() {
		return marketplace.PageResult{}, errKilled
	}
	if bug := d.c.bug; bug != nil {
		if err := bug(p.TenantID); err != nil {
			return marketplace.PageResult{}, err
		}
	}
	d.c.inIngest.Add(1)
	defer d.c.inIngest.Add(-1)
	if p.NextToken != "" {
		d.c.inPage.Store(1) // a multi-page window: later kills land between its pages
	}
	return d.s.IngestPage(ctx, p)
}

func (d deadStore) FinishPoll(ctx context.Context, o marketplace.PollOutcome) error {
	if d.c.dead.Load() {
		return errKilled
	}
	return d.s.FinishPoll(ctx, o)
}

func (d deadStore) TakeToken(ctx context.Context, connectionID, operation string, plan marketplace.RatePlan) (marketplace.Grant, error) {
	if d.c.dead.Load() {
		return marketplace.Grant{}, errKilled
	}
	return d.s.TakeToken(ctx, connectionID, operation, plan)
}

func (d deadStore) RecordThrottle(ctx context.Context, connectionID, operation string) (time.Time, error) {
	if d.c.dead.Load() {
		return time.Time{}, errKilled
	}
	return d.s.RecordThrottle(ctx, connectionID, operation)
}

func (d deadStore) RecordSuccess(ctx context.Context, connectionID, operation string, rate float64) error {
	if d.c.dead.Load() {
		return errKilled
	}
	return d.s.RecordSuccess(ctx, connectionID, operation, rate)
}

// deadTransport is the container's network to Amazon.
type deadTransport struct{ c *container }

func (t deadTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.c.dead.Load() {
		return nil, errKilled
	}
	t.c.inHTTP.Add(1)
	defer t.c.inHTTP.Add(-1)
	return http.DefaultTransport.RoundTrip(r)
}

// deadSecrets is the container's Vault.
type deadSecrets struct {
	c *container
	s *vaultstore.Store
}

func (d deadSecrets) App(ctx context.Context) (marketplace.AppCredentials, error) {
	if d.c.dead.Load() {
		return marketplace.AppCredentials{}, errKilled
	}
	return d.s.App(ctx)
}

func (d deadSecrets) AppFor(ctx context.Context, source marketplace.AppSource) (marketplace.AppCredentials, error) {
	if d.c.dead.Load() {
		return marketplace.AppCredentials{}, errKilled
	}
	return d.s.AppFor(ctx, source)
}

func (d deadSecrets) Tenant(ctx context.Context, tenantID string) (marketplace.TenantCredentials, error) {
	if d.c.dead.Load() {
		return marketplace.TenantCredentials{}, errKilled
	}
	return d.s.Tenant(ctx, tenantID)
}

func (d deadSecrets) UpdateRefreshToken(ctx context.Context, tenantID string, tc marketplace.TenantCredentials, tok secret.Value) (int, error) {
	if d.c.dead.Load() {
		return 0, errKilled
	}
	return d.s.UpdateRefreshToken(ctx, tenantID, tc, tok)
}

func (d deadSecrets) PutTenant(ctx context.Context, tenantID string, tc marketplace.TenantCredentials) (string, error) {
	if d.c.dead.Load() {
		return "", errKilled
	}
	return d.s.PutTenant(ctx, tenantID, tc)
}

func (d deadSecrets) DeleteTenant(ctx context.Context, tenantID string) error {
	if d.c.dead.Load() {
		return errKilled
	}
	return d.s.DeleteTenant(ctx, tenantID)
}

func (w *world) newContainer() *container {
	c := &container{bug: w.bug}
	st := deadStore{c: c, s: w.store}
	hc := &http.Client{Transport: deadTransport{c}, Timeout: 5 * time.Second}
	sp := spapi.New(spapi.WithHTTPClient(hc))
	gw := sellerapi.New(credcache.New(deadSecrets{c: c, s: w.secrets}, credcache.WithClock(w.clock.Now)),
		lwa.New(w.sbServer.URL+"/auth/o2/token", lwa.WithHTTPClient(hc)), sp, st, sellerapi.WithEndpoint(w.sbServer.URL), sellerapi.WithLogger(w.log))
	src := poll.NewAmazonSource(gw, sp, poll.WithAmazonConfig(poll.AmazonConfig{PageSize: w.set.PageSize}), poll.WithClock(w.clock.Now))
	c.poller = poll.NewPoller(st, src, poll.WithConfig(poll.Config{Interval: time.Minute, Lookback: lookback}), poll.WithClock(w.clock.Now),
		poll.WithLogger(slog.New(w.errs.handler(w.log.Handler()))))
	return c
}

// worker is a polltenant container fed by the queue, like Lambda's event
// source mapping: receive a batch, invoke, delete the records not reported
// as failures. Some invocations are killed at a random point.
func (w *world) worker(ctx context.Context) {
	c := w.newContainer()
	for ctx.Err() == nil {
		out, err := w.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(w.queueURL), MaxNumberOfMessages: w.set.Batch, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil || len(out.Messages) == 0 {
			if err != nil && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		w.stats.add("sqs_receives", 1)
		w.stats.add("sqs_records", len(out.Messages))
		calm := w.calm.Load()
		dupID := ""
		if !calm && w.float() < w.set.DupRate {
			// Visible again at once: another container gets it while this
			// one works on it (an at-least-once duplicate).
			m := out.Messages[w.intN(len(out.Messages))]
			if _, err := w.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(w.queueURL),
				ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err == nil {
				w.stats.fault("sqs_duplicate_delivery")
				dupID = aws.ToString(m.MessageId)
			}
		}
		ev := events.SQSEvent{}
		tenantOf := map[string]string{}
		for _, m := range out.Messages {
			w.payloads.keep("poll", aws.ToString(m.MessageId), aws.ToString(m.Body))
			if msg, err := pollqueue.Decode(aws.ToString(m.Body)); err == nil {
				tenantOf[aws.ToString(m.MessageId)] = msg.TenantID
			}
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body), EventSource: "aws:sqs", Attributes: m.Attributes})
		}
		ictx, cancel := context.WithTimeout(ctx, 60*time.Second) // the function's timeout
		var killed atomic.Value
		var done atomic.Bool
		var timer *time.Timer
		if !calm && w.float() < w.set.CrashRate {
			delay := time.Duration(w.float() * float64(w.set.CrashWindow))
			timer = time.AfterFunc(delay, func() {
				kind := "crash_between_steps"
				switch {
				case done.Load():
					kind = "crash_before_ack"
				case c.inIngest.Load() > 0:
					kind = "crash_inside_page_transaction"
				case c.inHTTP.Load() > 0:
					kind = "crash_inside_page_fetch"
				case c.inPage.Load() > 0:
					kind = "crash_between_pages"
				}
				c.dead.Store(true)
				cancel()
				killed.Store(kind)
			})
		}
		c.inPage.Store(0)
		t0 := time.Now()
		resp, _ := sqsbatch.Handler(c.poller)(ictx, ev)
		done.Store(true)
		if timer != nil && !timer.Stop() {
			for killed.Load() == nil {
				time.Sleep(time.Millisecond)
			}
		}
		cancel()
		t1 := time.Now()
		injected := func(id string) string {
			if id == dupID {
				return "duplicate"
			}
			return ""
		}
		if k, ok := killed.Load().(string); ok {
			w.stats.fault(k)
			w.stats.add("crashes", 1)
			for id, tenant := range tenantOf {
				w.trace.add(id, attempt{tenant: tenant, start: t0, end: t1, outcome: "killed", injected: injected(id), errs: w.errs.take(id)})
			}
			c = w.newContainer() // cold start
			continue
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		w.stats.add("batch_item_failures", len(failed))
		notDeleted := !calm && w.float() < w.set.NoDeleteRate
		// A batch that outlasted the visibility timeout comes back whole
		// (its records are deleted only once the invocation returns): what
		// slowed it, if injected, explains the redelivery of its handled
		// records.
		slow := ""
		if t1.Sub(t0) >= time.Duration(w.set.Visibility)*time.Second {
			for _, tenant := range tenantOf {
				if c := w.causeOf(tenant, t0, t1); c != "" {
					slow = "slow_batch_" + c
					break
				}
			}
		}
		for id, tenant := range tenantOf {
			a := attempt{tenant: tenant, start: t0, end: t1, outcome: "ok", injected: injected(id), errs: w.errs.take(id), cause: slow}
			if failed[id] {
				a.outcome, a.cause = "failed", w.aftermath(w.causeOf(tenant, t0, t1), a)
			}
			if notDeleted {
				a.injected = "not_deleted"
			}
			w.trace.add(id, a)
		}
		if notDeleted {
			w.stats.fault("sqs_visibility_timeout_redelivery")
			continue // not deleted: redelivered once the visibility timeout expires
		}
		var del []types.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			if !failed[aws.ToString(m.MessageId)] {
				del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
			}
		}
		if len(del) > 0 {
			if _, err := w.sqs.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(w.queueURL), Entries: del}); err != nil {
				w.stats.add("sqs_delete_errors", 1)
			}
		}
	}
}

// aftermath judges a cause found in a Vault outage's aftermath (2-30 s
// after it): it stands only for a failure of Vault itself; such failures
// are counted and the first ones shown.
func (w *world) aftermath(cause string, a attempt) string {
	if !strings.HasSuffix(cause, "_aftermath") {
		return cause
	}
	if !vaultFailure(a.errs) {
		return "" // after a Vault outage, but not a failure of Vault: unexplained
	}
	if w.stats.get("failures_in_vault_aftermath") < 10 {
		w.print("a failure %s after a Vault outage (%s) for %s: %q", a.start.Sub(w.trace.lastEnd(cause)).Round(time.Millisecond), cause, a.tenant, a.errs)
	}
	w.stats.add("failures_in_vault_aftermath", 1)
	return cause
}

// vaultFailure reports whether a delivery's logged errors are Vault's
// (reading or writing credentials): what a Vault outage's aftermath can
// explain.
func vaultFailure(errs []string) bool {
	for _, e := range errs {
		if strings.Contains(e, "credentials") || strings.Contains(e, "secret/data") || strings.Contains(e, "vault") {
			return true
		}
	}
	return false
}

// causeOf names the injected fault that explains a failed delivery for
// tenant between from and to: an answer of Amazon or LWA to that tenant's
// seller that was not a success, or an infrastructure outage; "" if none.
func (w *world) causeOf(tenantID string, from, to time.Time) string {
	if t := w.byTenant[tenantID]; t != nil {
		if kind, ok := t.front.troubled(t.seller, from, to); ok {
			return kind
		}
	}
	if kind, ok := w.trace.outageDuring(from, to); ok {
		return kind
	}
	return ""
}

// queueDepth is visible plus in-flight messages.
func (w *world) queueDepth(ctx context.Context, queueURL string) (int, error) {
	out, err := w.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0, err
	}
	a, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	b, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return a + b, nil
}

// betweenCycles is what happens on Amazon between two schedules: some
// sellers revoke the app, buyers act, faults are armed, time passes.
func (w *world) betweenCycles(chaos bool) {
	if chaos && !w.revokedFirst {
		w.revokedFirst = true
		for _, t := range w.tenants[len(w.tenants)-min(w.set.RevokeTenants, len(w.tenants)):] {
			w.revoke(t)
		}
	}
	for _, t := range w.tenants {
		if t.revokedAt != nil || t.emptiedAt != nil {
			continue
		}
		if chaos && w.float() < w.set.RevokeRate {
			w.revoke(t)
			continue
		}
		if w.float() < w.set.ActivityRate {
			w.activity(t)
		}
		if w.ch != nil && w.float() < w.set.MailRate {
			w.buyerMail(t, chaos && w.float() < w.set.MailFaultRate)
		}
		if w.ch != nil && chaos && w.float() < w.set.HostileMailRate {
			w.hostileMail(t)
		}
		if !chaos {
			continue
		}
		if w.float() < w.set.FaultRate {
			kinds := []string{"429", "500", "503", "slow", "drop"}
			f := sandbox.Fault{Kind: kinds[w.intN(len(kinds))], Count: 1 + w.intN(3)}
			if f.Kind == "slow" {
				f.Count = 1
				f.Delay = time.Duration(100+w.intN(5900)) * time.Millisecond // some beyond the client's 5 s timeout
			}
			w.sb.InjectFault(t.seller, f)
			w.stats.faultN("sandbox_"+f.Kind, f.Count)
			t.faults = append(t.faults, "sandbox_"+f.Kind)
		}
		if w.float() < w.set.LWAFaultRate {
			kinds := []string{"500", "503", "slow", "drop"}
			lf := lwaFault{kind: kinds[w.intN(len(kinds))]}
			if lf.kind == "slow" {
				lf.delay = time.Duration(100+w.intN(5900)) * time.Millisecond // some beyond the client's 5 s timeout
			}
			n := 1 + w.intN(2)
			w.front.armLWA(t.seller, lf, n)
			w.stats.faultN("lwa_"+lf.kind, n)
			t.faults = append(t.faults, "lwa_"+lf.kind)
		}
		if w.float() < w.set.EmptyRate {
			w.emptyVault(t)
			continue
		}
		if w.float() < w.set.ExpireRate {
			w.sb.ExpireAccessTokens(t.seller)
			w.stats.fault("access_token_expired")
			t.faults = append(t.faults, "access_token_expired")
		}
	}
	if w.ch != nil && chaos {
		w.forgeNotifications(context.Background())
	}
	w.clock.Advance(cycleStep)
}

// emptyVault deletes the tenant's secret from Vault (an operator's mistake,
// a lost Vault volume): its polls must stop with a clear ERROR, never loop.
func (w *world) emptyVault(t *tenant) {
	if err := w.vaultDir.KVv2(devstack.KVMount).DeleteMetadata(context.Background(), "keybuzz/tenants/"+t.id+"/amazon"); err != nil {
		w.print("empty vault for %s: %v", t.id, err)
		return
	}
	at := w.clock.Now()
	// Its notifications stop too (a harness simplification: Amazon would
	// go on publishing, and a container's cached access token could still
	// read the order): "nothing stored after access ended" stays a check
	// of what the connector reads with the tenant's credentials.
	w.sb.DropSubscriptions(t.seller)
	t.emptiedAt, t.lostWall = &at, time.Now()
	t.faults = append(t.faults, "vault_secret_deleted")
	w.stats.fault("vault_tenant_secret_deleted")
	if _, err := w.sb.AddOrder(t.seller, "", true); err == nil {
		w.stats.add("events_after_secret_deleted", 1)
	}
}

func (w *world) revoke(t *tenant) {
	at := w.clock.Now()
	w.sb.RevokeSeller(t.seller)
	w.sb.DropSubscriptions(t.seller) // as Amazon does when a seller removes the app
	t.revokedAt, t.lostWall = &at, time.Now()
	t.faults = append(t.faults, "refresh_token_revoked")
	w.stats.fault("refresh_token_revoked")
	// The buyer goes on after the seller removed the app: that event must
	// never become a ticket.
	if _, err := w.sb.AddOrder(t.seller, "", true); err == nil {
		w.stats.add("events_after_revocation", 1)
	}
}

func (w *world) activity(t *tenant) {
	if w.float() < 0.6 {
		if _, err := w.sb.AddOrder(t.seller, "", true); err == nil {
			w.stats.add("activity_orders_with_cancellation", 1)
		}
		return
	}
	// A cancellation request on an existing order (one without one yet),
	// which moves the order's lastUpdatedTime to now.
	id, err := w.sb.AddOrder(t.seller, "", false)
	if err != nil {
		return
	}
	w.clock.Advance(time.Second)
	if _, err := w.sb.AddCancellationRequest(t.seller, id, "Found a better price"); err == nil {
		w.stats.add("activity_cancellation_requests", 1)
	}
}

// cycle is one schedule: the fan-out claims and enqueues every due tenant,
// then the containers drain the queue while infrastructure faults happen.
func (w *world) cycle(ctx context.Context, n int, chaos bool) error {
	fan := poll.NewFanout(w.store, pollsender.NewSender(w.sqs, w.queueURL), poll.WithClock(w.clock.Now), poll.WithLogger(w.log))
	res, err := fan.Run(ctx)
	if err != nil {
		return fmt.Errorf("cycle %d: fan-out: %w", n, err)
	}
	w.stats.add("fanout_enqueued", res.Sent)
	var infra sync.WaitGroup
	if chaos && w.set.VaultEvery > 0 && n%w.set.VaultEvery == 0 {
		infra.Add(1)
		go func() { defer infra.Done(); w.restartVault(ctx) }()
	}
	if chaos && w.set.SealEvery > 0 && n%w.set.SealEvery == 0 {
		infra.Add(1)
		go func() { defer infra.Done(); w.sealVault(ctx) }()
	}
	if chaos && w.set.RotateEvery > 0 && n%w.set.RotateEvery == 0 {
		infra.Add(1)
		go func() { defer infra.Done(); w.rotateAppSecret(ctx) }()
	}
	if chaos && w.set.PGEvery > 0 && n%w.set.PGEvery == 0 {
		infra.Add(1)
		go func() { defer infra.Done(); w.restartPostgres(ctx) }()
	}
	t0 := time.Now()
	if err := w.drained(ctx, n); err != nil {
		return err
	}
	infra.Wait()
	// The schedule runs again a minute later (EventBridge, every minute):
	// a connection the first run skipped (SKIP LOCKED: a notification's
	// record or a push ingestion held its row at that instant) is due and
	// unclaimed, and is enqueued now; the others stay claimed.
	again, err := fan.Run(ctx)
	if err != nil {
		return fmt.Errorf("cycle %d: fan-out (second run): %w", n, err)
	}
	if again.Sent > 0 {
		w.stats.add("fanout_second_run_enqueued", again.Sent)
		if err := w.drained(ctx, n); err != nil {
			return err
		}
	}
	w.print("cycle %d%s: %d enqueued, drained in %s; crashes so far %d", n, map[bool]string{true: "", false: " (settle)"}[chaos],
		res.Sent+again.Sent, time.Since(t0).Round(time.Millisecond), w.stats.get("crashes"))
	return nil
}

// drained waits until the poll queue and the channels' queues stay empty.
func (w *world) drained(ctx context.Context, n int) error {
	t0 := time.Now()
	empty := 0
	for {
		time.Sleep(300 * time.Millisecond)
		d, err := w.queueDepth(ctx, w.queueURL)
		if err == nil && d == 0 && w.channelsDrained(ctx) {
			empty++
		} else {
			empty = 0
		}
		if empty >= 3 {
			return nil
		}
		if time.Since(t0) > w.set.DrainTimeout {
			return fmt.Errorf("cycle %d: queue not drained after %s (depth %d)", n, w.set.DrainTimeout, d)
		}
	}
}

func (w *world) restartVault(ctx context.Context) {
	time.Sleep(time.Duration(w.intN(800)) * time.Millisecond)
	w.vaultMu.Lock()
	defer w.vaultMu.Unlock()
	defer w.trace.begin("vault_restart")()
	t0 := time.Now()
	w.vproxy.Pause()
	defer w.vproxy.Resume()
	n, err := w.restartRestore(ctx)
	if err != nil {
		w.print("vault restart: %v", err)
		w.stats.add("infra_errors", 1)
		return
	}
	w.stats.fault("vault_restarted")
	w.print("vault restarted (%d secrets restored) in %s", n, time.Since(t0).Round(time.Millisecond))
}

// restartRestore snapshots Vault, restarts it and writes the snapshot back
// (the dev server keeps nothing across a restart; a real Vault keeps its
// storage). The caller holds the connector off (the proxy paused).
func (w *world) restartRestore(ctx context.Context) (int, error) {
	snap, err := w.snapshotVault(ctx)
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	if err := w.stack.RestartService(ctx, devstack.ServiceVault); err != nil {
		return 0, err
	}
	if err := w.restoreVault(ctx, snap); err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	return len(snap), nil
}

// sealVault seals the real Vault (sys/seal): for a while the connector
// gets Vault's own "Vault is sealed" answers; then the operator unseals it
// (the dev server comes back unsealed from a restart, its data restored).
func (w *world) sealVault(ctx context.Context) {
	time.Sleep(time.Duration(w.intN(800)) * time.Millisecond)
	w.vaultMu.Lock()
	defer w.vaultMu.Unlock()
	defer w.trace.begin("vault_sealed")()
	w.vproxy.Pause()
	snap, err := w.snapshotVault(ctx)
	w.vproxy.Resume()
	if err != nil {
		w.print("vault seal: snapshot: %v", err)
		w.stats.add("infra_errors", 1)
		return
	}
	if _, err := w.vaultDir.Logical().WriteWithContext(ctx, "sys/seal", nil); err != nil {
		w.print("vault seal: %v", err)
		w.stats.add("infra_errors", 1)
		return
	}
	w.stats.fault("vault_sealed")
	time.Sleep(time.Duration(500+w.intN(2000)) * time.Millisecond)
	w.vproxy.Pause()
	defer w.vproxy.Resume()
	if err := w.stack.RestartService(ctx, devstack.ServiceVault); err != nil {
		w.print("vault unseal (restart): %v", err)
		w.stats.add("infra_errors", 1)
		return
	}
	if err := w.restoreVault(ctx, snap); err != nil {
		w.print("vault unseal: restore: %v", err)
		w.stats.add("infra_errors", 1)
		return
	}
	w.print("vault sealed, then unsealed with %d secrets", len(snap))
}

// rotateAppSecret rotates the application's client secret: LWA refuses
// the old one at once (invalid_client) and the new one is written to Vault
// a moment later; containers that cached the old one must read it again
// without a redeploy (credcache.ForgetApp).
func (w *world) rotateAppSecret(ctx context.Context) {
	time.Sleep(time.Duration(w.intN(800)) * time.Millisecond)
	w.vaultMu.Lock()
	defer w.vaultMu.Unlock()
	end := w.trace.begin("app_secret_rotation")
	defer end()
	w.rotations++
	newSecret := fmt.Sprintf("sandbox-client-secret-rotated-%d-%016x", w.rotations, w.rng64())
	w.mu.Lock()
	w.known = append(w.known, newSecret)
	w.mu.Unlock()
	w.front.rotate(newSecret)
	time.Sleep(300 * time.Millisecond)
	if _, err := w.vaultDir.KVv2(devstack.KVMount).Patch(ctx, devstack.AppSecretPath, map[string]any{"client_secret": newSecret}); err != nil {
		w.print("rotate app secret: %v", err)
		w.stats.add("infra_errors", 1)
		return
	}
	w.appSecret = newSecret
	w.stats.fault("app_secret_rotated")
	w.print("app client secret rotated")
}

// snapshotVault reads every secret still there: the app's and the tenants'.
func (w *world) snapshotVault(ctx context.Context) (map[string]map[string]any, error) {
	kv := w.vaultDir.KVv2(devstack.KVMount)
	snap := map[string]map[string]any{}
	paths := []string{devstack.AppSecretPath}
	for _, t := range w.tenants {
		if t.emptiedAt == nil {
			paths = append(paths, "keybuzz/tenants/"+t.id+"/amazon")
		}
	}
	for _, p := range paths {
		s, err := kv.Get(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		snap[p] = s.Data
	}
	return snap, nil
}

func (w *world) restoreVault(ctx context.Context, snap map[string]map[string]any) error {
	kv := w.vaultDir.KVv2(devstack.KVMount)
	for p, data := range snap {
		if _, err := kv.Put(ctx, p, data); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

func (w *world) restartPostgres(ctx context.Context) {
	time.Sleep(time.Duration(w.intN(800)) * time.Millisecond)
	defer w.trace.begin("postgres_restart")()
	t0 := time.Now()
	if err := w.stack.RestartService(ctx, devstack.ServicePostgres); err != nil {
		w.print("postgres restart: %v", err)
		w.stats.add("infra_errors", 1)
		return
	}
	w.stats.fault("postgres_restarted")
	w.print("postgres restarted in %s", time.Since(t0).Round(time.Millisecond))
}

// caughtUp reports whether every tenant still connected has finished its
// window at the current schedule and nothing is left in error.
func (w *world) caughtUp(ctx context.Context) (bool, error) {
	var behind int
	err := w.check.QueryRow(ctx, `
SELECT count(*) FROM public."MarketplaceConnection" c LEFT JOIN keybuzz_amazon."SyncState" s ON s."connectionId" = c."id"
WHERE c."status"::text = 'CONNECTED' AND (c."lastError" IS NOT NULL OR s."paginationToken" IS NOT NULL
      OR s."cursorAt" IS NULL OR s."cursorAt" < $1 OR s."leaseOwner" IS NOT NULL)`, w.clock.Now().Add(-2*time.Minute)).Scan(&behind)
	return behind == 0, err
}

// startWorkers starts the polltenant containers; stop stops them.
func (w *world) startWorkers(ctx context.Context) (stop func()) {
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range w.set.Workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.worker(wctx) }()
	}
	stopChannels := w.startChannelWorkers(wctx)
	return func() { cancel(); wg.Wait(); stopChannels() }
}

// soak runs the whole thing.
func (w *world) soak(ctx context.Context) error {
	stop := w.startWorkers(ctx)
	defer stop()
	t0 := time.Now()
	// The first cycle syncs each new connection's look-back window.
	w.clock.Advance(3 * time.Minute)
	for n := 1; n <= w.set.Cycles; n++ {
		if n > 1 {
			w.betweenCycles(true)
		}
		if err := w.cycle(ctx, n, true); err != nil {
			return err
		}
	}
	w.calm.Store(true) // settle: no more faults, only the schedule
	for n := 1; n <= w.set.SettleCycles; n++ {
		w.betweenCycles(false)
		if err := w.cycle(ctx, w.set.Cycles+n, false); err != nil {
			return err
		}
		w.stats.Settle = n
		if ok, err := w.caughtUp(ctx); err == nil && ok && n >= 1 {
			break
		}
	}
	stop()
	if w.ch != nil {
		// The sandbox's own count of its notification delivery faults.
		ns := w.sb.NotificationStats()
		w.stats.faultN("notification_dropped", ns.Dropped)
		w.stats.faultN("notification_duplicated", ns.Duplicated)
		w.stats.faultN("notification_delayed", ns.Delayed)
		w.stats.faultN("notification_out_of_order", ns.Reordered)
		w.stats.add("notifications_published", ns.Published)
		w.stats.add("notifications_held_at_end", ns.Held)
	}
	w.stats.SoakSeconds = time.Since(t0).Seconds()
	return nil
}
