package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	const raw = "Atzr|very-secret-refresh-token"
	v := Value(raw)
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "token", v, "struct", struct{ T Value }{v})
	js, _ := json.Marshal(map[string]any{"t": v})
	outputs := map[string]string{
		"%s": fmt.Sprintf("%s", v), "%v": fmt.Sprintf("%v", v), "%q": fmt.Sprintf("%q", v),
		"%x": fmt.Sprintf("%x", v), "%#v": fmt.Sprintf("%#v", v), "%+v struct": fmt.Sprintf("%+v", struct{ T Value }{v}),
		"slog": logBuf.String(), "json": string(js), "errorf": fmt.Errorf("wrap %v", v).Error(),
	}
	for name, out := range outputs {
		if strings.Contains(out, "secret") || strings.Contains(out, "Atzr") {
			t.Errorf("%s leaked the secret: %s", name, out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s: want [redacted], got %s", name, out)
		}
	}
	if v.Reveal() != raw {
		t.Fatalf("Reveal = %q", v.Reveal())
	}
}
