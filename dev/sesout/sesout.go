// Package sesout plays SESv2's sending side on loopback: the SendEmail
// operation of SESv2's JSON API (POST /v2/email/outbound-emails, Raw
// content) at the address AWS_ENDPOINT_URL_SESV2 names. Like SES it
// checks that the From domain is a verified identity and that the
// configuration set exists, answers a MessageId, replaces the mail's
// Message-ID and Date, keeps every header it received, relays the mail by
// SMTP (to the sandbox, which plays Amazon's relay), and publishes the
// configuration set's events (Send, then Delivery, Bounce or
// DeliveryDelay) in SES's event JSON through SNS. Throttling, 5xx
// answers and an answer lost after the mail went are injectable, and so
// are faults of the event publishing (EventFaults: outcome events lost,
// duplicated, delayed, out of order, a bounce after the delivery). It
// never ships.
package sesout

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	smtp "github.com/emersion/go-smtp"

	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
)

// Publisher is the part of the SNS client the stand-in uses.
type Publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Config is the SES account the stand-in plays.
type Config struct {
	Region            string   // "eu-west-1": Message-IDs are <id@<region>.amazonses.com>
	VerifiedDomains   []string // identities: any address on them may send
	ConfigurationSets []string // sets that exist
	// RelaySMTP is where every accepted mail is delivered (the sandbox's
	// Amazon relay); "" keeps mails without delivering them.
	RelaySMTP string
	// TopicArn and SNS: the configuration sets' SNS event destination.
	TopicArn string
	SNS      Publisher
	Log      *slog.Logger
	Now      func() time.Time
}

// Faults are answers the stand-in gives instead of sending, each counted
// down by one per SendEmail call, in this order.
type Faults struct {
	Throttle     int `json:"throttle"`     // 429 TooManyRequestsException, nothing sent
	ServerErrors int `json:"serverErrors"` // 500 InternalFailure, nothing sent
	// LostAnswers: the mail is sent (and its events published) but the
	// caller gets a 500, as when SES accepted and the answer was lost.
	LostAnswers int `json:"lostAnswers"`
}

// EventFaults fault the publishing of the outcome events (Delivery,
// Bounce, DeliveryDelay), as SNS and SQS may lose, repeat, delay and
// reorder them: each counts the outcome events published so far, and at
// most one fault hits an event (first match in this order). Send is never
// faulted: the sender's at-most-once rule reads it (docs/replies.md,
// "What remains").
type EventFaults struct {
	DropEvery      int           `json:"dropEvery"`      // every n-th outcome event is not published
	DuplicateEvery int           `json:"duplicateEvery"` // every n-th is published twice
	DelayEvery     int           `json:"delayEvery"`     // every n-th is published Delay later
	Delay          time.Duration `json:"delay"`
	// ReorderEvery: every n-th is held back and published after the next
	// outcome event (or after ReorderWait, 1 s by default, when none comes).
	ReorderEvery int           `json:"reorderEvery"`
	ReorderWait  time.Duration `json:"reorderWait"`
	// LateBounceEvery: every n-th delivered mail also bounces (Permanent),
	// after its Delivery, as when the receiving side gives up on a mail it
	// took; the Bounce is an outcome event like the others.
	LateBounceEvery int `json:"lateBounceEvery"`
}

// Event is an event the stand-in had to publish, and what became of it.
type Event struct {
	MessageID string `json:"messageId"`
	Type      string `json:"eventType"`
	// Fault is "" or dropped, duplicated, delayed, reordered.
	Fault     string `json:"fault,omitempty"`
	Published int    `json:"published"` // copies that reached SNS
}

// Sent is a mail the stand-in accepted.
type Sent struct {
	MessageID        string            `json:"messageId"`
	From             string            `json:"from"`
	To               []string          `json:"to"`
	ConfigurationSet string            `json:"configurationSet"`
	Tags             map[string]string `json:"tags"`
	Headers          map[string][]string
	Raw              []byte    `json:"-"`
	AcceptedAt       time.Time `json:"acceptedAt"`
	// SMTPResponse is the relay's answer ("" while not delivered).
	SMTPResponse string `json:"smtpResponse"`
}

// Server is a running stand-in.
type Server struct {
	cfg  Config
	http *http.Server
	ln   net.Listener

	mu        sync.Mutex
	faults    Faults
	evFaults  EventFaults
	outcomes  int // outcome events so far (what EventFaults count)
	delivered int // Delivery events so far (what LateBounceEvery counts)
	held      *heldEvent
	events    []Event
	sent      []Sent
	calls     int
	wg        sync.WaitGroup
}

