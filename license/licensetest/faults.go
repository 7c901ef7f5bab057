package licensetest

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/licensekit/licensekit-go/internal/wire"
)

// DownMode says how a server that is down (SetDown) treats connections. The
// zero value is DownRefuse.
type DownMode int

const (
	// DownRefuse refuses connections: the listening socket is closed, so a
	// client's dial fails with ECONNREFUSED, as when the server process is
	// gone. See Transport for what its RoundTrip returns.
	DownRefuse DownMode = iota
	// DownReset accepts connections and resets them without reading the
	// request or replying, as a crashing server or a broken proxy does. The
	// client sees a connection reset (or EOF), and so does Transport.
	DownReset
	// DownUnavailable accepts connections and answers every request with
	// 503 and the spec's failure body "service unavailable", without
	// processing it, as a load balancer in front of a dead backend does.
	// These requests are recorded (Request.Down is set) and counted.
	DownUnavailable
)

// String returns "refuse", "reset" or "503".
func (m DownMode) String() string {
	return enumName("DownMode", int(m), "refuse", "reset", "503")
}

// FaultKind is a kind of injected fault. The zero value is not a valid kind.
type FaultKind int

const (
	// FaultFail answers with Fault.Status and the spec's failure body
	// {"success":false,"time":...,"error":...} without processing the request.
	// The body is sealed when the reply would have been.
	FaultFail FaultKind = iota + 1
	// FaultTruncate processes the request and sends the first half of the
	// reply body. The HTTP response itself is complete (its Content-Length
	// matches), so the client reads JSON that ends early.
	FaultTruncate
	// FaultGarbage processes the request and replaces the reply body with
	// bytes that are not JSON, keeping the status.
	FaultGarbage
	// FaultDrop processes the request, then resets the connection before any
	// reply byte: the reply is lost although the server acted on the request.
	FaultDrop
	// FaultCutBody processes the request, sends the status line, the headers
	// (with the full Content-Length) and half the body, then closes the
	// connection, so reading the body fails with io.ErrUnexpectedEOF.
	FaultCutBody
	// FaultReplay answers with an earlier sealed reply of the same endpoint
	// (or, if it has none, of any endpoint) instead of processing the
	// request, as an attacker replaying a captured reply would. While the
	// server has sent no sealed reply at all, the fault waits and requests
	// are served normally.
	FaultReplay
	// FaultBadSeal processes the request and corrupts the sealed reply so it
	// no longer authenticates. A reply that was not sealed is replaced by a
	// sealed-looking body {"data":"..."} that does not open.
	FaultBadSeal
)

var faultNames = [...]string{
	FaultFail:     "fail",
	FaultTruncate: "truncate",
	FaultGarbage:  "garbage",
	FaultDrop:     "drop",
	FaultCutBody:  "cut_body",
	FaultReplay:   "replay",
	FaultBadSeal:  "bad_seal",
}

// String returns the fault's name: "fail", "truncate", "garbage", "drop",
// "cut_body", "replay" or "bad_seal".
func (k FaultKind) String() string { return enumName("FaultKind", int(k), faultNames[:]...) }

// Fault is a fault to inject with Server.Inject. It is plain data.
type Fault struct {
	// Endpoint is the endpoint the fault targets (Register, Begin, Extend or
	// End); "" targets all four.
	Endpoint string
	Kind     FaultKind
	// Count is how many matching requests the fault applies to. Zero means
	// one; a negative Count applies it to every matching request until
	// ClearFaults.
	Count int
	// Status is the HTTP status of a FaultFail (default 503).
	Status int
	// Message is the "error" text of a FaultFail (default: the status text
	// in lower case, such as "service unavailable").
	Message string
	// RetryAfter, when positive, sets the Retry-After header of a FaultFail,
	// in whole seconds rounded up. It overrides SetRetryAfter.
	RetryAfter time.Duration
}

// settings are the persistent faults of an endpoint; skew is the server's.
type settings struct {
	latency     time.Duration
	retryAfter  time.Duration
	contentType string
	skew        time.Duration
}

// faultState holds every injected fault. All fields are guarded by mu.
type faultState struct {
	mu         sync.Mutex
	down       bool
	mode       DownMode
	queue      []*Fault // Count is the uses left (-1 = forever)
	endpoints  map[string]settings
	skew       time.Duration
	lastSealed map[string][]byte
	lastAny    []byte
}

// checkEndpoint panics unless ep is "" or a v2 endpoint name: a typo would
// otherwise make a test silently inject nothing.
func checkEndpoint(ep string) {
	if ep != "" && !slices.Contains(wire.Endpoints[:], ep) {
		panic(fmt.Sprintf("licensetest: unknown endpoint %q (want %q, %q, %q, %q or \"\")", ep, Register, Begin, Extend, End))
	}
}

