// Package devrand is the one source of random names and tokens for the
// development tools (the local stack, the Amazon sandbox, the test
// environment, the benchmarks): crypto/rand, so two runs on one machine
// never pick the same database, queue or token.
package devrand

import (
	"crypto/rand"
	"encoding/hex"
)

// Hex returns n random bytes as 2n lower-case hex digits. It panics if the
// system's random source fails (crypto/rand does not on supported systems).
func Hex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
