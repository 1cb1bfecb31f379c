package relaymail_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keybuzz/keybuzz-amazon/shared/relaymail"
)

// FuzzParse feeds arbitrary bytes (seeded with the corpus) through Parse and
// Understand: they never panic, fail only with their named errors, and what
// they return is valid UTF-8 within the input's size.
func FuzzParse(f *testing.F) {
	for file := range corpus(f) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := relaymail.Parse(raw, relaymail.Limits{MaxBytes: 1 << 20})
		if err != nil {
			if !errors.Is(err, relaymail.ErrMalformed) && !errors.Is(err, relaymail.ErrTooLarge) {
				t.Fatalf("Parse failed with an unnamed error: %v", err)
			}
			return
		}
		for _, s := range []string{m.Subject, m.Text, m.From.Name, m.From.Address} {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 out of Parse: %q", s)
			}
		}
		r, err := relaymail.Understand(m)
		if err != nil {
			if !errors.Is(err, relaymail.ErrNotAmazon) {
				t.Fatalf("Understand failed with an unnamed error: %v", err)
			}
			return
		}
		if !utf8.ValidString(r.Words) || !utf8.ValidString(r.BuyerName) {
			t.Fatalf("invalid UTF-8 out of Understand: %q %q", r.Words, r.BuyerName)
		}
		if r.OrderID != "" && !strings.Contains(m.Subject+m.Text, r.OrderID) {
			t.Fatalf("order id %q is not in the mail", r.OrderID)
		}
	})
}
