package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keybuzz/keybuzz-amazon/dev/devstack"
	"github.com/keybuzz/keybuzz-amazon/dev/rie"
	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/credcache"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/lwa"
	"github.com/keybuzz/keybuzz-amazon/shared/mailaddress"
	"github.com/keybuzz/keybuzz-amazon/shared/pollqueue"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/push"
	"github.com/keybuzz/keybuzz-amazon/shared/sellerapi"
	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
	"github.com/keybuzz/keybuzz-amazon/shared/vaultstore"
)

// The real-kill phase: the polltenant bootstrap, built as Lambda runs it,
// under aws-lambda-rie, against the private stack and a sandbox of its own
// on real time (the bootstrap's clock is the machine's). The harness plays
// Lambda's SQS event source mapping (receive, invoke, delete what did not
// fail) and kills the process group (emulator and function) with SIGKILL
// at a chosen point, found by a delay hook that holds the function there
// and tells the harness:
//
//   - during_page_statement: a statement trigger on "ExternalMessage"
//     (installed in the private database only) sleeps inside the page's
//     statement while armed; the harness sees the backend waiting in
//     pg_stat_activity, then kills. A page is one statement in its own
//     implicit transaction: PostgreSQL runs it to its end and commits it
//     without its client, so this kill behaves as a kill just after the
//     commit (the ordernotify kills inside an explicit transaction are the
//     rollback point: notifykills.go);
//   - between_pages: the sandbox front holds the request for the next page
//     (paginationToken), after the previous page's transaction committed;
//   - vault_writeback: a proxy in front of Vault holds the write of the
//     rotated refresh token (refresh-token rotation is on);
//   - before_ack: the function has returned (everything written), the
//     harness kills before deleting the messages.
//
// A freeze SIGSTOPs the process inside the page statement, past its
// timeout: another container takes over (the harness expires the frozen
// one's lease, which stands for the 5 minutes passing) once the frozen
// transaction's locks are freed (the page statement committed without its
// client, or PostgreSQL's idle_in_transaction_session_timeout ended it);
// then the frozen one is thawed, finds its lease lost and is killed.
//
// After a kill the killed process's lease is expired the same way (the
// next container would otherwise wait 5 minutes). The harness never
// changes anything else the connector wrote.
var killCategories = []string{"during_page_statement", "between_pages", "vault_writeback", "before_ack"}

type killer struct {
	w        *world
	sb       *sandbox.Server
	front    *front
	sbHold   hold
	vltHold  hold
	srv      *httptest.Server
	vault    *httptest.Server
	api      *httptest.Server
	queueURL string
	dlqURL   string
	// The ordernotify kills' queue (its sandbox delivers the kill tenants'
	// notifications there), and what a killed transaction left behind.
	notifyURL, notifyDLQ string
	halfDone             []string
	replies              *replyRig // the reply kills' side (nil without them)
	env                  []string
	bin                  string
	inst                 *rie.Instance
	spare                chan spareInstance // the next cold container, starting
	clock                *jumpClock
	logs                 int // instances whose logs were kept

	landed     map[string]int
	missed     map[string]int
	seconds    []float64 // freeze: seconds until the second container completed
	locksFreed []float64 // freeze: seconds until the frozen transaction's locks were freed
}

// jumpClock is the kill sandbox's clock: real time plus jumps. Amazon
// answers searchOrders up to two minutes before its now; each attempt
// jumps that far, so what was prepared for it is in its window (the
// connector's own clock stays the machine's).
type jumpClock struct{ offset atomic.Int64 }

func (c *jumpClock) Now() time.Time       { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *jumpClock) jump(d time.Duration) { c.offset.Add(int64(d)) }

// mailBootstrap is where buildBootstrap puts the inboundmail bootstrap.
func mailBootstrap(pollBin string) string {
	return filepath.Join(filepath.Dir(filepath.Dir(pollBin)), "inboundmail", "bootstrap")
}

