// Package replysender is the flow of the replysender function: one queued
// reply to SES, at most once (see Sender).
package replysender

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/reply"
	"github.com/keybuzz/keybuzz-amazon/shared/replymail"
)

// SendStore is what Sender needs of the database (postgres.Store).
type SendStore interface {
	ClaimReply(ctx context.Context, id, owner string, lease time.Duration) (reply.Pending, bool, time.Time, error)
	SentBySES(ctx context.Context, replyID string) (string, bool, error)
	ReplyAccepted(ctx context.Context, id, owner, sesMessageID string) error
	ReplyRetry(ctx context.Context, id, owner string, next time.Time, uncertain bool, reason string) error
	ReplyFailed(ctx context.Context, id, owner, code, reason string) error
	TakeSendToken(ctx context.Context, name string, rate float64, burst int) (time.Duration, error)
	ThrottleSend(ctx context.Context, name string, until time.Time) error
}

// Mailer hands a raw mail to SES (sessender.Sender).
type Mailer interface {
	Send(ctx context.Context, m reply.Outgoing) (string, error)
}

// SenderConfig tunes the Sender; zero fields take the defaults named.
type SenderConfig struct {
	// Lease is how long a claim holds a reply (default 60 s): a sender that
	// dies leaves it to the next after that.
	Lease time.Duration
	// Rate and Burst are SES's sending rate (default 1/s, burst 1: a
	// sandbox account's quota).
	Rate  float64
	Burst int
	// MaxAttempts before a reply ends FAILED (default 8).
	MaxAttempts int
	// BaseBackoff doubles per attempt, capped at MaxBackoff (defaults 2 s, 5 min).
	BaseBackoff, MaxBackoff time.Duration
	// MaxWait is the longest the sender waits in one call for the budget
	// (default 2 s); longer waits go back to the queue.
	MaxWait time.Duration
	// Now and Sleep are the clock (defaults time.Now, a context-aware sleep).
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
	Log   *slog.Logger
}

// Sender sends one queued reply, at most once: under SQS redelivery,
// concurrent senders and a crash between SES's answer and the commit.
//   - A claim with a lease makes one sender the reply's only sender.
//   - Before sending a reply an earlier attempt may have handed to SES
//     (a stale claim, or an error that does not prove SES refused), it
//     looks for SES's Send event carrying the reply's tag: found, the
//     reply is recorded as sent with that MessageId and not sent again.
//   - The SDK client never retries by itself (sessender.NewClient).
type Sender struct {
	store SendStore
	mail  Mailer
	cfg   SenderConfig
	owner string
}

// ErrRetryLater is a job to redeliver later (its reply is not due yet, or
// another sender's claim covers it); the SQS adapter reports it as a batch
// item failure.
var ErrRetryLater = errors.New("reply not due: retry later")

