package envelope

import (
	"bytes"
	"container/heap"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/licensekit/licensekit-go/internal/indexheap"
)

// Default Guard settings.
const (
	// DefaultWindow is how far a request's timestamp may be behind the
	// server's clock (the past side of the window, which carries the clock
	// tolerance and the time a client may spend resending one request).
	DefaultWindow = 5 * time.Minute
	// DefaultFuture is how far a request's timestamp may be ahead of the
	// server's clock. It is short: a client whose clock runs ahead is
	// corrected by the stale_timestamp rejection, and a short future side
	// bounds how long any entry must be remembered.
	DefaultFuture = 30 * time.Second
	// DefaultGuardEntries bounds the request ids a Guard remembers in all.
	DefaultGuardEntries = 1 << 16
	// DefaultPartitionEntries bounds the request ids a Guard remembers for
	// one partition (one licence, one session).
	DefaultPartitionEntries = 256
)

// GuardConfig configures a Guard. The zero value gives the defaults.
type GuardConfig struct {
	// Window is how far a request's timestamp may be behind the server's
	// clock (DefaultWindow if <= 0). Whole seconds; a fraction is dropped.
	Window time.Duration
	// Future is how far a request's timestamp may be ahead of the server's
	// clock (DefaultFuture if <= 0, and never more than Window). Whole
	// seconds; a fraction is dropped.
	Future time.Duration
	// MaxEntries bounds the ids remembered in all (DefaultGuardEntries if
	// <= 0).
	MaxEntries int
	// PartitionEntries bounds the ids remembered for one partition
	// (DefaultPartitionEntries if <= 0, and never more than MaxEntries).
	PartitionEntries int
}

// Scope is what the server established about an opened request before it
// asks the Guard to admit it.
type Scope struct {
	// Partition names the principal the request proved it holds, in the
	// server's own terms: a licence that exists for the product
	// (register_instance, begin_session) or a live session
	// (extend_session, end_session). An outsider holding only a copy of
	// the product proves nothing and leaves Partition empty: such a request
	// is still checked against the window and the remembered ids, but is
	// never remembered itself, so no volume of it can take room from
	// anyone. The server must then process it without changing any state
	// (it refuses: unknown licence, unknown session).
	Partition string
}

// Guard is the server side's freshness and replay check, applied after Open
// (format 2.1 server rules, FORMAT.md "Server-side checks").
//
// It rejects timestamps outside a window around the server's clock (by
// default 5 minutes behind, 30 seconds ahead) and remembers the request ids
// it admitted, so that a repeated request is answered with the stored reply
// of the first and never processed twice: a client's resend after a lost
// reply stays idempotent, and a captured request replayed inside the window
// changes nothing.
//
// Only requests that proved a principal (Scope.Partition) are remembered,
// each partition holds at most PartitionEntries ids, and all partitions
// together at most MaxEntries. Room is made by forgetting, never by
// rejecting: a full partition forgets its own oldest answered id (its oldest
// id when none is answered yet), and a full Guard forgets the same way in its
// largest partition. Whether a request is admitted depends only on its own
// timestamp, the server's clock and its own id, so no volume of requests from
// others can make a fresh request stale or rejected. The cost is a bounded
// replay risk: a forgotten id, replayed inside its window, is processed again.
//
// A Guard is safe for concurrent use; one Guard serves every endpoint of a
// server.
type Guard struct {
	past, future int64 // seconds
	max, perPart int

	mu      sync.Mutex
	seq     uint64 // admissions so far
	entries map[[RequestIDSize]byte]*guardEntry
	byTime  indexheap.Heap[*guardEntry] // every entry, oldest timestamp first
	parts   map[string]*partition
	bySize  indexheap.Heap[*partition] // every partition, largest first, then oldest first
}

type guardEntry struct {
	id     [RequestIDSize]byte
	ts     int64 // timestamp, seconds since the epoch
	digest [sha256.Size]byte
	done   bool
	reply  Reply
	seq    uint64     // admission order, across partitions
	tidx   int        // in byTime; -1 once removed
	part   *partition // owner
	prev   *guardEntry
	next   *guardEntry // admission order within part
}

// partition is the ids remembered for one principal, in admission order.
type partition struct {
	name   string
	n      int
	oldest *guardEntry
	newest *guardEntry
	sidx   int // in bySize
}

// Reply is a stored answer to a request: the HTTP status, and the body
// exactly as first sent.
type Reply struct {
	Status int
	Body   []byte
}

// NewGuard returns a Guard with the given configuration; see GuardConfig
// for the defaults.
func NewGuard(cfg GuardConfig) *Guard {
	window := positiveOr(cfg.Window, DefaultWindow)
	maxEntries := positiveOr(cfg.MaxEntries, DefaultGuardEntries)
	return &Guard{
		past:    int64(window / time.Second),
		future:  int64(min(positiveOr(cfg.Future, DefaultFuture), window) / time.Second),
		max:     maxEntries,
		perPart: min(positiveOr(cfg.PartitionEntries, DefaultPartitionEntries), maxEntries),
		entries: make(map[[RequestIDSize]byte]*guardEntry),
		parts:   make(map[string]*partition),
		byTime: indexheap.Heap[*guardEntry]{
			Before: func(a, b *guardEntry) bool { return a.ts < b.ts },
			Index:  func(e *guardEntry) *int { return &e.tidx },
		},
		bySize: indexheap.Heap[*partition]{
			Before: func(a, b *partition) bool {
				if a.n != b.n {
					return a.n > b.n
				}
				return a.n > 0 && a.oldest.seq < b.oldest.seq
			},
			Index: func(p *partition) *int { return &p.sidx },
		},
	}
}

func positiveOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Window returns how far a request's timestamp may be behind the server's
// clock.
func (g *Guard) Window() time.Duration { return time.Duration(g.past) * time.Second }

// Future returns how far a request's timestamp may be ahead of the server's
// clock.
func (g *Guard) Future() time.Duration { return time.Duration(g.future) * time.Second }

// Ticket is the admission of one new request. The server processes the
// request and then calls Done with its reply, or Forget if it processed
// nothing.
type Ticket struct {
	g *Guard
	e *guardEntry // nil for a request that is not remembered
}

// Remembered reports whether the Guard remembers the admitted request id (it
// proved a partition), so that a repeat is answered from the cache.
func (t *Ticket) Remembered() bool { return t != nil && t.e != nil }

// Admit checks an opened request, whose data string (the JSON-decoded value
// of the body's "data" member) was data, at the server's time now. The
// checks run in this order: the window, then the remembered ids. It returns
// exactly one of:
//
//   - a Ticket: a new request; process it, then call Ticket.Done;
//   - a *Reply: a repeat of a request already answered; send the stored
//     reply unchanged and do not process the request again;
//   - an error matching ErrStale (timestamp outside the window), ErrReplayed
//     (the request id was already used by a different request) or
//     ErrInProgress (the first copy is still being processed; the client
//     may retry shortly).
//
// A repeat is recognised whatever scope it comes with, so a resend whose
// session token has since rotated or ended still gets its stored reply.
func (g *Guard) Admit(o *Opened, data string, now time.Time, scope Scope) (*Ticket, *Reply, error) {
	const op = "admit"
	digest := sha256.Sum256([]byte(data))
	ts, nowS := o.Time.Unix(), now.Unix()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pruneLocked(nowS)
	if ts < nowS-g.past || ts > nowS+g.future {
		return nil, nil, newError(op, "timestamp outside the accepted window", ErrStale)
	}
	if e, ok := g.entries[o.ID]; ok {
		switch {
		case e.digest != digest:
			return nil, nil, newError(op, "request id reused by another request", ErrReplayed)
		case !e.done:
			return nil, nil, newError(op, "first copy of the request still in progress", ErrInProgress)
		}
		return nil, &Reply{Status: e.reply.Status, Body: bytes.Clone(e.reply.Body)}, nil
	}
	if scope.Partition == "" {
		return &Ticket{g: g}, nil, nil
	}
	if p := g.parts[scope.Partition]; p != nil && p.n >= g.perPart {
		g.removeLocked(p.victim())
	}
	if len(g.entries) >= g.max {
		g.removeLocked(g.bySize.Items[0].victim())
	}
	p := g.parts[scope.Partition]
	if p == nil {
		p = &partition{name: scope.Partition}
		g.parts[p.name] = p
		heap.Push(&g.bySize, p)
	}
	g.seq++
	e := &guardEntry{id: o.ID, ts: ts, digest: digest, part: p, seq: g.seq}
	g.entries[o.ID] = e
	heap.Push(&g.byTime, e)
	p.push(e)
	heap.Fix(&g.bySize, p.sidx)
	return &Ticket{g: g, e: e}, nil, nil
}

// Done stores the reply sent for the admitted request, so that repeats get
// it too. The Guard keeps its own copy of body. Done on a nil Ticket, or on
// one whose request is not remembered, does nothing.
func (t *Ticket) Done(status int, body []byte) {
	if !t.Remembered() {
		return
	}
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	t.e.reply = Reply{Status: status, Body: bytes.Clone(body)}
	t.e.done = true
}

// Forget drops the admitted request id, for a server that processed
// nothing (an internal error before any change): a repeat is then processed
// as new. Forget on a nil Ticket, or on one whose request is not
// remembered, does nothing.
func (t *Ticket) Forget() {
	if !t.Remembered() {
		return
	}
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	if t.e.tidx >= 0 && t.g.entries[t.e.id] == t.e {
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
func (g *Guard) pruneLocked(nowS int64) {
	for len(g.byTime.Items) > 0 && g.byTime.Items[0].ts < nowS-g.past {
		g.removeLocked(g.byTime.Items[0])
	}
}

func (g *Guard) removeLocked(e *guardEntry) {
	heap.Remove(&g.byTime, e.tidx)
	delete(g.entries, e.id)
	p := e.part
	p.unlink(e)
	if p.n == 0 {
		heap.Remove(&g.bySize, p.sidx)
		delete(g.parts, p.name)
		return
	}
	heap.Fix(&g.bySize, p.sidx)
}

// victim returns the entry a full partition forgets: its oldest answered
// id, or its oldest id when every one is still being processed.
func (p *partition) victim() *guardEntry {
	for e := p.oldest; e != nil; e = e.next {
		if e.done {
			return e
		}
	}
	return p.oldest
}

func (p *partition) push(e *guardEntry) {
	e.prev = p.newest
	if p.newest != nil {
		p.newest.next = e
	} else {
		p.oldest = e
	}
	p.newest = e
	p.n++
}

func (p *partition) unlink(e *guardEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		p.oldest = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		p.newest = e.prev
	}
	e.prev, e.next = nil, nil
	p.n--
}