// buildBootstrap compiles polltenant for the emulator (started at the
// beginning of the run, as it takes a while on a busy machine).
func buildBootstrap(ctx context.Context, dir string) (string, error) {
	root, err := devstack.RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "polltenant", "bootstrap")
	if err := rie.Build(ctx, filepath.Join(root, "functions", "polltenant"), bin); err != nil {
		return "", err
	}
	// The inboundmail, ordernotify, replysender and sesevents bootstraps beside it (mailBootstrap, notifyBootstrap, replyBootstrap, sesEventsBootstrap).
	if err := rie.Build(ctx, filepath.Join(root, "functions", "inboundmail"), mailBootstrap(bin)); err != nil {
		return "", err
	}
	if err := rie.Build(ctx, filepath.Join(root, "functions", "ordernotify"), notifyBootstrap(bin)); err != nil {
		return "", err
	}
	if err := rie.Build(ctx, filepath.Join(root, "functions", "replysender"), replyBootstrap(bin)); err != nil {
		return "", err
	}
	if err := rie.Build(ctx, filepath.Join(root, "functions", "sesevents"), sesEventsBootstrap(bin)); err != nil {
		return "", err
	}
	if _, err := rie.Emulator(ctx); err != nil {
		return "", err
	}
	return bin, nil
}

