package sesout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
