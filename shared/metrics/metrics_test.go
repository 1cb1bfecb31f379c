package metrics_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/metrics"
)

func TestEmitWritesEMF(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	m := metrics.New(&buf, metrics.WithClock(func() time.Time { return at }))
	m.Emit("polltenant", map[string]float64{metrics.Polls: 1, metrics.CursorLagSeconds: 42}, map[string]string{"tenant_id": "t-1"})
	var line struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Function         string
		TenantID         string  `json:"tenant_id"`
		Polls            float64 `json:"polls"`
		CursorLagSeconds float64 `json:"cursorLagSeconds"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("not one JSON line: %q %v", buf.String(), err)
	}
	cw := line.AWS.CloudWatchMetrics
	if line.AWS.Timestamp != at.UnixMilli() || len(cw) != 1 || cw[0].Namespace != "KeyBuzz/AmazonConnector" ||
		len(cw[0].Metrics) != 2 || cw[0].Metrics[0].Name != "cursorLagSeconds" || cw[0].Metrics[0].Unit != "Seconds" ||
		line.Function != "polltenant" || line.TenantID != "t-1" || line.Polls != 1 || line.CursorLagSeconds != 42 {
		t.Fatalf("EMF line %s", buf.String())
	}
	var nilWriter *metrics.Writer
	nilWriter.Emit("x", map[string]float64{"a": 1}, nil) // no-op, no panic
}
