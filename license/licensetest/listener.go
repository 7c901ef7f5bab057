package licensetest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// gate is the net.Listener the http.Server serves. It stays open for the
// life of the server while the real listening socket underneath it is
// closed and rebound on the same address, so that a down server refuses
// connections (ECONNREFUSED) and a server brought back up is reachable at
// the same URL.
type gate struct {
	addr  net.Addr
	reset atomic.Bool // reset every accepted connection (DownReset)

	mu      sync.Mutex    // guards the fields below
	ln      net.Listener  // nil while the socket is closed
	changed chan struct{} // closed and replaced whenever ln or closed changes
	closed  bool
}

func newGate(addr string) (*gate, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil && addr == "127.0.0.1:0" {
		// No IPv4: fall back to IPv6 loopback, as httptest does.
		if ln6, err6 := net.Listen("tcp6", "[::1]:0"); err6 == nil {
			ln, err = ln6, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return &gate{addr: ln.Addr(), ln: ln, changed: make(chan struct{})}, nil
}

// Accept implements net.Listener. While the socket is closed it waits for
// it to be rebound.
func (g *gate) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		g.mu.Lock()
		ln, changed, closed := g.ln, g.changed, g.closed
		g.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if ln == nil {
			<-changed
			continue
		}
		c, err := ln.Accept()
		switch {
		case errors.Is(err, net.ErrClosed):
			// Closed by setOpen or Close, which changed ln first.
		case err != nil:
			// A temporary failure such as EMFILE: back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-changed:
				t.Stop()
			}
		case g.reset.Load():
			backoff = 0
			abort(c)
		default:
			return c, nil
		}
	}
}

// Addr implements net.Listener. It is the same for the life of the gate.
func (g *gate) Addr() net.Addr { return g.addr }

// Close implements net.Listener: it closes the socket. It is idempotent.
func (g *gate) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.swap(nil)
	return nil
}

// swap closes the socket, if open, puts ln in its place and wakes Accept.
// The caller holds mu.
func (g *gate) swap(ln net.Listener) {
	if g.ln != nil {
		g.ln.Close()
	}
	g.ln = ln
	close(g.changed)
	g.changed = make(chan struct{})
}

// setOpen closes (false) or rebinds (true) the listening socket. Rebinding
// retries for about two seconds in case the port is briefly unavailable.
func (g *gate) setOpen(open bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || open == (g.ln != nil) {
		return nil
	}
	if !open {
		g.swap(nil)
		return nil
	}
	var err error
	for range 100 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", g.addr.String()); err == nil {
			g.swap(ln)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("licensetest: rebind %s: %w", g.addr, err)
}

// abort closes c so that the peer sees a reset (RST) rather than an orderly
// end of stream, where the platform allows it.
func abort(c net.Conn) {
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = raw.Close() // no TLS close_notify: the point is an abrupt end
}