// heldEvent is an outcome event held back by ReorderEvery.
type heldEvent struct {
	idx     int // in events
	publish func() error
}

// Start listens on addr ("127.0.0.1:0") and serves until Close.
func Start(addr string, cfg Config) (*Server, error) {
	if cfg.Region == "" {
		cfg.Region = "eu-west-1"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sesout: listen %s: %w", addr, err)
	}
	s := &Server{cfg: cfg, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/email/outbound-emails", s.sendEmail)
	mux.HandleFunc("PUT /_sesout/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.SetFaults(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /_sesout/event-faults", func(w http.ResponseWriter, r *http.Request) {
		var f EventFaults
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.SetEventFaults(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sesout/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Events())
	})
	mux.HandleFunc("GET /_sesout/sent", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Sent())
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.http.Serve(ln) }()
	return s, nil
}

// URL is the endpoint to give AWS_ENDPOINT_URL_SESV2.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops serving and waits for relays in flight.
func (s *Server) Close() error {
	err := s.http.Close()
	s.wg.Wait()
	return err
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// SetEventFaults replaces the faults of the event publishing (their
// counts go on).
func (s *Server) SetEventFaults(f EventFaults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evFaults = f
}

// Events is every event the stand-in had to publish, in that order, with
// its fault.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Sent is every mail accepted so far, oldest first.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// Calls counts SendEmail calls, faulted ones included.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Wait blocks until relays and event publications in flight are done.
func (s *Server) Wait() { s.wg.Wait() }

type sendEmailInput struct {
	FromEmailAddress     string
	ConfigurationSetName string
	Destination          *struct {
		ToAddresses, CcAddresses, BccAddresses []string
	}
	Content *struct {
		Raw *struct{ Data []byte }
	}
	EmailTags []struct{ Name, Value string }
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func (s *Server) sendEmail(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls++
	var fault string
	switch {
	case s.faults.Throttle > 0:
		s.faults.Throttle--
		fault = "throttle"
	case s.faults.ServerErrors > 0:
		s.faults.ServerErrors--
		fault = "5xx"
	case s.faults.LostAnswers > 0:
		s.faults.LostAnswers--
		fault = "lost"
	}
	s.mu.Unlock()
	switch fault {
	case "throttle":
		writeError(w, http.StatusTooManyRequests, "TooManyRequestsException", "Maximum sending rate exceeded.")
		return
	case "5xx":
		writeError(w, http.StatusInternalServerError, "InternalFailure", "The request processing has failed because of an unknown error, exception or failure.")
		return
	}

	var in sendEmailInput
	if err := json.NewDecoder(io.LimitReader(r.Body, 50<<20)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequestException", "Invalid request body: "+err.Error())
		return
	}
	if in.Content == nil || in.Content.Raw == nil || len(in.Content.Raw.Data) == 0 {
		writeError(w, http.StatusBadRequest, "BadRequestException", "Only Raw content is played by the local stand-in.")
		return
	}
	if len(in.Content.Raw.Data) > 40<<20 {
		writeError(w, http.StatusBadRequest, "MessageRejected", "Message length is more than 40 MB.")
		return
	}
	msg, err := mail.ReadMessage(bytes.NewReader(in.Content.Raw.Data))
	if err != nil {
		writeError(w, http.StatusBadRequest, "MessageRejected", "Illegal header or body: "+err.Error())
		return
	}
	from := in.FromEmailAddress
	if from == "" {
		from = msg.Header.Get("From")
	}
	fromAddr, err := mail.ParseAddress(from)
	if err != nil {
		writeError(w, http.StatusBadRequest, "MessageRejected", "Missing or invalid From address.")
		return
	}
	if !s.verified(fromAddr.Address) {
		writeError(w, http.StatusBadRequest, "MessageRejected", fmt.Sprintf(
			"Email address is not verified. The following identities failed the check in region %s: %s",
			strings.ToUpper(s.cfg.Region), fromAddr.Address))
		return
	}
	if in.ConfigurationSetName != "" && !contains(s.cfg.ConfigurationSets, in.ConfigurationSetName) {
		writeError(w, http.StatusNotFound, "NotFoundException", fmt.Sprintf("Configuration set <%s> does not exist.", in.ConfigurationSetName))
		return
	}
	var to []string
	if in.Destination != nil {
		to = append(append(append(to, in.Destination.ToAddresses...), in.Destination.CcAddresses...), in.Destination.BccAddresses...)
	}
	if len(to) == 0 {
		if l, err := msg.Header.AddressList("To"); err == nil {
			for _, a := range l {
				to = append(to, a.Address)
			}
		}
	}
	if len(to) == 0 {
		writeError(w, http.StatusBadRequest, "BadRequestException", "No recipient.")
		return
	}
	tags := map[string]string{}
	for _, t := range in.EmailTags {
		tags[t.Name] = t.Value
	}
	now := s.cfg.Now().UTC()
	id := messageID(now)
	raw := rewriteHeaders(in.Content.Raw.Data, fmt.Sprintf("<%s@%s.amazonses.com>", id, s.cfg.Region), now)
	headers := map[string][]string{}
	if m, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		for k, v := range m.Header {
			headers[k] = v
		}
	}
	sent := Sent{MessageID: id, From: fromAddr.Address, To: to, ConfigurationSet: in.ConfigurationSetName,
		Tags: tags, Headers: headers, Raw: raw, AcceptedAt: now}
	s.mu.Lock()
	s.sent = append(s.sent, sent)
	s.mu.Unlock()

	// SES publishes Send as it accepts; the relay and its outcome follow.
	if err := s.publish(r.Context(), sent, sesmail.EventSend, nil); err != nil {
		s.cfg.Log.Error("sesout: Send event not published", "err", err, "message_id", id)
	} else if s.hasDestination(sent) {
		s.mu.Lock()
		s.events = append(s.events, Event{MessageID: id, Type: sesmail.EventSend, Published: 1})
		s.mu.Unlock()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.relay(sent)
	}()
	s.cfg.Log.Info("sesout: accepted", "message_id", id, "from", fromAddr.Address, "to", len(to), "fault", fault)
	if fault == "lost" {
		writeError(w, http.StatusInternalServerError, "InternalFailure", "The answer was lost (injected).")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"MessageId": id})
}