func newKiller(ctx context.Context, w *world, bin string) (*killer, error) {
	k := &killer{w: w, bin: bin, landed: map[string]int{}, missed: map[string]int{}}
	cfg := sandbox.DefaultConfig()
	cfg.Sellers = w.set.Tenants + w.set.KillTenants
	k.clock = &jumpClock{}
	cfg.Clock = k.clock
	cfg.Contract = w.contract // the real bootstrap's requests are checked against Amazon's models too
	if w.set.NotifyKills > 0 {
		var err error
		if k.notifyURL, k.notifyDLQ, err = w.createQueuePair(ctx, notifyQueueName, w.set.Visibility); err != nil {
			return nil, err
		}
		deliver := sandbox.SQSDelivery(w.stack.Get("AWS_ENDPOINT_URL_SQS"))
		cfg.Deliver = func(ctx context.Context, arn, body string) error {
			if err := deliver(ctx, arn, body); err != nil {
				return err
			}
			if w.ch != nil {
				w.recordNotification(body, false) // the channel check judges these too
			}
			return nil
		}
	}
	if w.ch != nil && w.set.ReplyKills > 0 {
		// Amazon's notices about refused replies come back through the mail
		// intake (the SES receiver of the channels).
		cfg.RelaySMTP = w.ch.smtp.Addr()
	}
	k.sb = sandbox.New(cfg)
	for _, sl := range k.sb.Sellers() {
		k.sb.RotateRefreshTokens(sl.ID, true)
	}
	k.front = newFront(k.sb, k.clock, cfg.ClientSecret, clientTimeout)
	// This sandbox knows the app's original secret: Vault gets it back
	// (the soak rotated it).
	if _, err := w.vaultDir.KVv2(devstack.KVMount).Patch(ctx, devstack.AppSecretPath, map[string]any{"client_secret": cfg.ClientSecret}); err != nil {
		return nil, fmt.Errorf("reset the app secret: %w", err)
	}
	k.srv = httptest.NewServer(holding(&k.sbHold, k.front))
	vaultURL, err := url.Parse(w.stack.Get("VAULT_ADDR"))
	if err != nil {
		return nil, err
	}
	k.vault = httptest.NewServer(holding(&k.vltHold, httputil.NewSingleHostReverseProxy(vaultURL)))

	// The Connect flow of these tenants, on real time, against their sandbox.
	store := postgres.New(w.pool, postgres.WithClock(time.Now))
	secrets := credcache.New(vaultstore.New(w.vaultDir, devstack.KVMount, devstack.AppSecretPath))
	lwaClient := lwa.New(k.srv.URL+"/auth/o2/token", lwa.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	gw := sellerapi.New(secrets, lwaClient, spapi.New(spapi.WithHTTPClient(&http.Client{Timeout: 10 * time.Second})), store, sellerapi.WithEndpoint(k.srv.URL))
	inbound := mailaddress.NewAddresses(store, devstack.InboundDomain)
	callbackCfg := connect.CallbackConfig{Participations: gw, InboundAddresses: inbound, Log: w.log}
	if w.set.NotifyKills > 0 {
		// Subscribed to ORDER_CHANGE as they connect, to the kill phase's queue.
		dest := push.NewDestinations(store, secrets, spapi.New(spapi.WithHTTPClient(&http.Client{Timeout: 10 * time.Second})), gw, notifyQueueARN())
		sub := push.NewSubscriber(store, dest, gw, push.WithLogger(w.log))
		callbackCfg.OnConnected, callbackCfg.Unsubscriber = sub.OnConnected, sub
	}
	k.api = httptest.NewServer(httpapi.Mux(
		httpapi.StartRoute(connect.NewStart(store, secrets, connect.StartConfig{SellerCentralURL: k.srv.URL}), w.verifier, w.log),
		httpapi.CallbackRoute(connect.NewCallback(store, secrets, lwaClient, callbackCfg), w.log, ""),
		httpapi.LoginRoute(connect.NewLogin(store, secrets, connect.LoginConfig{SellerCentralURL: k.srv.URL}), w.log, ""),
		httpapi.StatusRoute(connect.NewStatus(store, connect.StatusConfig{InboundAddresses: inbound, Log: w.log}), w.verifier, w.log),
		httpapi.DisconnectRoute(connect.NewDisconnect(store, secrets, connect.DisconnectConfig{Log: w.log}), w.verifier, w.log)))
	for n := 1; n <= w.set.KillTenants; n++ {
		t := &tenant{n: w.set.Tenants + n, id: fmt.Sprintf("tenant-kill-%05d", n), seller: sandbox.SellerID(w.set.Tenants + n), sb: k.sb, front: k.front}
		if err := w.connectVia(ctx, k.api.URL, t); err != nil {
			return nil, fmt.Errorf("connect %s: %w", t.id, err)
		}
		w.killTenants = append(w.killTenants, t)
		w.byTenant[t.id] = t
		w.bySeller[t.seller] = t
		if addrs, err := store.InboundAddresses(ctx, t.id); err == nil && len(addrs) > 0 {
			t.address = addrs[0].EmailAddress
			w.addrTenant[strings.ToLower(t.address)] = t.id
		}
	}
	if k.queueURL, k.dlqURL, err = w.createQueuePair(ctx, "chaos-kill", 1); err != nil {
		return nil, err
	}
	// The page-transaction hook, in the private database only.
	if _, err := w.check.Exec(ctx, `
CREATE TABLE IF NOT EXISTS "ChaosHold" ("armed" boolean NOT NULL);
INSERT INTO "ChaosHold" SELECT false WHERE NOT EXISTS (SELECT 1 FROM "ChaosHold");
CREATE OR REPLACE FUNCTION chaos_hold() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE i int := 0;
BEGIN
    WHILE i < 1000 AND EXISTS (SELECT 1 FROM "ChaosHold" WHERE "armed") LOOP
        PERFORM pg_sleep(0.01);
        i := i + 1;
    END LOOP;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS chaos_hold ON "ExternalMessage";
CREATE TRIGGER chaos_hold AFTER INSERT ON "ExternalMessage" FOR EACH STATEMENT EXECUTE FUNCTION chaos_hold();`); err != nil {
		return nil, fmt.Errorf("install the page-transaction hook: %w", err)
	}
	env := map[string]string{}
	for _, kv := range w.stack.Env() {
		if i := strings.IndexByte(kv, '='); i > 0 {
			env[kv[:i]] = kv[i+1:]
		}
	}
	for k2, v := range map[string]string{
		"VAULT_ADDR": k.vault.URL, "AMAZON_LWA_TOKEN_URL": k.srv.URL + "/auth/o2/token", "AMAZON_SPAPI_ENDPOINT": k.srv.URL,
		"AMAZON_SELLER_CENTRAL_URL": k.srv.URL, "AMAZON_USE_MOCK": "false", "POLL_QUEUE_URL": k.queueURL, "LOG_LEVEL": "info",
		"AWS_REGION": devstack.Region, "AWS_ACCESS_KEY_ID": devstack.AccessKeyID, "AWS_SECRET_ACCESS_KEY": devstack.AccessKeyID,
		"VAULT_AUTH_METHOD": "token", "VAULT_KV_MOUNT": devstack.KVMount,
	} {
		env[k2] = v
	}
	for k2, v := range env {
		k.env = append(k.env, k2+"="+v)
	}
	return k, nil
}

func (k *killer) close() {
	k.stopInstance()
	if k.spare != nil {
		if r := <-k.spare; r.in != nil {
			r.in.Close()
		}
		k.spare = nil
	}
	for _, s := range []*httptest.Server{k.srv, k.vault, k.api} {
		if s != nil {
			s.Close()
		}
	}
}

// keepLogs adds an instance's output (the function's JSON logs) to what
// the log scanner reads.
func (k *killer) keepLogs(in *rie.Instance) {
	k.w.out.record(in.Logs())
	k.logs++
}

// start returns a fresh emulator with the bootstrap (a cold container),
// the one started in the background after the previous start when it is
// ready, so that a kill is not followed by the emulator's start-up.
func (k *killer) start(ctx context.Context) (*rie.Instance, error) {
	var in *rie.Instance
	var err error
	if k.spare != nil {
		r := <-k.spare
		in, err = r.in, r.err
	} else {
		in, err = rie.Start(ctx, k.bin, k.env)
	}
	spare := make(chan spareInstance, 1)
	k.spare = spare
	go func() { in, err := rie.Start(ctx, k.bin, k.env); spare <- spareInstance{in, err} }()
	if err != nil {
		return nil, err
	}
	k.w.stats.add("kill_cold_starts", 1)
	return in, nil
}

type spareInstance struct {
	in  *rie.Instance
	err error
}

func (k *killer) stopInstance() {
	if k.inst != nil {
		k.inst.Close()
		k.keepLogs(k.inst)
		k.inst = nil
	}
}

func (k *killer) kill(in *rie.Instance) {
	_ = in.Signal(syscall.SIGKILL)
	select {
	case <-in.Done():
	case <-time.After(10 * time.Second):
	}
	k.keepLogs(in)
}

func (k *killer) send(ctx context.Context, t *tenant) error {
	body := pollqueue.Message{TenantID: t.id, ConnectionID: t.connID, EnqueuedAt: time.Now().UTC()}.Encode()
	_, err := k.w.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(k.queueURL), MessageBody: aws.String(body)})
	return err
}

