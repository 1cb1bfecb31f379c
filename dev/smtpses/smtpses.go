// Package smtpses plays SES's receipt rule on loopback: an SMTP server
// (emersion/go-smtp) that accepts mail for the inbound domain only, writes
// each raw mail to the S3 emulator under the rule's prefix and publishes
// SES's "Received" notification (S3 action, with verdicts) to the SNS topic
// that delivers to the mail queue, as SES does on AWS. It never ships.
//
// SES computes spam, virus, SPF, DKIM and DMARC verdicts; a loopback server
// cannot, so every verdict is PASS unless the mail carries the local-only
// header X-Local-SES-Verdicts ("spf=FAIL, dmarc=FAIL, spam=FAIL…"), which
// tests use to play hostile mail.
package smtpses

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	smtp "github.com/emersion/go-smtp"

	"github.com/keybuzz/keybuzz-amazon/shared/sesmail"
)

// VerdictHeader is the local-only header that sets SES's verdicts.
const VerdictHeader = "X-Local-SES-Verdicts"

// MaxMessageBytes is SES's limit for the S3 action (40 MB).
const MaxMessageBytes = 40 << 20

// ObjectStore is the part of the S3 client the receiver uses.
type ObjectStore interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Publisher is the part of the SNS client the receiver uses.
type Publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Config is the receipt rule the server plays.
type Config struct {
	Domain   string // recipients must be <anything>@Domain
	Bucket   string
	Prefix   string // object key prefix, "raw/"
	TopicArn string
	S3       ObjectStore
	SNS      Publisher
	Log      *slog.Logger
	Now      func() time.Time
}

// Server is a running receiver.
type Server struct {
	cfg  Config
	smtp *smtp.Server
	ln   net.Listener
	wg   sync.WaitGroup
}

// Start listens on addr ("127.0.0.1:0" for any port) and serves until Close.
func Start(addr string, cfg Config) (*Server, error) {
	if cfg.Domain == "" || cfg.Bucket == "" || cfg.TopicArn == "" || cfg.S3 == nil || cfg.SNS == nil {
		return nil, errors.New("smtpses: Domain, Bucket, TopicArn, S3 and SNS are required")
	}
	cfg.Domain = strings.ToLower(cfg.Domain)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtpses: listen %s: %w", addr, err)
	}
	s := &Server{cfg: cfg, ln: ln}
	srv := smtp.NewServer(s)
	srv.Domain = "inbound-smtp.local"
	srv.MaxMessageBytes = MaxMessageBytes
	srv.MaxRecipients = 50
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = slogLogger{cfg.Log}
	s.smtp = srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = srv.Serve(ln)
	}()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() error {
	err := s.smtp.Close()
	s.wg.Wait()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{srv: s}, nil
}

type session struct {
	srv  *Server
	from string
	to   []string
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

// Rcpt accepts the inbound domain only, as a receipt rule for the domain
// does (SES answers other recipients 550).
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	at := strings.LastIndexByte(to, '@')
	if at < 0 || !strings.EqualFold(to[at+1:], ss.srv.cfg.Domain) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Mailbox does not exist"}
	}
	ss.to = append(ss.to, strings.ToLower(to))
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.srv.Receive(context.Background(), ss.from, ss.to, raw); err != nil {
		ss.srv.cfg.Log.Error("smtpses: mail not stored", "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again"}
	}
	return nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Receive does what SES does with an accepted mail: store it, then notify.