func (s *Server) verified(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return false
	}
	domain := strings.ToLower(addr[at+1:])
	for _, d := range s.cfg.VerifiedDomains {
		if strings.EqualFold(d, domain) || strings.EqualFold(d, addr) {
			return true
		}
	}
	return false
}

// relay delivers the mail and publishes what became of it: Delivery on
// 250, Bounce (Permanent) on a 5xx answer, DeliveryDelay then Bounce
// (Transient) when the relay stays unreachable or answers 4xx.
func (s *Server) relay(m Sent) {
	if s.cfg.RelaySMTP == "" {
		return
	}
	ctx := context.Background()
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		resp, err := deliver(s.cfg.RelaySMTP, m.From, m.To, m.Raw)
		if err == nil {
			s.mu.Lock()
			for i := range s.sent {
				if s.sent[i].MessageID == m.MessageID {
					s.sent[i].SMTPResponse = resp
				}
			}
			s.mu.Unlock()
			if err := s.emit(ctx, m, sesmail.EventDelivery, func(e *sesmail.Event) {
				e.Delivery = &sesmail.Delivery{Timestamp: s.cfg.Now().UTC(), ProcessingTimeMillis: int(s.cfg.Now().Sub(m.AcceptedAt).Milliseconds()),
					Recipients: m.To, SMTPResponse: resp, ReportingMTA: "local-smtp-out." + s.cfg.Region + ".amazonses.com"}
			}); err != nil {
				s.cfg.Log.Error("sesout: Delivery event not published", "err", err)
			}
			s.mu.Lock()
			s.delivered++
			late := s.evFaults.LateBounceEvery > 0 && s.delivered%s.evFaults.LateBounceEvery == 0
			s.mu.Unlock()
			if late {
				if err := s.emit(ctx, m, sesmail.EventBounce, func(e *sesmail.Event) {
					e.Bounce = bounce(m, "Permanent", "General", "smtp; 550 5.7.1 The recipient's server gave up on the message after taking it (injected)", s.cfg.Now().UTC())
				}); err != nil {
					s.cfg.Log.Error("sesout: Bounce event not published", "err", err)
				}
			}
			return
		}
		last = err
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code >= 500 {
			diag := fmt.Sprintf("smtp; %d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
			if err := s.emit(ctx, m, sesmail.EventBounce, func(e *sesmail.Event) {
				e.Bounce = bounce(m, "Permanent", "General", diag, s.cfg.Now().UTC())
			}); err != nil {
				s.cfg.Log.Error("sesout: Bounce event not published", "err", err)
			}
			return
		}
		if attempt == 0 {
			if err := s.emit(ctx, m, sesmail.EventDeliveryDelay, func(e *sesmail.Event) {
				e.DeliveryDelay = &sesmail.DeliveryDelay{Timestamp: s.cfg.Now().UTC(), DelayType: "TransientCommunicationFailure",
					ExpirationTime: s.cfg.Now().UTC().Add(24 * time.Hour), DelayedRecipients: recipients(m.To, "4.4.1", err.Error())}
			}); err != nil {
				s.cfg.Log.Error("sesout: DeliveryDelay event not published", "err", err)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := s.emit(ctx, m, sesmail.EventBounce, func(e *sesmail.Event) {
		e.Bounce = bounce(m, "Transient", "General", "smtp; 421 "+last.Error(), s.cfg.Now().UTC())
	}); err != nil {
		s.cfg.Log.Error("sesout: Bounce event not published", "err", err)
	}
}

func bounce(m Sent, typ, sub, diag string, at time.Time) *sesmail.Bounce {
	return &sesmail.Bounce{BounceType: typ, BounceSubType: sub, BouncedRecipients: recipients(m.To, "5.0.0", diag),
		Timestamp: at, FeedbackID: messageID(at), ReportingMTA: "dsn; local-smtp-out.amazonses.com"}
}

func recipients(to []string, status, diag string) []sesmail.Recipient {
	var out []sesmail.Recipient
	for _, a := range to {
		out = append(out, sesmail.Recipient{EmailAddress: a, Action: "failed", Status: status, DiagnosticCode: diag})
	}
	return out
}

func (s *Server) hasDestination(m Sent) bool {
	return m.ConfigurationSet != "" && s.cfg.SNS != nil && s.cfg.TopicArn != ""
}

// emit publishes an outcome event of the message through EventFaults.
func (s *Server) emit(ctx context.Context, m Sent, eventType string, fill func(*sesmail.Event)) error {
	if !s.hasDestination(m) {
		return nil
	}
	s.mu.Lock()
	s.outcomes++
	n, f := s.outcomes, s.evFaults
	every := func(k int) bool { return k > 0 && n%k == 0 }
	idx := len(s.events)
	ev := Event{MessageID: m.MessageID, Type: eventType}
	switch {
	case every(f.DropEvery):
		ev.Fault = "dropped"
	case every(f.DuplicateEvery):
		ev.Fault = "duplicated"
	case every(f.DelayEvery):
		ev.Fault = "delayed"
	case every(f.ReorderEvery):
		ev.Fault = "reordered"
	}
	s.events = append(s.events, ev)
	held := s.held
	if held != nil && ev.Fault != "reordered" {
		s.held = nil
	}
	s.mu.Unlock()
	once := func() error {
		err := s.publish(ctx, m, eventType, fill)
		if err == nil {
			s.mu.Lock()
			s.events[idx].Published++
			s.mu.Unlock()
		}
		return err
	}
	var err error
	switch ev.Fault {
	case "dropped":
		s.cfg.Log.Info("sesout: event dropped (injected)", "event_type", eventType, "message_id", m.MessageID)
	case "duplicated":
		if err = once(); err == nil {
			err = once()
		}
	case "delayed":
		s.wg.Add(1)
		time.AfterFunc(f.Delay, func() {
			defer s.wg.Done()
			if err := once(); err != nil {
				s.cfg.Log.Error("sesout: delayed event not published", "err", err)
			}
		})
	case "reordered":
		h := &heldEvent{idx: idx, publish: once}
		s.mu.Lock()
		prev := s.held
		s.held = h
		s.mu.Unlock()
		if prev != nil { // two held in a row: the older goes now, after this one's turn came
			err = prev.publish()
		}
		wait := f.ReorderWait
		if wait <= 0 {
			wait = time.Second
		}
		s.wg.Add(1)
		time.AfterFunc(wait, func() {
			defer s.wg.Done()
			s.mu.Lock()
			mine := s.held == h
			if mine {
				s.held = nil
			}
			s.mu.Unlock()
			if mine {
				if err := h.publish(); err != nil {
					s.cfg.Log.Error("sesout: reordered event not published", "err", err)
				}
			}
		})
		return err
	default:
		err = once()
	}
	if held != nil && ev.Fault != "reordered" {
		if herr := held.publish(); herr != nil && err == nil {
			err = herr
		}
	}
	return err
}

// publish sends one event of the message to the SNS topic.
func (s *Server) publish(ctx context.Context, m Sent, eventType string, fill func(*sesmail.Event)) error {
	if m.ConfigurationSet == "" || s.cfg.SNS == nil || s.cfg.TopicArn == "" {
		return nil
	}
	e := sesmail.Event{EventType: eventType, Mail: eventMail(m, s.cfg.Region)}
	if eventType == sesmail.EventSend {
		e.Send = &struct{}{}
	}
	if fill != nil {
		fill(&e)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = s.cfg.SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(s.cfg.TopicArn), Message: aws.String(string(b))})
	if err != nil {
		return fmt.Errorf("publish %s to %s: %w", eventType, s.cfg.TopicArn, err)
	}
	return nil
}

func eventMail(m Sent, region string) sesmail.EventMail {
	em := sesmail.EventMail{Timestamp: m.AcceptedAt, Source: m.From, SourceArn: "arn:aws:ses:" + region + ":000000000000:identity/" + domainOf(m.From),
		SendingAccountID: "000000000000", MessageID: m.MessageID, Destination: m.To,
		Tags: map[string][]string{"ses:configuration-set": {m.ConfigurationSet}, "ses:from-domain": {domainOf(m.From)},
			"ses:source-ip": {"127.0.0.1"}, "ses:caller-identity": {"local"}}}
	for k, v := range m.Tags {
		em.Tags[k] = []string{v}
	}
	for k, vs := range m.Headers {
		for _, v := range vs {
			em.Headers = append(em.Headers, sesmail.Header{Name: k, Value: v})
		}
	}
	h := mail.Header(m.Headers)
	em.CommonHeaders = sesmail.CommonHeaders{Date: h.Get("Date"), MessageID: m.MessageID, Subject: h.Get("Subject")}
	if v := h.Get("From"); v != "" {
		em.CommonHeaders.From = []string{v}
	}
	if v := h.Get("To"); v != "" {
		em.CommonHeaders.To = []string{v}
	}
	return em
}

// deliver sends by SMTP and returns the server's final answer.
func deliver(addr, from string, to []string, raw []byte) (string, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.Mail(from, nil); err != nil {
		return "", err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return "", err
		}
	}
	wc, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := wc.Write(raw); err != nil {
		return "", err
	}
	if err := wc.Close(); err != nil {
		return "", err
	}
	_ = c.Quit()
	return "250 2.6.0 Message received", nil
}

// rewriteHeaders replaces Message-ID and Date, as SES does; every other
// header and the body are kept byte for byte.
func rewriteHeaders(raw []byte, msgID string, at time.Time) []byte {
	sep := bytes.Index(raw, []byte("\r\n\r\n"))
	nl := "\r\n"
	if sep < 0 {
		if sep = bytes.Index(raw, []byte("\n\n")); sep < 0 {
			return raw
		}
		nl = "\n"
	}
	head, body := string(raw[:sep]), raw[sep:]
	var out []string
	skip := false
	for _, line := range strings.Split(head, nl) {
		if line != "" && (line[0] == ' ' || line[0] == '\t') {
			if !skip {
				out = append(out, line)
			}
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		skip = name == "message-id" || name == "date"
		if !skip {
			out = append(out, line)
		}
	}
	out = append(out, "Message-ID: "+msgID, "Date: "+at.Format(time.RFC1123Z))
	return append([]byte(strings.Join(out, nl)), body...)
}

// messageID is SES's MessageId shape: 0102 + hex, dashes, "-000000".
func messageID(at time.Time) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return fmt.Sprintf("0102%012x-%s-%s-%s-%s-%s-000000", at.UnixMilli(), h[:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

func domainOf(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		return strings.ToLower(addr[at+1:])
	}
	return ""
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

// SNSBody is an event in SNS's envelope, as SNS delivers it to SQS (for
// tests; SNS itself does this on AWS).
func SNSBody(e sesmail.Event, messageID, topicArn string, at time.Time) (string, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	env, err := json.Marshal(sesmail.Envelope{Type: "Notification", MessageID: messageID, TopicArn: topicArn,
		Message: string(b), Timestamp: at.UTC().Format(time.RFC3339Nano)})
	return string(env), err
}
