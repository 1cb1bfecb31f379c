package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

var (
	errMethod   = &marketplace.Error{Code: "method_not_allowed", Message: "Method not allowed"}
	errInternal = &marketplace.Error{Code: "internal_error", Message: "Internal error"}
)

// statusOf is the one table from support errors to HTTP status codes.
var statusOf = map[*marketplace.Error]int{
	errMethod:                        http.StatusMethodNotAllowed,
	marketplace.ErrBadRequest:        http.StatusBadRequest,
	marketplace.ErrInvalidState:      http.StatusBadRequest,
	marketplace.ErrUnauthorized:      http.StatusUnauthorized,
	marketplace.ErrNotFound:          http.StatusNotFound,
	marketplace.ErrNotConnected:      http.StatusConflict,
	marketplace.ErrNeedsReauth:       http.StatusConflict,
	marketplace.ErrNoCredentials:     http.StatusNotFound,
	marketplace.ErrCodeRejected:      http.StatusBadRequest,
	marketplace.ErrTokenExchange:     http.StatusBadGateway,
	marketplace.ErrAppMisconfigured:  http.StatusInternalServerError,
	marketplace.ErrUnavailable:       http.StatusServiceUnavailable,
	marketplace.ErrBrowserMismatch:   http.StatusForbidden,
	marketplace.ErrSellerTaken:       http.StatusConflict,
	marketplace.ErrBadReturnURL:      http.StatusBadRequest,
	marketplace.ErrBadCallbackURI:    http.StatusBadRequest,
	marketplace.ErrSellerMismatch:    http.StatusBadRequest,
	marketplace.ErrTicketClosed:      http.StatusConflict,
	marketplace.ErrNotAmazonTicket:   http.StatusConflict,
	marketplace.ErrOAuthNotConnected: http.StatusConflict,
	marketplace.ErrNoBuyerAddress:    http.StatusConflict,
	marketplace.ErrNoSenderAddress:   http.StatusConflict,
	marketplace.ErrIdempotencyReused: http.StatusUnprocessableEntity,
}

// precedence: when an error wraps several support errors (an exchange that
// failed because LWA was unreachable), the first listed here wins.
var precedence = []*marketplace.Error{
	errMethod, marketplace.ErrBrowserMismatch, marketplace.ErrBadReturnURL, marketplace.ErrBadCallbackURI,
	marketplace.ErrSellerTaken, marketplace.ErrSellerMismatch,
	marketplace.ErrBadRequest, marketplace.ErrInvalidState, marketplace.ErrUnauthorized,
	marketplace.ErrCodeRejected, marketplace.ErrTokenExchange, marketplace.ErrUnavailable, marketplace.ErrAppMisconfigured,
	marketplace.ErrNoCredentials, marketplace.ErrNotConnected, marketplace.ErrNeedsReauth, marketplace.ErrNotFound,
	marketplace.ErrIdempotencyReused, marketplace.ErrOAuthNotConnected, marketplace.ErrNotAmazonTicket, marketplace.ErrTicketClosed,
	marketplace.ErrNoBuyerAddress, marketplace.ErrNoSenderAddress,
}

// classify returns the support error and HTTP status for err.
func classify(err error) (*marketplace.Error, int) {
	for _, e := range precedence {
		if errors.Is(err, e) {
			return e, statusOf[e]
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return marketplace.ErrUnavailable, http.StatusServiceUnavailable
	}
	return errInternal, http.StatusInternalServerError
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers {"error":{"code","message"}} with the table's status
// and logs the wrapped chain (which never holds a secret: secrets are
// secret.Value and print [redacted]).
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e, status := classify(err)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	log.Log(r.Context(), level, "request failed", "code", e.Code, "status", status, "error", err.Error())
	var body errorBody
	body.Error.Code, body.Error.Message = e.Code, e.Message
	writeJSON(w, status, body)
}
