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
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	reset atomic.Bool // reset every accepted connection (DownReset)

	mu       sync.Mutex // guards ln, loopDone, closed
	ln       net.Listener
	loopDone chan struct{}
	closed   bool
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
	g := &gate{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	g.mu.Lock()
	g.start(ln)
	g.mu.Unlock()
	return g, nil
}

// start runs an accept loop on ln. The caller holds mu.
func (g *gate) start(ln net.Listener) {
	g.ln = ln
	g.loopDone = make(chan struct{})
	go g.acceptLoop(ln, g.loopDone)
}

func (g *gate) acceptLoop(ln net.Listener, loopDone chan struct{}) {
	defer close(loopDone)
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A temporary failure such as EMFILE: back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-g.done:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		if g.reset.Load() {
			abort(c)
			continue
		}
		select {
		case g.conns <- c:
		case <-g.done:
			c.Close()
			return
		}
	}
}

func (g *gate) Accept() (net.Conn, error) {
	select {
	case c := <-g.conns:
		return c, nil
	case <-g.done:
		return nil, net.ErrClosed
	}
}

// Addr implements net.Listener. It is the same for the life of the gate.
func (g *gate) Addr() net.Addr { return g.addr }

// Close implements net.Listener: it closes the socket and waits for the
// accept loop to end. It is idempotent.
func (g *gate) Close() error {
	g.once.Do(func() { close(g.done) })
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.stop()
	return nil
}

// stop closes the socket, if open, and waits for its accept loop. The caller
// holds mu.
func (g *gate) stop() {
	if g.ln == nil {
		return
	}
	g.ln.Close()
	<-g.loopDone
	g.ln = nil
}

// setOpen closes (false) or rebinds (true) the listening socket. Rebinding
// retries for about two seconds in case the port is briefly unavailable.
func (g *gate) setOpen(open bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	if !open {
		g.stop()
		return nil
	}
	if g.ln != nil {
		return nil
	}
	var err error
	for range 100 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", g.addr.String()); err == nil {
			g.start(ln)
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