// receive is the event source mapping's poll: up to 10 records.
func (k *killer) receive(ctx context.Context, wait int32) ([]types.Message, events.SQSEvent, error) {
	out, err := k.w.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(k.queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: wait,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount}})
	if err != nil {
		return nil, events.SQSEvent{}, err
	}
	var ev events.SQSEvent
	for _, m := range out.Messages {
		k.w.payloads.keep("kill", aws.ToString(m.MessageId), aws.ToString(m.Body))
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), EventSource: "aws:sqs", Attributes: m.Attributes})
	}
	return out.Messages, ev, nil
}

type invokeResult struct {
	resp events.SQSEventResponse
	err  error
}

func invoke(ctx context.Context, in *rie.Instance, ev events.SQSEvent) chan invokeResult {
	ch := make(chan invokeResult, 1)
	raw, _ := json.Marshal(ev)
	go func() {
		out, err := in.Invoke(ctx, raw)
		var r invokeResult
		r.err = err
		if err == nil {
			if jerr := json.Unmarshal(out, &r.resp); jerr != nil || strings.Contains(string(out), `"errorMessage"`) {
				r.err = fmt.Errorf("function error: %.200s", out)
			}
		}
		ch <- r
	}()
	return ch
}

// ack deletes the records that did not fail and records each delivery.
func (k *killer) ack(ctx context.Context, msgs []types.Message, r invokeResult, t0 time.Time) {
	failed := map[string]bool{}
	for _, f := range r.resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var del []types.DeleteMessageBatchRequestEntry
	for i, m := range msgs {
		id := aws.ToString(m.MessageId)
		a := attempt{tenant: tenantOfBody(aws.ToString(m.Body)), start: t0, end: time.Now(), outcome: "ok"}
		if r.err != nil || failed[id] {
			a.outcome, a.cause = "failed", k.w.causeOf(a.tenant, t0, a.end)
			k.w.stats.add("kill_batch_item_failures", 1)
		}
		k.w.trace.add(id, a)
		if a.outcome == "ok" {
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(del) > 0 {
		if _, err := k.w.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(k.queueURL), Entries: del}); err != nil {
			k.w.stats.add("sqs_delete_errors", 1)
		}
	}
}

func tenantOfBody(body string) string {
	if m, err := pollqueue.Decode(body); err == nil {
		return m.TenantID
	}
	return ""
}

