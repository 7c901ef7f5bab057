package license

import (
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// EventType says what happened.
type EventType uint8

// The event types.
const (
	// EventStateChanged: the state moved from Previous to State.
	EventStateChanged EventType = iota + 1
	// EventRenewed: a renewal (extend, or a fresh begin) succeeded.
	EventRenewed
	// EventRenewFailed: a renewal attempt failed; NextTry says when the
	// next one is due and GraceLeft how much offline allowance remains.
	EventRenewFailed
	// EventControlOptionsChanged: the server changed session_duration or
	// validation_grace_period.
	EventControlOptionsChanged
	// EventOrphanEnded: Start, or the renewal loop before it begins a new
	// session, ended a session left live by a previous run that did not
	// close cleanly (Reason is set if that failed; in the loop the event
	// is sent only once the end succeeded).
	EventOrphanEnded
	// EventResumeDetected: the wall clock jumped ahead of the monotonic
	// clock, as after a suspend; renewal runs at once.
	EventResumeDetected
	// EventStateDiscarded: the persisted state was corrupt and was moved
	// aside, could not be written, or its directory (or shared file) is
	// unusable and the client keeps state in memory only; Detail says which.
	EventStateDiscarded
	// EventDeprecated: a reply from the licence server carried a
	// Deprecation or Sunset header, reported once per client. Detail is a
	// fixed text, never the header's (see Status.Deprecated).
	EventDeprecated
	// EventEnded: Close finished. Reason is the end_session error, if any;
	// Detail says whether a live session was ended ("session ended") or
	// there was none ("no live session to end").
	EventEnded
	// EventConfigFault: the server answered but did not authenticate this
	// client (Reason matches ErrCredentialsRejected; Detail names what to
	// check). It fires at the first such reply, and again only after a
	// reply that opened cleared the fault. See Status.ConfigFault.
	EventConfigFault
)

var eventNames = [...]string{"", "StateChanged", "Renewed", "RenewFailed", "ControlOptionsChanged",
	"OrphanEnded", "ResumeDetected", "StateDiscarded", "Deprecated", "Ended", "ConfigFault"}

// MarshalText renders the event type's name.
func (t EventType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// String returns the event type's name.
func (t EventType) String() string {
	if int(t) < len(eventNames) && t != 0 {
		return eventNames[t]
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// Event is one thing that happened to a client. Fields not relevant to the
// type are zero.
type Event struct {
	Type EventType
	// Time is when it happened (the wall clock).
	Time time.Time
	// State is the state after the event; Previous the state before a
	// StateChanged.
	State, Previous State
	// Reason is the typed reason for a state change or failure; it matches
	// the sentinels (ErrUnreachable, ErrRevoked, ErrGraceExpired, ...).
	Reason error
	// Attempt counts consecutive failed renewals, from 1.
	Attempt int
	// NextTry is when the next renewal attempt is due.
	NextTry time.Time
	// GraceLeft is the offline allowance left at the time of the event.
	GraceLeft time.Duration
	// SessionExpiry is the session's lapse time after a renewal.
	SessionExpiry time.Time
	// SessionDuration and GracePeriod are the control options after a
	// renewal or a change.
	SessionDuration, GracePeriod time.Duration
	// Detail is a short fixed note in the SDK's words (what Close did, what
	// to check after a config fault); never text from the network.
	Detail string
}

const eventQueueSize = 64

// dispatcher delivers events to one handler, serially, from its own
// goroutine (EventHandler), started at the first event.
type dispatcher struct {
	handler EventHandler
	log     *slog.Logger
	mu      sync.Mutex // guards started and closed, and every send on queue
	queue   chan Event
	done    chan struct{}
	started bool
	closed  bool
	dropped atomic.Int64
}

func newDispatcher(h EventHandler, log *slog.Logger) *dispatcher {
	return &dispatcher{handler: h, log: log, queue: make(chan Event, eventQueueSize), done: make(chan struct{})}
}

// emit queues e without blocking, or drops it (EventHandler).
func (d *dispatcher) emit(e Event) {
	if !d.lockOpen() {
		return
	}
	if !d.started {
		d.started = true
		go d.run()
	}
	select {
	case d.queue <- e:
		d.mu.Unlock()
	default:
		d.mu.Unlock()
		if n := d.dropped.Add(1); n&(n-1) == 0 && d.log != nil {
			d.log.Warn("event handler too slow: event dropped", "event", e.Type.String(), "dropped_so_far", n)
		}
	}
}

// lockOpen locks d if it has a handler and is not closed, and says so.
func (d *dispatcher) lockOpen() bool {
	if d == nil || d.handler == nil {
		return false
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return false
	}
	return true
}

func (d *dispatcher) run() {
	defer close(d.done)
	for e := range d.queue {
		d.handler(e)
	}
}

// close delivers what is queued, then stops. After it returns the handler
// is never called again. Idempotent.
func (d *dispatcher) close() {
	if !d.lockOpen() {
		return
	}
	d.closed = true
	close(d.queue)
	started := d.started
	d.mu.Unlock()
	if started {
		<-d.done
	}
}
