package sesout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	smtp "github.com/emersion/go-smtp"

	"github.com/keybuzz/keybuzz-amazon/dev/sesout"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/replymail"
	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
	"github.com/keybuzz/keybuzz-amazon/shared/sessender"
)

// events records what the stand-in publishes.
type events struct {
	mu   sync.Mutex
	list []sesmail.Event
}

func (e *events) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	ev, err := sesmail.DecodeEvent(*in.Message)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
	return &sns.PublishOutput{}, nil
}

func (e *events) types(id string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.list {
		if ev.Mail.MessageID == id {
			out = append(out, ev.EventType)
		}
	}
	return out
}

// mx is a tiny SMTP receiver standing for Amazon's relay; it refuses
// recipients named "refuse@…" with 550.
type mx struct {
	mu   sync.Mutex
	got  [][]byte
	addr string
}

func (m *mx) NewSession(*smtp.Conn) (smtp.Session, error) { return &mxSession{m: m}, nil }

type mxSession struct{ m *mx }

func (s *mxSession) Reset()                               {}
func (s *mxSession) Logout() error                        { return nil }
func (s *mxSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if bytes.HasPrefix([]byte(to), []byte("refuse@")) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such alias"}
	}
	return nil
}
func (s *mxSession) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	s.m.mu.Lock()
	s.m.got = append(s.m.got, b)
	s.m.mu.Unlock()
	return nil
}

func startMX(t *testing.T) *mx {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &mx{addr: ln.Addr().String()}
	srv := smtp.NewServer(m)
	srv.Domain = "mx.local"
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return m
}