// expireLeases stands for time passing after a container died: the
// leases it held (5 minutes, on the connector's clock) end now.
// A frozen container's transaction still locks the rows: the update waits
// (lock_timeout) until PostgreSQL ends that transaction; it returns how
// long that took.
func (k *killer) expireLeases(ctx context.Context, msgs []types.Message) (time.Duration, error) {
	var conns []string
	for _, m := range msgs {
		if msg, err := pollqueue.Decode(aws.ToString(m.Body)); err == nil {
			conns = append(conns, msg.ConnectionID)
		}
	}
	t0 := time.Now()
	for {
		_, err := k.w.check.Exec(ctx, `UPDATE keybuzz_amazon."SyncState" SET "leaseUntil" = now() - interval '1 second'
WHERE "connectionId" = ANY($1) AND "leaseOwner" IS NOT NULL`, conns)
		if err == nil {
			return time.Since(t0), nil
		}
		if time.Since(t0) > 60*time.Second || ctx.Err() != nil {
			return time.Since(t0), fmt.Errorf("expire leases: %w", err)
		}
		k.w.stats.add("lease_expiry_waited_on_locks", 1)
	}
}

func (k *killer) setHold(ctx context.Context, on bool) error {
	_, err := k.w.check.Exec(ctx, `UPDATE "ChaosHold" SET "armed" = $1`, on)
	return err
}