// NewSender builds the flow.
func NewSender(store SendStore, mail Mailer, cfg SenderConfig) *Sender {
	if cfg.Lease <= 0 {
		cfg.Lease = 60 * time.Second
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 1
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 1
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = 2 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Sender{store: store, mail: mail, cfg: cfg, owner: "sender-" + hex.EncodeToString(b)}
}

// Consume is the outbound queue's consumer (shared/sqsbatch): a malformed
// body is dropped (logged); an error asks SQS to redeliver the job after
// the queue's visibility timeout, which is the sender's back-off.
func (s *Sender) Consume(ctx context.Context, messageID, body string, receives int) error {
	job, err := reply.DecodeJob(body)
	if err != nil {
		s.cfg.Log.WarnContext(ctx, "reply job dropped", "sqs_message_id", messageID, "err", err)
		return nil
	}
	return s.Handle(ctx, job)
}

// budgetName is the one SES budget the senders share.
const budgetName = "ses:SendEmail"

// Handle sends the job's reply. nil: the reply is sent, failed for good,
// or was settled before; ErrRetryLater (wrapped): redeliver the job.
func (s *Sender) Handle(ctx context.Context, job reply.Job) error {
	p, ok, retryAt, err := s.store.ClaimReply(ctx, job.ReplyID, s.owner, s.cfg.Lease)
	if err != nil {
		return fmt.Errorf("claim reply %s: %w", job.ReplyID, err)
	}
	if !ok {
		if retryAt.IsZero() {
			return nil // settled
		}
		return fmt.Errorf("reply %s due at %s: %w", job.ReplyID, retryAt.Format(time.RFC3339), ErrRetryLater)
	}
	log := s.cfg.Log.With("reply_id", p.ID, "tenant_id", p.TenantID, "attempt", p.Attempts+1)
	if p.Uncertain {
		if sesID, found, err := s.store.SentBySES(ctx, p.ID); err != nil {
			return s.retry(ctx, p, true, "could not look for SES's record of an earlier attempt: "+err.Error())
		} else if found {
			log.InfoContext(ctx, "reply reached SES before: not sent again", "ses_message_id", sesID)
			return s.store.ReplyAccepted(ctx, p.ID, s.owner, sesID)
		}
	}
	if p.Attempts >= s.cfg.MaxAttempts {
		return s.store.ReplyFailed(ctx, p.ID, s.owner, "gave_up", fmt.Sprintf("SES did not take the reply after %d attempts", p.Attempts))
	}
	for {
		wait, err := s.store.TakeSendToken(ctx, budgetName, s.cfg.Rate, s.cfg.Burst)
		if err != nil {
			return s.retry(ctx, p, false, "SES budget unavailable: "+err.Error())
		}
		if wait == 0 {
			break
		}
		if wait > s.cfg.MaxWait {
			return s.requeue(ctx, p, s.cfg.Now().Add(wait), "waiting for the SES sending rate")
		}
		if err := s.cfg.Sleep(ctx, wait); err != nil {
			return s.retry(ctx, p, false, "cancelled while waiting for the SES sending rate")
		}
	}
	raw, err := replymail.Compose(replymail.Mail{From: p.From, To: p.To, BuyerSubject: p.Subject, InReplyTo: p.InReplyTo,
		References: p.References, Text: p.Text, Date: s.cfg.Now()})
	if err != nil {
		return s.store.ReplyFailed(ctx, p.ID, s.owner, "compose", "the reply could not be written as an e-mail: "+err.Error())
	}
	start := s.cfg.Now()
	sesID, err := s.mail.Send(ctx, reply.Outgoing{ReplyID: p.ID, TenantID: p.TenantID, From: p.From, To: p.To, Raw: raw})
	if err == nil {
		log.InfoContext(ctx, "reply accepted by SES", "ses_message_id", sesID, "duration_ms", s.cfg.Now().Sub(start).Milliseconds())
		if err := s.store.ReplyAccepted(ctx, p.ID, s.owner, sesID); err != nil {
			// SES has it: the next attempt finds its Send event.
			return fmt.Errorf("record reply %s accepted as %s: %w", p.ID, sesID, err)
		}
		return nil
	}
	var se *reply.SendError
	if !errors.As(err, &se) {
		se = &reply.SendError{Code: "unknown", Reason: err.Error(), Err: err}
	}
	if se.Permanent {
		log.WarnContext(ctx, "reply refused by SES", "code", se.Code, "reason", se.Reason)
		return s.store.ReplyFailed(ctx, p.ID, s.owner, "ses_"+se.Code, se.Reason)
	}
	throttled := se.Code == "TooManyRequestsException" || se.Code == "ThrottlingException" || se.Code == "LimitExceededException"
	if throttled {
		_ = s.store.ThrottleSend(ctx, budgetName, s.cfg.Now().Add(time.Second))
	}
	log.WarnContext(ctx, "reply not taken by SES, will retry", "code", se.Code, "reason", se.Reason)
	// A throttled call was refused; any other failure may have reached SES.
	return s.retry(ctx, p, !throttled, se.Reason)
}

// retry puts the reply back with back-off and asks for redelivery.
func (s *Sender) retry(ctx context.Context, p reply.Pending, uncertain bool, reason string) error {
	backoff := s.cfg.BaseBackoff << min(p.Attempts, 16)
	if backoff > s.cfg.MaxBackoff || backoff <= 0 {
		backoff = s.cfg.MaxBackoff
	}
	next := s.cfg.Now().Add(backoff)
	if err := s.store.ReplyRetry(ctx, p.ID, s.owner, next, uncertain, reason); err != nil {
		return fmt.Errorf("reply %s: %s; and putting it back failed: %w", p.ID, reason, err)
	}
	return fmt.Errorf("reply %s: %s: %w", p.ID, reason, ErrRetryLater)
}

// requeue puts the reply back until next without counting an attempt's failure.
func (s *Sender) requeue(ctx context.Context, p reply.Pending, next time.Time, reason string) error {
	if err := s.store.ReplyRetry(ctx, p.ID, s.owner, next, false, reason); err != nil {
		return fmt.Errorf("reply %s: %s; and putting it back failed: %w", p.ID, reason, err)
	}
	return fmt.Errorf("reply %s: %s: %w", p.ID, reason, ErrRetryLater)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
