package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/keybuzz/keybuzz-amazon/shared/logging"
)

// errLog keeps, per SQS message id (the request id sqsbatch gives each
// record), the warnings and errors the connector logged while handling
// it, so that a failed delivery in the trace says what failed; an
// unexplained dead letter then names its failure rather than a guess.
type errLog struct {
	mu   sync.Mutex
	byID map[string][]string
}

func newErrLog() *errLog { return &errLog{byID: map[string][]string{}} }

// take returns and forgets what was logged for id.
func (e *errLog) take(id string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.byID[id]
	delete(e.byID, id)
	return s
}

// handler wraps next: every record at warning level or above with a
// request id is also kept (its message and err attribute).
func (e *errLog) handler(next slog.Handler) slog.Handler { return errHandler{next, e} }

type errHandler struct {
	slog.Handler
	e *errLog
}

func (h errHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := logging.RequestID(ctx); id != "" && r.Level >= slog.LevelWarn {
		line := r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				line += ": " + a.Value.String()
			}
			return true
		})
		if len(line) > 300 {
			line = line[:300]
		}
		h.e.mu.Lock()
		if len(h.e.byID[id]) < 8 {
			h.e.byID[id] = append(h.e.byID[id], line)
		}
		h.e.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h errHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return errHandler{h.Handler.WithAttrs(attrs), h.e}
}

func (h errHandler) WithGroup(name string) slog.Handler {
	return errHandler{h.Handler.WithGroup(name), h.e}
}