// heldBackend waits for a backend sleeping in the page-transaction hook.
// An invocation that ends first leaves its result in done.
func (k *killer) heldBackend(ctx context.Context, done chan invokeResult, timeout time.Duration) (int, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var pid int
		err := k.w.check.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND xact_start IS NOT NULL
AND datname = current_database() AND pid <> pg_backend_pid() LIMIT 1`).Scan(&pid)
		if err == nil {
			return pid, true
		}
		select {
		case r := <-done:
			done <- r // for the caller
			return 0, false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return 0, false
}

// prepare gives tenant t something to read for category cat.
func (k *killer) prepare(t *tenant, cat string) {
	if cat == "between_pages" {
		// More than a page (100 orders) changed since the last sync.
		for range 101 {
			k.sb.AddOrder(t.seller, "", false)
		}
	}
	for range 1 + k.w.intN(2) {
		k.sb.AddOrder(t.seller, "", true)
	}
	k.clock.jump(beforeMargin)
}

// beforeMargin is how far before its now Amazon answers searchOrders, and a
// second more.
const beforeMargin = 2*time.Minute + time.Second

// killOnce runs one invocation and kills it at category cat's point. It
// returns where the kill landed ("" when the invocation never reached the
// point and was not killed).
func (k *killer) killOnce(ctx context.Context, cat string, t *tenant) (string, error) {
	k.prepare(t, cat)
	if err := k.send(ctx, t); err != nil {
		return "", err
	}
	if k.inst == nil {
		in, err := k.start(ctx)
		if err != nil {
			return "", err
		}
		k.inst = in
	}
	msgs, ev, err := k.receive(ctx, 2)
	if err != nil || len(msgs) == 0 {
		return "", err
	}
	var arrived <-chan struct{}
	release := func() {}
	switch cat {
	case "between_pages":
		arrived, release = k.sbHold.arm(func(r *http.Request) bool { return r.URL.Query().Get("paginationToken") != "" })
	case "vault_writeback":
		arrived, release = k.vltHold.arm(func(r *http.Request) bool {
			return (r.Method == http.MethodPut || r.Method == http.MethodPost) && strings.Contains(r.URL.Path, "/keybuzz/tenants/")
		})
	case "during_page_statement":
		if err := k.setHold(ctx, true); err != nil {
			return "", err
		}
		release = func() { _ = k.setHold(context.WithoutCancel(ctx), false) }
	}
	t0 := time.Now()
	ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	done := invoke(ictx, k.inst, ev)
	landed := ""
	switch cat {
	case "during_page_statement":
		if _, ok := k.heldBackend(ctx, done, 30*time.Second); ok {
			landed = cat
		}
	case "before_ack":
		select {
		case r := <-done:
			if r.err == nil {
				landed = cat
			} else {
				k.ack(ctx, msgs, r, t0)
				release()
				return "", nil
			}
		case <-time.After(45 * time.Second):
		}
	default:
		select {
		case <-arrived:
			landed = cat
		case r := <-done:
			release()
			k.ack(ctx, msgs, r, t0)
			return "", nil
		case <-time.After(30 * time.Second):
		}
	}
	if landed == "" {
		release()
		r := <-done
		k.ack(ctx, msgs, r, t0)
		return "", nil
	}
	in := k.inst
	k.inst = nil
	k.kill(in)
	release()
	for _, m := range msgs {
		k.w.trace.add(aws.ToString(m.MessageId), attempt{tenant: tenantOfBody(aws.ToString(m.Body)), start: t0, end: time.Now(), outcome: "killed"})
	}
	if _, err := k.expireLeases(ctx, msgs); err != nil {
		return landed, err
	}
	return landed, nil
}

// freeze SIGSTOPs a container inside its page statement, lets a second
// one take the tenant over, then thaws and kills the first. It returns the
// seconds from the freeze until the second container's poll completed.
func (k *killer) freeze(ctx context.Context, t *tenant) (float64, error) {
	k.stopInstance()
	k.prepare(t, "freeze")
	// The second container's poll must read past what was prepared: its
	// cursor at least the kill sandbox's now less Amazon's two minutes.
	want := k.clock.Now().Add(-2 * time.Minute)
	if err := k.send(ctx, t); err != nil {
		return 0, err
	}
	a, err := k.start(ctx)
	if err != nil {
		return 0, err
	}
	msgs, ev, err := k.receive(ctx, 2)
	if err != nil || len(msgs) == 0 {
		a.Close()
		return 0, fmt.Errorf("%w: nothing received (%v)", errFreezeMissed, err)
	}
	if err := k.setHold(ctx, true); err != nil {
		return 0, err
	}
	t0 := time.Now()
	actx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	done := invoke(actx, a, ev)
	pid, ok := k.heldBackend(ctx, done, 30*time.Second)
	if !ok {
		_ = k.setHold(ctx, false)
		r := <-done
		k.ack(ctx, msgs, r, t0)
		a.Close()
		k.keepLogs(a)
		return 0, fmt.Errorf("%w: the invocation never reached its page statement", errFreezeMissed)
	}
	_ = a.Signal(syscall.SIGSTOP)
	frozen := time.Now()
	_ = k.setHold(ctx, false) // its backend finishes the statement, then idles in the transaction
	time.Sleep(200 * time.Millisecond)
	var state string
	_ = k.w.check.QueryRow(ctx, `SELECT COALESCE(state, '') FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&state)
	k.w.print("freeze: container frozen; its backend %d is %q", pid, state)
	// The frozen container is past its timeout and its lease; its
	// transaction's locks hold until PostgreSQL's idle-in-transaction limit.
	if _, err := k.expireLeases(ctx, msgs); err != nil {
		return 0, fmt.Errorf("freeze: %w", err)
	}
	k.locksFreed = append(k.locksFreed, time.Since(frozen).Seconds())
	k.w.print("freeze: the frozen transaction's locks were freed %.1f s after the freeze", time.Since(frozen).Seconds())
	// A second container takes over: it polls until its poll of t succeeds.
	b, err := k.start(ctx)
	if err != nil {
		return 0, err
	}
	k.inst = b
	if err := k.send(ctx, t); err != nil {
		return 0, err
	}
	took, tries := 0.0, 0
	for time.Since(frozen) < 90*time.Second {
		tries++
		bm, bev, err := k.receive(ctx, 1)
		if err != nil {
			return 0, err
		}
		if len(bm) == 0 {
			continue
		}
		bt0 := time.Now()
		r := <-invoke(ctx, b, bev)
		k.ack(ctx, bm, r, bt0)
		var lease *string
		var cursor *time.Time
		if err := k.w.check.QueryRow(ctx, `SELECT "leaseOwner", "cursorAt" FROM keybuzz_amazon."SyncState" WHERE "connectionId" = $1`, t.connID).Scan(&lease, &cursor); err != nil {
			return 0, err
		}
		if r.err == nil && len(r.resp.BatchItemFailures) == 0 && lease == nil && cursor != nil && !cursor.Before(want) {
			took = time.Since(frozen).Seconds()
			k.w.print("freeze: the second container's poll %d succeeded %.1f s after the freeze", tries, took)
			break
		}
	}
	var alive bool
	_ = k.w.check.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, pid).Scan(&alive)
	if alive {
		k.w.stats.add("freeze_backend_still_alive", 1)
	}
	// Thaw the first: its transaction is gone, its lease lost.
	_ = a.Signal(syscall.SIGCONT)
	select {
	case r := <-done:
		if r.err == nil {
			k.w.stats.add("freeze_thawed_returned", 1)
		}
	case <-time.After(30 * time.Second):
	}
	k.kill(a)
	for _, m := range msgs {
		k.w.trace.add(aws.ToString(m.MessageId), attempt{tenant: t.id, start: t0, end: time.Now(), outcome: "killed"})
	}
	if took == 0 {
		return 0, fmt.Errorf("freeze: no second container completed %s's poll within 90 s of the freeze (locks not freed?)", t.id)
	}
	return took, nil
}

