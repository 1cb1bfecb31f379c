package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
	"github.com/keybuzz/keybuzz-amazon/shared/reply"
)

// The reply routes, at KeyBuzz's paths (its backend's amazonReply.routes.ts).
const (
	SendReplyPath = "/api/v1/marketplaces/amazon/tickets/{ticketId}/send-reply"
	OutboundPath  = "/api/v1/marketplaces/amazon/tickets/{ticketId}/outbound"
)

// ReplyQueuedMessage is KeyBuzz's message in send-reply's answer.
const ReplyQueuedMessage = "Reply queued for sending"

// ReplyQueue is the flow of send-reply (replies.Queue).
type ReplyQueue interface {
	Reply(ctx context.Context, req reply.Request) (reply.Queued, error)
}

// OutboundLister is the flow of outbound (replies.Queue, or the store).
type OutboundLister interface {
	Outbound(ctx context.Context, tenantID, ticketID string) ([]reply.Outbound, *time.Time, error)
}

// SendReplyRoute serves POST SendReplyPath with queue, for the tenant
// authn names: {"message"} and an optional Idempotency-Key header; 202
// {success, jobId, message, status}.
func SendReplyRoute(queue ReplyQueue, authn Authenticator, log *slog.Logger) Route {
	return ticketRoute(SendReplyPath, http.MethodPost, authn, log, func(r *http.Request, claims auth.Claims, ticketID string, log *slog.Logger) (int, any, error) {
		var body struct {
			Message *string `json:"message"`
		}
		if err := readJSON(r, &body); err != nil {
			return 0, nil, err
		}
		key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
		if len(key) > 255 || strings.ContainsFunc(key, func(c rune) bool { return c < 0x20 || c > 0x7e }) {
			return 0, nil, fmt.Errorf("Idempotency-Key: %w", marketplace.ErrBadRequest)
		}
		text := ""
		if body.Message != nil {
			text = *body.Message
		}
		q, err := queue.Reply(r.Context(), reply.Request{TenantID: claims.TenantID, TicketID: ticketID, AgentID: claims.Subject,
			IdempotencyKey: key, Text: text})
		var v *reply.Violation
		if errors.As(err, &v) {
			log.InfoContext(r.Context(), "reply refused by a content rule", "code", v.Code)
			var eb errorBody
			eb.Error.Code, eb.Error.Message = v.Code, v.Message
			return http.StatusBadRequest, eb, nil
		}
		if err != nil {
			return 0, nil, err
		}
		return http.StatusAccepted, sendReplyResponse{Success: true, JobID: q.ReplyID, Message: ReplyQueuedMessage, Status: q.Status}, nil
	})
}

type sendReplyResponse struct {
	Success bool   `json:"success"`
	JobID   string `json:"jobId"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// OutboundRoute serves GET OutboundPath: the ticket's replies newest
// first and when its oldest unanswered buyer message turns 24 hours old.
func OutboundRoute(queue OutboundLister, authn Authenticator, log *slog.Logger) Route {
	return ticketRoute(OutboundPath, http.MethodGet, authn, log, func(r *http.Request, claims auth.Claims, ticketID string, _ *slog.Logger) (int, any, error) {
		list, due, err := queue.Outbound(r.Context(), claims.TenantID, ticketID)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, outboundResponse{Messages: list, ResponseDueAt: due}, nil
	})
}

// ticketRoute serves method on path (…/tickets/{ticketId}/<action>) for
// the tenant authn names: serve gets the ticket id (a path without one is
// 404) and the route's logger (log, or slog.Default when nil); its answer
// is written as JSON with its status, its error by the error table.
func ticketRoute(path, method string, authn Authenticator, log *slog.Logger,
	serve func(r *http.Request, claims auth.Claims, ticketID string, log *slog.Logger) (int, any, error)) Route {
	if log == nil {
		log = slog.Default()
	}
	a := &base{auth: authn, log: log}
	suffix := path[strings.LastIndex(path, "/"):]
	return Route{path, a.wrapTenant(method, func(w http.ResponseWriter, r *http.Request, claims auth.Claims) {
		ticketID, ok := ticketIDOf(r.URL.Path, suffix)
		if !ok {
			writeError(w, r, log, fmt.Errorf("path %q: %w", r.URL.Path, marketplace.ErrNotFound))
			return
		}
		status, body, err := serve(r, claims, ticketID, log)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		writeJSON(w, status, body)
	})}
}

type outboundResponse struct {
	Messages      []reply.Outbound `json:"messages"`
	ResponseDueAt *time.Time       `json:"responseDueAt"`
}

// ticketIDOf reads {ticketId} from …/tickets/{ticketId}<suffix> (API
// Gateway hands the function the raw path, not a ServeMux's values).
func ticketIDOf(path, suffix string) (string, bool) {
	const prefix = "/api/v1/marketplaces/amazon/tickets/"
	if !strings.HasPrefix(path, prefix) || !strings.HasSuffix(path, suffix) {
		return "", false
	}
	id := strings.TrimSuffix(strings.TrimPrefix(path, prefix), suffix)
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/?#%") {
		return "", false
	}
	return id, true
}
