// Package httpstop lets the example servers stop at once. net/http's
// Shutdown closes a connection that has not sent a request yet (a client's
// spare dial, a browser's preconnect, a port scan) only once it is more
// than 5 s old, so one such connection holds every stop that long, or ends
// it in an error when the stop's budget is shorter.
package httpstop

import (
	"net"
	"net/http"
	"sync"
)

// CloseUnused makes s's Shutdown close, as soon as the listeners are
// closed, every connection that has not sent a request. Requests in flight
// still get Shutdown's budget. It keeps a ConnState hook s already has,
// and must be called before s serves.
func CloseUnused(s *http.Server) {
	u := &unused{m: map[net.Conn]bool{}}
	next := s.ConnState
	s.ConnState = func(c net.Conn, st http.ConnState) {
		u.track(c, st)
		if next != nil {
			next(c, st)
		}
	}
	s.RegisterOnShutdown(u.closeAll)
}

type unused struct {
	mu sync.Mutex
	m  map[net.Conn]bool
}

func (u *unused) track(c net.Conn, st http.ConnState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if st == http.StateNew {
		u.m[c] = true
	} else {
		delete(u.m, c)
	}
}

func (u *unused) closeAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for c := range u.m {
		_ = c.Close()
	}
}
