package devui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keybuzz/keybuzz-amazon/dev/devui"
	"github.com/keybuzz/keybuzz-amazon/dev/sesout"
	"github.com/keybuzz/keybuzz-amazon/dev/testenv"
	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/config"
	"github.com/keybuzz/keybuzz-amazon/shared/connect"
	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/postgres"
	"github.com/keybuzz/keybuzz-amazon/shared/replies"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/replysender"
	"github.com/keybuzz/keybuzz-amazon/shared/sessender"
)

type memJobs struct{ jobs chan reply.Job }

func (m memJobs) Enqueue(_ context.Context, j reply.Job) error { m.jobs <- j; return nil }

// TestBrowserReplyBox: on the local page an agent types a reply under a
// ticket and presses Send reply; the page says it is queued and lists it
// PENDING; once the sender has run, SENT with SES's id. A text with a
// phone number is refused with the rule's code and listed nowhere.
func TestBrowserReplyBox(t *testing.T) {
	ctx := context.Background()
	pool, _ := testenv.Pool(t)
	store := postgres.New(pool)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))

	// A connected tenant with an FR inbound address and a ticket its buyer opened by relay mail.
	tenant := testenv.ID("tenant-replybox")
	var conn string
	if err := pool.QueryRow(ctx, `SELECT keybuzz_dev.connection($1, 'CONNECTED', 'eu', 'A13V1IB3VIYZZH')`, tenant).Scan(&conn); err != nil {
		t.Fatal(err)
	}
	from := fmt.Sprintf("amazon.%s.fr.tok@inbound.keybuzz.test", tenant)
	if err := store.EnsureInboundAddresses(ctx, tenant, []marketplace.InboundAddress{{Country: "FR", Token: "tok", EmailAddress: from}}); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"channel": "email_relay", "messageId": "buyer-1@email.amazonses.com", "subject": "Livraison (Commande : 171-1234567-1234567)"})
	if _, err := testenv.IngestEvents(ctx, store, tenant, conn, []marketplace.InboundMessage{{ExternalID: "<buyer-1@email.amazonses.com>", ThreadKey: "171-1234567-1234567",
		OrderID: "171-1234567-1234567", BuyerName: "Camille", BuyerEmail: "camille+x@marketplace.amazon.fr", Subject: "Livraison", Body: "Où est mon colis ?",
		ReceivedAt: time.Now(), Raw: raw}}); err != nil {
		t.Fatal(err)
	}

	// SES's stand-in, the sender and the routes.
	ses, err := sesout.Start("127.0.0.1:0", sesout.Config{VerifiedDomains: []string{"inbound.keybuzz.test"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ses.Close() })
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_ENDPOINT_URL_SESV2", ses.URL())
	client, err := sessender.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jobs := memJobs{jobs: make(chan reply.Job, 10)}
	sender := replysender.NewSender(store, sessender.New(client, ""), replysender.SenderConfig{Rate: 100, Burst: 100, Log: log})
	verifier, err := auth.NewVerifier(ctx, config.Config{JWTHS256Secret: jwtSecret, JWTIssuer: "kb", JWTAudience: "kb-amazon", TenantClaim: "tenantId"})
	if err != nil {
		t.Fatal(err)
	}
	send := httpapi.SendReplyRoute(replies.NewQueue(store, jobs, reply.DefaultRules(), log), verifier, log)
	outbound := httpapi.OutboundRoute(store, verifier, log)
	status := httpapi.StatusRoute(connect.NewStatus(store, connect.StatusConfig{Log: log}), verifier, log)
	page := &devui.Page{Status: status, Tickets: store, Messages: store, Log: log, SendReply: send, Outbound: outbound,
		Token: func(tenant string) (string, error) {
			return auth.Issue(jwtSecret, "kb", "kb-amazon", "tenantId", tenant, time.Hour, time.Now())
		}}
	mux := httpapi.Mux(send, outbound, status)
	mux.Handle("/", page.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	b := browser(t)
	home := srv.URL + "/?tenant=" + url.QueryEscape(tenant)
	if err := chromedp.Do(b,
		chromedp.Navigate(home),
		chromedp.WaitVisible(chromedp.CSS("form.reply-box textarea")),
		chromedp.SendKeys(chromedp.CSS("form.reply-box textarea"), "Bonjour Camille,\nvotre colis part demain."),
		chromedp.Click(chromedp.CSS("form.reply-box button.send-reply")),
	); err != nil {
		t.Fatalf("reply box: %v", err)
	}
	loc, outcome := after(t, b, home, "#reply-outcome")
	if outcome != "Reply queued PENDING" {
		t.Fatalf("outcome %q at %s", outcome, loc)
	}
	listed := func() string {
		t.Helper()
		v, err := chromedp.Run(b, chromedp.Evaluate[string](`[...document.querySelectorAll("li.reply-status")].map(li => li.dataset.status + ":" + li.textContent).join("\n")`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := listed(); !strings.HasPrefix(got, "PENDING:") || !strings.Contains(got, "votre colis part demain") {
		t.Fatalf("replies listed: %q", got)
	}

	// The sender runs: the page shows it SENT with SES's id.
	if err := sender.Handle(ctx, <-jobs.jobs); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, chromedp.Navigate(home), chromedp.WaitVisible(chromedp.CSS("li.reply-status"))); err != nil {
		t.Fatal(err)
	}
	sent := ses.Sent()
	if got := listed(); len(sent) != 1 || !strings.HasPrefix(got, "SENT:") || !strings.Contains(got, sent[0].MessageID) {
		t.Fatalf("after sending: %q (%d mails)", got, len(sent))
	}

	// A phone number: refused with the rule's code, nothing stored.
	if err := chromedp.Do(b,
		chromedp.SendKeys(chromedp.CSS("form.reply-box textarea"), "Appelez-moi au 06 12 34 56 78"),
		chromedp.Click(chromedp.CSS("form.reply-box button.send-reply")),
	); err != nil {
		t.Fatal(err)
	}
	cur, _ := chromedp.Run(b, chromedp.Location())
	if _, outcome := after(t, b, cur, "#reply-outcome"); outcome != "Reply refused "+reply.CodePhoneNumber {
		t.Fatalf("refused outcome %q", outcome)
	}
	n, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll("li.reply-status").length`))
	if got := listed(); err != nil || n != 1 || strings.Contains(got, "06 12") {
		t.Fatalf("a refused reply is listed: %d %q %v", n, got, err)
	}
}
