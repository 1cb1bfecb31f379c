// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines: one
// JSON object per line on the function's log stream, from which CloudWatch
// extracts metrics in namespace KeyBuzz/AmazonConnector without any API call.
package metrics

import (
	"encoding/json"
	"io"
	"sort"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every metric.
const Namespace = "KeyBuzz/AmazonConnector"

// Metric names.
const (
	Polls            = "polls"
	Pages            = "pages"
	EventsIngested   = "eventsIngested"
	TicketsCreated   = "ticketsCreated"
	Throttled429     = "throttled429"
	Errors           = "errors"
	CursorLagSeconds = "cursorLagSeconds"
	Claimed          = "claimed"
	Enqueued         = "enqueued"
	EnqueueFailed    = "enqueueFailed"
	// RenewalDue counts CONNECTED connections whose authorization ends
	// within 30 days; AuthorizationsExpired those a fan-out just ended.
	RenewalDue            = "connectionsRenewalDue"
	AuthorizationsExpired = "authorizationsExpired"
	// Open Amazon tickets by the age of their oldest unanswered buyer
	// message: Amazon's 24-hour response clock (late: 24 hours or more).
	UnansweredUnder12h = "unansweredUnder12h"
	Unanswered12To20h  = "unanswered12To20h"
	Unanswered20To24h  = "unanswered20To24h"
	UnansweredLate     = "unansweredLate"
)

// Writer emits EMF lines to w (os.Stdout in Lambda); safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// Option configures a Writer.
type Option func(*Writer)

// WithClock sets the clock of the lines' timestamps (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(m *Writer) {
		if now != nil {
			m.now = now
		}
	}
}

// New returns a Writer to w.
func New(w io.Writer, opts ...Option) *Writer {
	m := &Writer{w: w, now: time.Now}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Emit writes one line: values become metrics under the single dimension
// set {Function}; properties (tenant_id, request_id, …) are searchable
// fields that are not dimensions, so tenants do not multiply metric series.
func (m *Writer) Emit(function string, values map[string]float64, properties map[string]string) {
	if m == nil || m.w == nil {
		return
	}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	type def struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	defs := make([]def, len(names))
	for i, n := range names {
		unit := "Count"
		if n == CursorLagSeconds {
			unit = "Seconds"
		}
		defs[i] = def{n, unit}
	}
	line := map[string]any{
		"_aws": map[string]any{
			"Timestamp": m.now().UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  Namespace,
				"Dimensions": [][]string{{"Function"}},
				"Metrics":    defs,
			}},
		},
		"Function": function,
	}
	for k, v := range properties {
		line[k] = v
	}
	for k, v := range values {
		line[k] = v
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	b = append(b, '\n')
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _ = m.w.Write(b)
}