// errFreezeMissed is a freeze that did not reach its point (nothing to
// freeze); the phase tries another tenant.
var errFreezeMissed = errors.New("freeze missed its point")

// drain runs the queue with no kills until it stays empty.
func (k *killer) drain(ctx context.Context) error {
	if k.inst == nil {
		in, err := k.start(ctx)
		if err != nil {
			return err
		}
		k.inst = in
	}
	return k.drainThrough(ctx, k.inst, k.queueURL, "kill", nil)
}

// drainThrough runs queueURL's messages through in, not killed, until
// three looks in a row find the queue empty (nothing visible or in
// flight) and settled (nil: always) says nothing else is on its way.
func (k *killer) drainThrough(ctx context.Context, in *rie.Instance, queueURL, kind string, settled func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(k.w.set.DrainTimeout)
	for empty := 0; empty < 3; {
		if time.Now().After(deadline) {
			return fmt.Errorf("kill phase: %s queue not drained after %s", kind, k.w.set.DrainTimeout)
		}
		msgs, ev, err := k.receiveFrom(ctx, queueURL, kind, 1)
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			empty = 0
			t0 := time.Now()
			k.ackOn(ctx, queueURL, msgs, <-invoke(ctx, in, ev), t0)
			continue
		}
		if d, err := k.w.queueDepth(ctx, queueURL); err != nil || d != 0 {
			continue
		}
		ok := true
		if settled != nil {
			if ok, err = settled(ctx); err != nil {
				return err
			}
		}
		if ok {
			empty++
		}
	}
	return nil
}

// run is the whole phase.
func (k *killer) run(ctx context.Context) error {
	t0 := time.Now()
	w := k.w
	kills, tries := 0, 0
	for kills < w.set.Kills && tries < 3*w.set.Kills+10 {
		// The category with the fewest kills so far, so every one gets its share.
		cat := killCategories[tries%len(killCategories)]
		for _, c := range killCategories {
			if k.landed[c] < k.landed[cat] {
				cat = c
			}
		}
		t := w.killTenants[tries%len(w.killTenants)]
		tries++
		landed, err := k.killOnce(ctx, cat, t)
		if err != nil {
			return fmt.Errorf("kill %d (%s): %w", tries, cat, err)
		}
		if landed == "" {
			k.missed[cat]++
			continue
		}
		k.landed[landed]++
		w.stats.fault("kill_" + landed)
		kills++
		if kills%50 == 0 {
			w.print("real kills: %d so far (%v)", kills, k.landed)
		}
	}
	for i := range w.set.Freezes {
		// A freeze that missed its point (the invocation never reached a
		// page: a tenant whose searchOrders budget the kills used up
		// yields before reading) is tried again on the next tenants, as
		// the kills' attempts are; a takeover that fails is a finding.
		var took float64
		var err error
		for try := range 3 {
			took, err = k.freeze(ctx, w.killTenants[(i+try*w.set.Freezes)%len(w.killTenants)])
			if !errors.Is(err, errFreezeMissed) {
				break
			}
			w.print("freeze %d: %v", i+1, err)
			k.missed["frozen_takeover"]++
		}
		if err != nil {
			w.print("freeze %d: %v", i+1, err)
			if !errors.Is(err, errFreezeMissed) {
				k.missed["frozen_takeover"]++
			}
			continue
		}
		k.seconds = append(k.seconds, took)
		k.landed["frozen_takeover"]++
		w.stats.fault("freeze_frozen_takeover")
		w.print("freeze %d: a second container completed the poll %.1f s after the first froze inside its page statement", i+1, took)
	}
	if w.ch != nil && w.set.MailKills > 0 {
		if err := k.mailKills(ctx); err != nil {
			return fmt.Errorf("mail kills: %w", err)
		}
	}
	if w.set.NotifyKills > 0 {
		if err := k.notifyKills(ctx); err != nil {
			return fmt.Errorf("notification kills: %w", err)
		}
	}
	if w.ch != nil && w.set.ReplyKills > 0 {
		if err := k.replyKills(ctx); err != nil {
			return fmt.Errorf("reply kills: %w", err)
		}
	}
	// Recovery: what the kills left is redelivered; then one clean poll per
	// tenant after its last activity.
	if err := k.drain(ctx); err != nil {
		return err
	}
	if err := k.finalPolls(ctx); err != nil {
		return err
	}
	k.stopInstance()
	w.print("real kills: %d landed %v (missed %v), %d freezes, in %s", kills, k.landed, k.missed, len(k.seconds), time.Since(t0).Round(time.Second))
	w.stats.add("kill_phase_ms", int(time.Since(t0).Milliseconds()))
	for cat, n := range k.missed {
		w.stats.add("kill_missed_"+cat, n)
	}
	if _, err := os.Stat(k.bin); err != nil {
		return err
	}
	return nil
}

