package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"

	"github.com/keybuzz/keybuzz-amazon/dev/sandbox"
)

// front stands between the connector and the sandbox: it injects faults on
// the LWA token endpoint (the sandbox injects SP-API faults itself), plays
// an application-secret rotation, and keeps the sandbox-side record the
// checker compares with: which orders were served to whom, and every answer
// that was not a success (with its seller and time), to which failures and
// dead letters are traced.
type front struct {
	sb      *sandbox.Server
	clock   sandbox.Clock
	secret  string // the sandbox's own client secret
	timeout time.Duration

	mu       sync.Mutex
	lwa      map[string][]lwaFault // seller -> armed token-endpoint faults
	rotated  string                // the client secret required since a rotation ("" = none)
	served   map[string]map[string]servedAt
	troubles map[string][]trouble // seller -> answers that were not a success
}

type lwaFault struct {
	kind  string // 500, 503, slow, drop
	delay time.Duration
}

type servedAt struct{ sandbox, wall time.Time }

// trouble is one answer a seller's call got that was not a success: an
// injected fault, Amazon's rate limit, a slow answer, a dropped connection,
// invalid_client after a rotation.
type trouble struct {
	kind       string
	start, end time.Time // wall time
}

func newFront(sb *sandbox.Server, clock sandbox.Clock, clientSecret string, clientTimeout time.Duration) *front {
	return &front{sb: sb, clock: clock, secret: clientSecret, timeout: clientTimeout,
		lwa: map[string][]lwaFault{}, served: map[string]map[string]servedAt{}, troubles: map[string][]trouble{}}
}

// armLWA makes the seller's next refresh-token grants fail.
func (f *front) armLWA(seller string, lf lwaFault, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range count {
		f.lwa[seller] = append(f.lwa[seller], lf)
	}
}

// rotate makes LWA require newSecret from now on (the old one answers
// invalid_client), as after an application secret rotation.
func (f *front) rotate(newSecret string) {
	f.mu.Lock()
	f.rotated = newSecret
	f.mu.Unlock()
}

func (f *front) note(seller, kind string, start time.Time) {
	if seller == "" {
		seller = "?"
	}
	f.mu.Lock()
	f.troubles[seller] = append(f.troubles[seller], trouble{kind, start, time.Now()})
	f.mu.Unlock()
}

// troubled reports whether seller's calls got a non-success answer between
// from and to (wall time), or any call did when seller is "".
func (f *front) troubled(seller string, from, to time.Time) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range []string{seller, "?"} {
		for _, t := range f.troubles[s] {
			if !t.end.Before(from) && !t.start.After(to) {
				return t.kind, true
			}
		}
	}
	return "", false
}

// servedOrder returns when order was last served to seller in a success.
func (f *front) servedOrder(seller, order string) (servedAt, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.served[seller][order]
	return s, ok
}

var orderIDRe = regexp.MustCompile(`"orderId":"([^"]+)"`)

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method == http.MethodPost && r.URL.Path == "/auth/o2/token" {
		f.token(w, r, start)
		return
	}
	seller, _ := f.sb.SellerOfToken(r.Header.Get("x-amz-access-token"))
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	f.sb.ServeHTTP(rec, r)
	if seller == "" {
		return
	}
	switch {
	case rec.hijacked:
		f.note(seller, "spapi_drop", start)
	case rec.status == http.StatusForbidden:
		// An expired access token: the connector refreshes, nothing fails.
	case rec.status != http.StatusOK:
		f.note(seller, "spapi_"+http.StatusText(rec.status), start)
	case time.Since(start) > f.timeout*9/10:
		f.note(seller, "spapi_slow", start)
	default:
		now := servedAt{f.clock.Now(), time.Now()}
		f.mu.Lock()
		if f.served[seller] == nil {
			f.served[seller] = map[string]servedAt{}
		}
		for _, m := range orderIDRe.FindAllSubmatch(rec.body.Bytes(), -1) {
			f.served[seller][string(m[1])] = now
		}
		f.mu.Unlock()
	}
}

func (f *front) token(w http.ResponseWriter, r *http.Request, start time.Time) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	seller, _ := f.sb.SellerOfToken(form.Get("refresh_token"))
	f.mu.Lock()
	var lf *lwaFault
	if form.Get("grant_type") == "refresh_token" && len(f.lwa[seller]) > 0 {
		lf = &f.lwa[seller][0]
		f.lwa[seller] = f.lwa[seller][1:]
	}
	rotated := f.rotated
	f.mu.Unlock()
	if lf != nil {
		switch lf.kind {
		case "500", "503":
			w.Header().Set("Content-Type", "text/html")
			if lf.kind == "500" {
				w.WriteHeader(http.StatusInternalServerError)
			} else {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			io.WriteString(w, "<html><body>Service Unavailable</body></html>")
			f.note(seller, "lwa_"+lf.kind, start)
			return
		case "drop":
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			f.note(seller, "lwa_drop", start)
			return
		case "slow":
			select {
			case <-time.After(lf.delay):
			case <-r.Context().Done():
			}
			f.note(seller, "lwa_slow", start)
		}
	}
	if rotated != "" {
		if form.Get("client_secret") != rotated {
			w.Header().Set("Content-Type", "application/json;charset=UTF-8")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client","error_description":"Client authentication failed"}`)
			f.note(seller, "lwa_invalid_client", start)
			return
		}
		form.Set("client_secret", f.secret)
		body = []byte(form.Encode())
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	f.sb.ServeHTTP(rec, r)
	if rec.status >= 500 {
		f.note(seller, "lwa_"+http.StatusText(rec.status), start)
	}
}

// recorder keeps an answer's status and body, and whether the connection
// was dropped.
type recorder struct {
	http.ResponseWriter
	status   int
	body     bytes.Buffer
	hijacked bool
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.body.Write(p)
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r.hijacked = true
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

func (r *recorder) Flush() { http.NewResponseController(r.ResponseWriter).Flush() }