// It is exported so tests can deliver without a socket.
func (s *Server) Receive(ctx context.Context, from string, to []string, raw []byte) error {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	id := idEncoding.EncodeToString(b)
	key := s.cfg.Prefix + id
	now := s.cfg.Now().UTC()
	if _, err := s.cfg.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), Body: bytes.NewReader(raw),
		ContentLength: aws.Int64(int64(len(raw))), ContentType: aws.String("message/rfc822"),
	}); err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", s.cfg.Bucket, key, err)
	}
	n := Notification(id, from, to, raw, now)
	n.Receipt.Action = sesmail.Action{Type: "S3", TopicArn: s.cfg.TopicArn, BucketName: s.cfg.Bucket,
		ObjectKeyPrefix: strings.TrimSuffix(s.cfg.Prefix, "/"), ObjectKey: key}
	msg, err := jsonString(n)
	if err != nil {
		return err
	}
	if _, err := s.cfg.SNS.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(s.cfg.TopicArn), Message: aws.String(msg),
		Subject: aws.String("Amazon SES Email Receipt Notification"),
	}); err != nil {
		return fmt.Errorf("publish to %s: %w", s.cfg.TopicArn, err)
	}
	s.cfg.Log.Info("smtpses: mail received", "ses_message_id", id, "object_key", key, "recipients", len(to), "bytes", len(raw))
	return nil
}

// Notification builds SES's "Received" notification for a mail (without
// its action): headers and common headers as SES reports them, every
// verdict PASS unless VerdictHeader says otherwise.
func Notification(id, from string, to []string, raw []byte, at time.Time) sesmail.Notification {
	n := sesmail.Notification{NotificationType: "Received"}
	n.Mail = sesmail.Mail{Timestamp: at, Source: from, MessageID: id, Destination: to}
	pass := sesmail.Verdict{Status: sesmail.Pass}
	n.Receipt = sesmail.Receipt{Timestamp: at, ProcessingTimeMillis: 1, Recipients: to,
		SpamVerdict: pass, VirusVerdict: pass, SPFVerdict: pass, DKIMVerdict: pass, DMARCVerdict: pass}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return n
	}
	for k, vs := range m.Header {
		for _, v := range vs {
			n.Mail.Headers = append(n.Mail.Headers, sesmail.Header{Name: k, Value: v})
		}
	}
	h := m.Header
	n.Mail.CommonHeaders = sesmail.CommonHeaders{ReturnPath: from, Date: h.Get("Date"), MessageID: h.Get("Message-Id"), Subject: h.Get("Subject")}
	if v := h.Get("From"); v != "" {
		n.Mail.CommonHeaders.From = []string{v}
	}
	if v := h.Get("To"); v != "" {
		n.Mail.CommonHeaders.To = []string{v}
	}
	for _, kv := range strings.Split(h.Get(VerdictHeader), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			continue
		}
		verdict := sesmail.Verdict{Status: strings.ToUpper(strings.TrimSpace(v))}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "spam":
			n.Receipt.SpamVerdict = verdict
		case "virus":
			n.Receipt.VirusVerdict = verdict
		case "spf":
			n.Receipt.SPFVerdict = verdict
		case "dkim":
			n.Receipt.DKIMVerdict = verdict
		case "dmarc":
			n.Receipt.DMARCVerdict = verdict
			if verdict.Status == sesmail.Fail {
				n.Receipt.DMARCPolicy = "reject"
			}
		}
	}
	return n
}

// Send delivers raw to the receiver at addr over plain SMTP on loopback
// (what a sending MTA does; no TLS, no AUTH): the sandbox's relay, `make
// mail` and tests use it.
func Send(addr, from string, to []string, raw []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, to, bytes.NewReader(raw)); err != nil {
		return err
	}
	return c.Quit()
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Printf(format string, v ...interface{}) {
	s.l.Warn("smtpses: " + fmt.Sprintf(format, v...))
}
func (s slogLogger) Println(v ...interface{}) { s.l.Warn("smtpses: " + fmt.Sprint(v...)) }

// SNSBody puts a notification in SNS's envelope, as SNS delivers it to SQS
// (tests build mail queue messages with it; SNS itself does this on AWS and
// in the emulator).
func SNSBody(n sesmail.Notification, messageID, topicArn string, at time.Time) (string, error) {
	b, err := json.Marshal(n)
	if err != nil {
		return "", err
	}
	e, err := json.Marshal(sesmail.Envelope{Type: "Notification", MessageID: messageID, TopicArn: topicArn,
		Subject: "Amazon SES Email Receipt Notification", Message: string(b), Timestamp: at.UTC().Format(time.RFC3339Nano)})
	return string(e), err
}