// setFor calls set, under the faults' lock, on the settings of each
// endpoint endpoint names ("" = all four).
func (s *Server) setFor(endpoint string, set func(*settings)) {
	checkEndpoint(endpoint)
	eps := []string{endpoint}
	if endpoint == "" {
		eps = wire.Endpoints[:]
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	for _, ep := range eps {
		st := s.faults.endpoints[ep]
		set(&st)
		s.faults.endpoints[ep] = st
	}
}

func (f *faultState) settingsFor(ep string) settings {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.endpoints[ep]
	st.skew = f.skew
	return st
}

func (f *faultState) isDown() (bool, DownMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down, f.mode
}

// take consumes one use of the first queued fault for ep, if any (else the
// zero Fault). For a FaultReplay it also returns the body to replay; a
// replay fault with nothing to replay is skipped and kept.
func (f *faultState) take(ep string) (Fault, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.queue {
		if p.Endpoint != "" && p.Endpoint != ep {
			continue
		}
		var body []byte
		if p.Kind == FaultReplay {
			body = f.lastSealed[ep]
			if body == nil {
				body = f.lastAny
			}
			if body == nil {
				continue
			}
		}
		if p.Count > 0 {
			p.Count--
			if p.Count == 0 {
				f.queue = slices.Delete(f.queue, i, i+1)
			}
		}
		return *p, body
	}
	return Fault{}, nil
}

// remember keeps a sealed reply body for FaultReplay.
func (f *faultState) remember(ep string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastSealed[ep] = body
	f.lastAny = body
}

// Inject queues a fault. A request takes the first queued fault that targets
// its endpoint; queued faults apply to requests that reached the handler and
// passed the envelope checks, whatever their outcome would have been, not to
// those refused while the server is down or rejected at the envelope level. Inject panics if f.Endpoint is not "" or a v2 endpoint
// name, or if f.Kind is not a FaultKind. It is safe for concurrent use.
func (s *Server) Inject(f Fault) {
	checkEndpoint(f.Endpoint)
	if f.Kind < FaultFail || f.Kind > FaultBadSeal {
		panic(fmt.Sprintf("licensetest: invalid fault kind %d", int(f.Kind)))
	}
	f.Count = cmp.Or(max(f.Count, -1), 1)
	if f.Kind == FaultFail {
		f.Status = cmp.Or(f.Status, http.StatusServiceUnavailable)
		f.Message = cmp.Or(f.Message, strings.ToLower(http.StatusText(f.Status)), "injected failure")
	}
	s.faults.mu.Lock()
	s.faults.queue = append(s.faults.queue, &f)
	s.faults.mu.Unlock()
}

// ClearFaults removes every queued fault and every persistent fault: it
// brings the server up (see SetDown) and clears latency, Retry-After,
// Content-Type overrides and clock skew. Licences, instances and sessions are
// untouched.
func (s *Server) ClearFaults() {
	f := s.faults
	f.mu.Lock()
	f.down = false
	f.queue = nil
	f.endpoints = make(map[string]settings)
	f.skew = 0 // the sealed replies FaultReplay remembers stay
	f.mu.Unlock()
	s.applyDown()
}

// SetRetryAfter sets the Retry-After header that injected failures
// (FaultFail) at endpoint ("" = all four) carry, in whole seconds rounded
// up. Zero removes it.
func (s *Server) SetRetryAfter(endpoint string, d time.Duration) {
	s.setFor(endpoint, func(st *settings) { st.retryAfter = d })
}

// SetLatency delays every request to endpoint ("" = all four) by d before it
// is processed. The wait uses a timer, so it runs on fake time under
// testing/synctest; it ends early, without processing, when the request's
// context is done, and it is cut short by Close. Zero removes the delay.
func (s *Server) SetLatency(endpoint string, d time.Duration) {
	s.setFor(endpoint, func(st *settings) { st.latency = d })
}

// SetContentType makes replies of endpoint ("" = all four) carry the
// Content-Type ct instead of "application/json", but for envelope-level
// rejections and the 503s of DownUnavailable. "" restores the default.
func (s *Server) SetContentType(endpoint, ct string) {
	s.setFor(endpoint, func(st *settings) { st.contentType = ct })
}

// SetClockSkew shifts the times the server reports in its licence replies
// and failures (time and first_registered_at) by d, as if its clock were
// off. The server time of an envelope-level rejection and session expiry
// are not affected. Zero removes the skew.
func (s *Server) SetClockSkew(d time.Duration) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.skew = d
}

// SetDown takes the server down (true) or brings it back up (false); see
// SetDownMode for what down means. While down, requests are not processed,
// and, but for DownUnavailable, not recorded or counted. Taking a started server down also closes its idle
// keep-alive connections and those of Client, so that the next request
// dials afresh. It is safe for concurrent use.
func (s *Server) SetDown(down bool) {
	s.faults.mu.Lock()
	s.faults.down = down
	s.faults.mu.Unlock()
	s.applyDown()
}

// SetDownMode sets how the server is down: DownRefuse (the default),
// DownReset or DownUnavailable. It takes effect at once if the server is
// down.
func (s *Server) SetDownMode(m DownMode) {
	if m != DownRefuse && m != DownReset && m != DownUnavailable {
		panic(fmt.Sprintf("licensetest: invalid down mode %d", int(m)))
	}
	s.faults.mu.Lock()
	s.faults.mode = m
	s.faults.mu.Unlock()
	s.applyDown()
}
