package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/keybuzz/keybuzz-amazon/shared/auth"
	"github.com/keybuzz/keybuzz-amazon/shared/logging"
	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// maxBody bounds request bodies: none of the routes needs one.
const maxBody = 16 << 10

// validRequestID reports whether a caller's X-Request-Id may be logged as
// ours: 1-128 ASCII letters, digits and ._:- (what ^[A-Za-z0-9._:-]{1,128}$
// matches; a loop, since that regexp's compilation at package init cost the
// API functions' cold starts a third of a millisecond).
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// wrap adds to h: the method check, the request id, a bounded body, panic
// recovery (a 500 that never shows the panic) and an access log line.
// wrapTenant is wrap for the routes a tenant calls with its Bearer JWT:
// the token is verified first (401 otherwise) and the tenant id joins the
// request's log attributes.
func (a *base) wrapTenant(method string, h func(w http.ResponseWriter, r *http.Request, claims auth.Claims)) http.Handler {
	return a.wrap(method, func(w http.ResponseWriter, r *http.Request) {
		claims, err := a.auth.Authenticate(r)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		h(w, r.WithContext(logging.WithTenantID(r.Context(), claims.TenantID)), claims)
	})
}

func (a *base) wrap(method string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := logging.WithRequestID(r.Context(), requestID(r))
		r = r.WithContext(ctx)
		w.Header().Set("X-Request-Id", logging.RequestID(ctx))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				a.log.ErrorContext(ctx, "panic", "panic", fmt.Sprint(p))
				writeError(rec, r, a.log, fmt.Errorf("panic in handler"))
			}
			a.log.InfoContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path,
				"status", rec.status, "duration_ms", time.Since(start).Milliseconds())
		}()
		if r.Method != method {
			rec.Header().Set("Allow", method)
			writeError(rec, r, a.log, fmt.Errorf("method %s: %w", r.Method, errMethod))
			return
		}
		if r.ContentLength > maxBody {
			writeError(rec, r, a.log, fmt.Errorf("body of %d bytes: %w", r.ContentLength, marketplace.ErrBadRequest))
			return
		}
		r.Body = http.MaxBytesReader(rec, r.Body, maxBody)
		h(rec, r)
	})
}

// requestID prefers API Gateway's id, then Lambda's, then a sane
// X-Request-Id, then a random one.
func requestID(r *http.Request) string {
	if gw, ok := core.GetAPIGatewayV2ContextFromContext(r.Context()); ok && gw.RequestID != "" {
		return gw.RequestID
	}
	if lc, ok := lambdacontext.FromContext(r.Context()); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	if id := r.Header.Get("X-Request-Id"); validRequestID(id) {
		return id
	}
	return marketplace.NewID(8)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
