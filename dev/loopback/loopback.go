// Package loopback picks addresses for the development tools' services,
// which listen on 127.0.0.1 only.
package loopback

import "net"

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago (the
// kernel picks it; a service started at once on it gets it).
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
