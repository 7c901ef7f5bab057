package envelope

import (
	"bytes"
	"container/heap"
	"crypto/sha256"
	"sync"
	"time"
)

// Default Guard settings.
const (
	// DefaultWindow is how far a request's timestamp may be from the
	// server's clock, either way.
	DefaultWindow = 5 * time.Minute
	// DefaultGuardEntries bounds the request ids a Guard remembers.
	DefaultGuardEntries = 1 << 16
)

// Guard is the server side's freshness and replay check, applied after Open:
// it rejects timestamps outside a window around the server's clock and
// remembers the request ids it admitted within that window, so that a
// repeated request is answered with the stored reply of the first and never
// processed twice. Legitimate retries (the same bytes sent again) therefore
// stay idempotent, and a captured request replayed later is either answered
// from the cache (within the window) or rejected as stale (after it).
//
// A Guard remembers at most a bounded number of ids. When full, it forgets the
// entry with the oldest timestamp and from then on rejects every timestamp
// not newer than it as stale, so that forgetting never re-admits a replay.
// A Guard is safe for concurrent use; one Guard serves every endpoint of a
// server.
type Guard struct {
	window time.Duration
	max    int

	mu      sync.Mutex
	entries map[[RequestIDSize]byte]*guardEntry
	byTime  guardHeap
	floor   time.Time // timestamps not after floor are stale
}

type guardEntry struct {
	id     [RequestIDSize]byte
	t      time.Time
	digest [sha256.Size]byte
	done   bool
	reply  Reply
	idx    int // in byTime; -1 once removed
}

// Reply is a stored answer to a request: the HTTP status, and the body
// exactly as first sent.
type Reply struct {
	Status int
	Body   []byte
}

// NewGuard returns a Guard that accepts timestamps within window of the
// server's clock (DefaultWindow if window <= 0) and remembers up to
// maxEntries request ids (DefaultGuardEntries if maxEntries <= 0).
func NewGuard(window time.Duration, maxEntries int) *Guard {
	if window <= 0 {
		window = DefaultWindow
	}
	if maxEntries <= 0 {
		maxEntries = DefaultGuardEntries
	}
	return &Guard{window: window, max: maxEntries, entries: make(map[[RequestIDSize]byte]*guardEntry)}
}

// Window returns the accepted distance between a request's timestamp and the
// server's clock.
func (g *Guard) Window() time.Duration { return g.window }

// Ticket is the admission of one new request. The server processes the
// request and then calls Done with its reply, or Forget if it processed
// nothing.
type Ticket struct {
	g *Guard
	e *guardEntry
}

// Admit checks an opened request, whose data string was data, at the
// server's time now. It returns exactly one of:
//
//   - a Ticket: a new request; process it, then call Ticket.Done;
//   - a *Reply: a repeat of a request already answered; send the stored
//     reply unchanged and do not process the request again;
//   - an error matching ErrStale (timestamp outside the window), ErrReplayed
//     (the request id was already used by a different request) or
//     ErrInProgress (the first copy is still being processed; the client
//     may retry shortly).
func (g *Guard) Admit(o *Opened, data string, now time.Time) (*Ticket, *Reply, error) {
	const op = "admit"
	digest := sha256.Sum256([]byte(data))
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pruneLocked(now)
	if o.Time.Before(now.Add(-g.window)) || o.Time.After(now.Add(g.window)) ||
		(!g.floor.IsZero() && !o.Time.After(g.floor)) {
		return nil, nil, newError(op, "timestamp outside the accepted window", ErrStale)
	}
	if e, ok := g.entries[o.ID]; ok {
		switch {
		case e.digest != digest:
			return nil, nil, newError(op, "request id reused by another request", ErrReplayed)
		case !e.done:
			return nil, nil, newError(op, "first copy of the request still in progress", ErrInProgress)
		}
		r := Reply{Status: e.reply.Status, Body: bytes.Clone(e.reply.Body)}
		return nil, &r, nil
	}
	if len(g.entries) >= g.max {
		oldest := g.byTime[0]
		if !o.Time.After(oldest.t) {
			return nil, nil, newError(op, "timestamp outside the accepted window", ErrStale)
		}
		g.removeLocked(oldest)
		if oldest.t.After(g.floor) {
			g.floor = oldest.t
		}
	}
	e := &guardEntry{id: o.ID, t: o.Time, digest: digest}
	g.entries[o.ID] = e
	heap.Push(&g.byTime, e)
	return &Ticket{g: g, e: e}, nil, nil
}

// Done stores the reply sent for the admitted request, so that repeats get
// it too. The Guard keeps its own copy of body. Done on a nil Ticket does
// nothing.
func (t *Ticket) Done(status int, body []byte) {
	if t == nil {
		return
	}
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	t.e.reply = Reply{Status: status, Body: bytes.Clone(body)}
	t.e.done = true
}

// Forget drops the admitted request id, for a server that processed
// nothing (an internal error before any change): a repeat is then processed
// as new. Forget on a nil Ticket does nothing.
func (t *Ticket) Forget() {
	if t == nil {
		return
	}
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	if t.e.idx >= 0 && t.g.entries[t.e.id] == t.e {
		t.g.removeLocked(t.e)
	}
}

// Len returns how many request ids the Guard remembers.
func (g *Guard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.entries)
}

// pruneLocked forgets ids whose timestamps fell out of the window: a repeat
// of them is stale anyway.
func (g *Guard) pruneLocked(now time.Time) {
	limit := now.Add(-g.window)
	for len(g.byTime) > 0 && g.byTime[0].t.Before(limit) {
		g.removeLocked(g.byTime[0])
	}
}

func (g *Guard) removeLocked(e *guardEntry) {
	heap.Remove(&g.byTime, e.idx)
	delete(g.entries, e.id)
}

// guardHeap orders entries by timestamp, oldest first.
type guardHeap []*guardEntry

func (h guardHeap) Len() int           { return len(h) }
func (h guardHeap) Less(i, j int) bool { return h[i].t.Before(h[j].t) }
func (h guardHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *guardHeap) Push(x any) {
	e := x.(*guardEntry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *guardHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}
