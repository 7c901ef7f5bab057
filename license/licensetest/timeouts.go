package licensetest

import (
	"cmp"
	"net/http"
	"time"
)

// Timeouts bound how long a client may take over a request on a listener of
// the mock (the v2 API of Start and StartTLS, and whatever server mounts the
// admin API), so that slow or stalled clients cannot hold connections open.
// It is plain data; a zero field means its default (see DefaultTimeouts).
//
// Write deadlines are per handler: a request the server deliberately delays
// (SetLatency) gets its latency added to both deadlines, and the admin API's
// live stream sets a fresh write deadline before each event, so neither is
// cut short by Write.
type Timeouts struct {
	// ReadHeader bounds reading the request line and headers.
	ReadHeader time.Duration
	// Read bounds reading the whole request, body included.
	Read time.Duration
	// Write bounds writing the reply, counted from the end of the headers.
	Write time.Duration
	// Idle bounds how long a keep-alive connection waits for its next
	// request.
	Idle time.Duration
	// MaxHeaderBytes bounds the size of the request headers.
	MaxHeaderBytes int
}

// DefaultTimeouts returns the timeouts a Server uses unless Config.Timeouts
// says otherwise: 10 s for the headers, 30 s for the whole request, 30 s to
// write the reply, 60 s idle, and 64 KiB of headers.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		ReadHeader:     10 * time.Second,
		Read:           30 * time.Second,
		Write:          30 * time.Second,
		Idle:           60 * time.Second,
		MaxHeaderBytes: 64 << 10,
	}
}

// withDefaults fills in the fields that are zero (or negative).
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	return Timeouts{
		ReadHeader:     cmp.Or(max(t.ReadHeader, 0), d.ReadHeader),
		Read:           cmp.Or(max(t.Read, 0), d.Read),
		Write:          cmp.Or(max(t.Write, 0), d.Write),
		Idle:           cmp.Or(max(t.Idle, 0), d.Idle),
		MaxHeaderBytes: cmp.Or(max(t.MaxHeaderBytes, 0), d.MaxHeaderBytes),
	}
}

// Apply sets srv's ReadHeaderTimeout, ReadTimeout, WriteTimeout,
// IdleTimeout and MaxHeaderBytes from t, defaults filled in. Use it for the
// http.Server that serves an admin.Handler.
func (t Timeouts) Apply(srv *http.Server) {
	t = t.withDefaults()
	srv.ReadHeaderTimeout = t.ReadHeader
	srv.ReadTimeout = t.Read
	srv.WriteTimeout = t.Write
	srv.IdleTimeout = t.Idle
	srv.MaxHeaderBytes = t.MaxHeaderBytes
}

// extendDeadlines adds a request's latency to its deadlines (see Timeouts)
// and returns what to call once its reply is ready, from when the write
// timeout counts again, so that opening and sealing on a busy machine never
// eat into it. Without a real connection it does nothing.
func (s *Server) extendDeadlines(w http.ResponseWriter, r *http.Request) (replyReady func()) {
	ep, _ := endpointOf(r.URL.Path) // another path has no latency
	lat := s.faults.settingsFor(ep).latency
	if lat <= 0 {
		return func() {}
	}
	t := s.cfg.Timeouts.withDefaults()
	now := time.Now()
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(now.Add(t.Read + lat))
	_ = rc.SetWriteDeadline(now.Add(t.Write + lat))
	return func() { _ = rc.SetWriteDeadline(time.Now().Add(t.Write)) }
}
