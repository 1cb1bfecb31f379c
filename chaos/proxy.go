package main

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxy is a loopback TCP proxy in front of a service. Paused, it closes
// every connection (new and open): the service is down for its clients. A
// delay makes each new connection's first bytes wait (a slow service).
type proxy struct {
	ln     net.Listener
	target string
	paused atomic.Bool
	delay  atomic.Int64 // nanoseconds before each read of a request is forwarded

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) Close() { p.ln.Close(); p.dropAll() }

// Pause makes the service unreachable until Resume.
func (p *proxy) Pause() { p.paused.Store(true); p.dropAll() }

func (p *proxy) Resume() { p.paused.Store(false) }

// SetDelay slows every request chunk from client to service by d.
func (p *proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.paused.Load() {
			c.Close()
			continue
		}
		go p.handle(c)
	}
}

func (p *proxy) handle(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.track(c, true)
	p.track(s, true)
	defer func() {
		p.track(c, false)
		p.track(s, false)
		c.Close()
		s.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { p.copy(s, c, true); done <- struct{}{} }()
	go func() { io.Copy(c, s); done <- struct{}{} }()
	<-done
}

// copy forwards client bytes, each chunk after the configured delay.
func (p *proxy) copy(dst, src net.Conn, delayed bool) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.delay.Load()); delayed && d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