func start(t *testing.T) (*sesout.Server, *events, *mx, *sessender.Sender) {
	t.Helper()
	ev := &events{}
	m := startMX(t)
	srv, err := sesout.Start("127.0.0.1:0", sesout.Config{
		Region: "eu-west-1", VerifiedDomains: []string{"inbound.keybuzz.test"}, ConfigurationSets: []string{"replies"},
		RelaySMTP: m.addr, TopicArn: "arn:aws:sns:eu-west-1:000000000000:ses-events", SNS: ev,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_ENDPOINT_URL_SESV2", srv.URL())
	client, err := sessender.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return srv, ev, m, sessender.New(client, "replies")
}

func composed(t *testing.T, from, to string) []byte {
	t.Helper()
	raw, err := replymail.Compose(replymail.Mail{From: from, To: to, BuyerSubject: "Où est mon colis ?", InReplyTo: "<buyer-1@email.amazonses.com>",
		Text: "Bonjour,\nil part demain.", Date: time.Unix(1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestSendThroughStandIn(t *testing.T) {
	srv, ev, m, sender := start(t)
	const from, to = "amazon.t1.fr.tok@inbound.keybuzz.test", "buyer+x@marketplace.amazon.fr"
	id, err := sender.Send(context.Background(), reply.Outgoing{ReplyID: "r1", TenantID: "tenant.1", From: from, To: to, Raw: composed(t, from, to)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	sent := srv.Sent()
	if len(sent) != 1 || sent[0].MessageID != id || sent[0].Tags[reply.TagReply] != "r1" || sent[0].Tags[reply.TagTenant] != "tenant_1" ||
		sent[0].ConfigurationSet != "replies" {
		t.Fatalf("sent %+v", sent)
	}
	h := mail.Header(sent[0].Headers)
	if h.Get("In-Reply-To") != "<buyer-1@email.amazonses.com>" || h.Get("Message-Id") != "<"+id+"@eu-west-1.amazonses.com>" ||
		h.Get("Subject") == "" || h.Get("From") != from || h.Get("To") != to {
		t.Fatalf("headers %v", sent[0].Headers)
	}
	if got := ev.types(id); len(got) != 2 || got[0] != sesmail.EventSend || got[1] != sesmail.EventDelivery {
		t.Fatalf("events %v", got)
	}
	ev.mu.Lock()
	tag := ev.list[0].Mail.Tag(reply.TagReply)
	ev.mu.Unlock()
	if tag != "r1" {
		t.Fatalf("Send event's reply tag %q", tag)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.got) != 1 || !bytes.Contains(m.got[0], []byte("In-Reply-To: <buyer-1@email.amazonses.com>")) {
		t.Fatalf("relayed %d mails", len(m.got))
	}
}

func TestSendErrors(t *testing.T) {
	srv, ev, _, sender := start(t)
	const from, to = "amazon.t1.fr.tok@inbound.keybuzz.test", "buyer@marketplace.amazon.fr"
	send := func(from, to string) (string, error) {
		return sender.Send(context.Background(), reply.Outgoing{ReplyID: "r", TenantID: "t", From: from, To: to, Raw: composed(t, from, to)})
	}
	tests := []struct {
		name      string
		faults    sesout.Faults
		from      string
		permanent bool
		code      string
		sends     int // mails accepted by the call
	}{
		{"throttled", sesout.Faults{Throttle: 1}, from, false, "TooManyRequestsException", 0},
		{"5xx", sesout.Faults{ServerErrors: 1}, from, false, "InternalFailure", 0},
		{"answer lost", sesout.Faults{LostAnswers: 1}, from, false, "InternalFailure", 1},
		{"unverified", sesout.Faults{}, "noreply@keybuzz.io", true, "MessageRejected", 0},
	}
	for _, tc := range tests {
		before := len(srv.Sent())
		srv.SetFaults(tc.faults)
		_, err := send(tc.from, to)
		var se *reply.SendError
		if !errors.As(err, &se) || se.Permanent != tc.permanent || se.Code != tc.code || se.Reason == "" {
			t.Fatalf("%s: %v (%+v)", tc.name, err, se)
		}
		if n := len(srv.Sent()) - before; n != tc.sends {
			t.Fatalf("%s: %d mails accepted", tc.name, n)
		}
	}
	srv.Wait()
	lost := srv.Sent()[0]
	if got := ev.types(lost.MessageID); len(got) == 0 || got[0] != sesmail.EventSend {
		t.Fatalf("a lost answer's mail has events %v, want its Send event", got)
	}

	other := sessender.New(mustClient(t), "missing-set")
	_, err := other.Send(context.Background(), reply.Outgoing{ReplyID: "r", TenantID: "t", From: from, To: to, Raw: composed(t, from, to)})
	var se *reply.SendError
	if !errors.As(err, &se) || !se.Permanent || se.Code != "NotFoundException" {
		t.Fatalf("missing configuration set: %v", err)
	}
}

func mustClient(t *testing.T) sessender.API {
	c, err := sessender.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBounceOnRefusedAlias(t *testing.T) {
	srv, ev, _, sender := start(t)
	const from, to = "amazon.t1.fr.tok@inbound.keybuzz.test", "refuse@marketplace.amazon.fr"
	id, err := sender.Send(context.Background(), reply.Outgoing{ReplyID: "r2", TenantID: "t", From: from, To: to, Raw: composed(t, from, to)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	got := ev.types(id)
	if len(got) != 2 || got[1] != sesmail.EventBounce {
		t.Fatalf("events %v", got)
	}
	ev.mu.Lock()
	b := ev.list[len(ev.list)-1].Bounce
	ev.mu.Unlock()
	if b == nil || b.BounceType != "Permanent" || b.BouncedRecipients[0].DiagnosticCode != "smtp; 550 5.1.1 No such alias" {
		t.Fatalf("bounce %+v", b)
	}
}

func TestFaultsOverHTTP(t *testing.T) {
	srv, _, _, _ := start(t)
	body, _ := json.Marshal(sesout.Faults{Throttle: 2})
	req, _ := newRequest("PUT", srv.URL()+"/_sesout/faults", body)
	resp, err := httpClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("PUT faults: %v %v", resp, err)
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func newRequest(method, url string, body []byte) (*http.Request, error) {
	return http.NewRequest(method, url, bytes.NewReader(body))
}

// published is the event types the SNS recorder got for a message, in order.
func (e *events) all() []sesmail.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]sesmail.Event(nil), e.list...)
}

// TestEventFaults sends mails one at a time (each relayed before the next)
// and checks what each fault of the event publishing did to the outcome
// events, against what the stand-in says it did (Events).
func TestEventFaults(t *testing.T) {
	const from = "amazon.t1.fr.tok@inbound.keybuzz.test"
	tests := []struct {
		name   string
		faults sesout.EventFaults
		to     []string // one mail each, in this order
		// want: the outcome events SNS got, in order, as "<mail index>:<type>".
		want   []string
		record []string // Events() faults of the outcome events, in order
	}{
		{"none", sesout.EventFaults{}, []string{"a@marketplace.amazon.fr", "b@marketplace.amazon.fr"},
			[]string{"0:Delivery", "1:Delivery"}, []string{"", ""}},
		{"every second dropped", sesout.EventFaults{DropEvery: 2}, []string{"a@marketplace.amazon.fr", "b@marketplace.amazon.fr", "c@marketplace.amazon.fr"},
			[]string{"0:Delivery", "2:Delivery"}, []string{"", "dropped", ""}},
		{"every second duplicated", sesout.EventFaults{DuplicateEvery: 2}, []string{"a@marketplace.amazon.fr", "b@marketplace.amazon.fr"},
			[]string{"0:Delivery", "1:Delivery", "1:Delivery"}, []string{"", "duplicated"}},
		{"a late bounce after each delivery", sesout.EventFaults{LateBounceEvery: 1}, []string{"a@marketplace.amazon.fr"},
			[]string{"0:Delivery", "0:Bounce"}, []string{"", ""}},
		// The refused alias's Bounce is outcome 1; the next mail's Delivery
		// (2) is held and goes after its late Bounce (3): Bounce first.
		{"a delivery held behind its bounce", sesout.EventFaults{ReorderEvery: 2, LateBounceEvery: 1, ReorderWait: 2 * time.Second},
			[]string{"refuse@marketplace.amazon.fr", "b@marketplace.amazon.fr"},
			[]string{"0:Bounce", "1:Bounce", "1:Delivery"}, []string{"", "reordered", ""}},
		{"held with nothing after it", sesout.EventFaults{ReorderEvery: 1, ReorderWait: 50 * time.Millisecond}, []string{"a@marketplace.amazon.fr"},
			[]string{"0:Delivery"}, []string{"reordered"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, ev, _, sender := start(t)
			srv.SetEventFaults(tc.faults)
			var ids []string
			for i, to := range tc.to {
				id, err := sender.Send(context.Background(), reply.Outgoing{ReplyID: fmt.Sprint("r", i), TenantID: "t", From: from, To: to, Raw: composed(t, from, to)})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
				// The next mail only once this one's relay is done (its
				// outcome published, or held).
				deadline := time.Now().Add(5 * time.Second)
				for n := 0; n < 1+i; {
					n = 0
					for _, e := range srv.Events() {
						if e.Type != sesmail.EventSend {
							n++
						}
					}
					if time.Now().After(deadline) {
						t.Fatalf("mail %d: no outcome event", i)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			srv.Wait()
			var got []string
			for _, e := range ev.all() {
				if e.EventType == sesmail.EventSend {
					continue
				}
				for i, id := range ids {
					if e.Mail.MessageID == id {
						got = append(got, fmt.Sprintf("%d:%s", i, e.EventType))
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("SNS got %v, want %v", got, tc.want)
			}
			var rec []string
			for _, e := range srv.Events() {
				if e.Type == sesmail.EventSend {
					if e.Fault != "" || e.Published != 1 {
						t.Errorf("a Send event faulted: %+v", e)
					}
					continue
				}
				rec = append(rec, e.Fault)
				want := 1
				switch e.Fault {
				case "dropped":
					want = 0
				case "duplicated":
					want = 2
				}
				if e.Published != want {
					t.Errorf("%+v: published %d times, want %d", e, e.Published, want)
				}
			}
			if fmt.Sprint(rec) != fmt.Sprint(tc.record) {
				t.Errorf("Events() faults %q, want %q", rec, tc.record)
			}
		})
	}
}

// TestDelayedEvent: a delayed outcome event reaches SNS Delay after it was due.
func TestDelayedEvent(t *testing.T) {
	srv, ev, _, sender := start(t)
	srv.SetEventFaults(sesout.EventFaults{DelayEvery: 1, Delay: 300 * time.Millisecond})
	const from, to = "amazon.t1.fr.tok@inbound.keybuzz.test", "a@marketplace.amazon.fr"
	t0 := time.Now()
	id, err := sender.Send(context.Background(), reply.Outgoing{ReplyID: "r", TenantID: "t", From: from, To: to, Raw: composed(t, from, to)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := ev.types(id); len(got) != 1 {
		t.Fatalf("before the delay: %v, want only Send", got)
	}
	srv.Wait()
	if got := ev.types(id); len(got) != 2 || got[1] != sesmail.EventDelivery || time.Since(t0) < 300*time.Millisecond {
		t.Fatalf("after the delay: %v in %s", got, time.Since(t0))
	}
	if e := srv.Events(); len(e) != 2 || e[1].Fault != "delayed" || e[1].Published != 1 {
		t.Fatalf("Events %+v", e)
	}
}
