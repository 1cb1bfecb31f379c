// Package secret provides a string type for credentials (refresh and access
// tokens, client secrets, authorization codes, OAuth states) that cannot leak
// through logs or fmt: every printing path shows "[redacted]".
package secret

import (
	"fmt"
	"log/slog"
)

// Value is a secret string. Use Reveal only where the secret must leave the
// process (an HTTP request to Amazon, a write to Vault).
type Value string

const redacted = "[redacted]"

// Reveal returns the secret itself.
func (v Value) Reveal() string { return string(v) }

// IsZero reports whether no secret is set.
func (v Value) IsZero() bool { return v == "" }

func (v Value) String() string   { return redacted }
func (v Value) GoString() string { return redacted }

// LogValue keeps slog from printing the value, even with a JSON handler.
func (v Value) LogValue() slog.Value { return slog.StringValue(redacted) }

// Format covers every fmt verb, including %q, %x and %#v.
func (v Value) Format(f fmt.State, _ rune) { fmt.Fprint(f, redacted) }

// MarshalJSON keeps an accidental json.Marshal from leaking the value.
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText covers encoders that use encoding.TextMarshaler.
func (v Value) MarshalText() ([]byte, error) { return []byte(redacted), nil }