// finalPolls is the recovery after the kills: one clean poll per tenant
// after its last activity, repeated for a tenant until it has read past it.
// A tenant polled many times during the phase may have used up its
// persisted searchOrders budget (1 request a minute once the burst is
// gone): its poll then yields with the window unfinished and the
// connection due at the budget's retry time (nextPollAt, on the
// connector's clock, the machine's), so the harness waits until then and
// sends it again, as the next schedule would. Each tenant must end with
// its cursor at least at the kill sandbox's now (after the last jump)
// less Amazon's two minutes: every event prepared for it lies before that.
func (k *killer) finalPolls(ctx context.Context) error {
	w := k.w
	k.clock.jump(beforeMargin)
	want := k.clock.Now().Add(-2 * time.Minute)
	var all []types.Message
	for _, t := range w.killTenants {
		t.wantCursor = want
		body := pollqueue.Message{TenantID: t.id, ConnectionID: t.connID}.Encode()
		all = append(all, types.Message{Body: aws.String(body)})
	}
	if _, err := k.expireLeases(ctx, all); err != nil {
		return err
	}
	due := w.killTenants
	deadline := time.Now().Add(6 * time.Minute) // a window of several pages needs a token a minute
	for round := 1; ; round++ {
		for _, t := range due {
			if err := k.send(ctx, t); err != nil {
				return err
			}
		}
		if err := k.drain(ctx); err != nil {
			return err
		}
		behind, next, err := k.behind(ctx, want)
		if err != nil {
			return err
		}
		if len(behind) == 0 {
			w.stats.add("kill_final_poll_rounds", round)
			return nil
		}
		if time.Now().After(deadline) {
			// Left for the checker to report (connection state, lost events).
			w.print("real kills: %d tenants still behind after %d final rounds", len(behind), round)
			return nil
		}
		wait := time.Until(next)
		wait = min(max(wait, 100*time.Millisecond), 70*time.Second)
		w.stats.add("kill_final_budget_waits", len(behind))
		w.print("real kills: %d tenants yielded before their last window (budget); next due in %s", len(behind), wait.Round(time.Millisecond))
		time.Sleep(wait)
		due = behind
	}
}

// behind returns the kill tenants still connected whose poll has not read
// up to want (a window unfinished, a lease, an error), and the earliest
// time one of them is due again.
func (k *killer) behind(ctx context.Context, want time.Time) ([]*tenant, time.Time, error) {
	var out []*tenant
	var next time.Time
	for _, t := range k.w.killTenants {
		var ok bool
		var due time.Time
		err := k.w.check.QueryRow(ctx, `
SELECT c."status"::text <> 'CONNECTED' OR (c."lastError" IS NULL AND s."paginationToken" IS NULL AND s."leaseOwner" IS NULL
       AND s."cursorAt" IS NOT NULL AND s."cursorAt" >= $2), COALESCE(k."nextPollAt", now())
FROM public."MarketplaceConnection" c LEFT JOIN keybuzz_amazon."Connection" k ON k."connectionId" = c."id"
LEFT JOIN keybuzz_amazon."SyncState" s ON s."connectionId" = c."id" WHERE c."id" = $1`, t.connID, want).Scan(&ok, &due)
		if err != nil {
			return nil, next, fmt.Errorf("state of %s: %w", t.id, err)
		}
		if !ok {
			out = append(out, t)
			if next.IsZero() || due.Before(next) {
				next = due
			}
		}
	}
	return out, next, nil
}

// drainKillDLQ reads the kill queue's dead letters.
func (k *killer) deadLetters(ctx context.Context) ([]deadLetter, error) {
	saved := k.w.dlqURL
	k.w.dlqURL = k.dlqURL
	defer func() { k.w.dlqURL = saved }()
	return k.w.drainDLQ(ctx)
}
