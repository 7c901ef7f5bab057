package fingerprint

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Cached holds the result of Collect for a time-to-live, so hot paths can ask for the fingerprint
// freely: a warm read is one atomic load and one clock read, with no allocation and no lock.
// Concurrent cold callers share one collection. Use NewCached; the zero value is not usable.
// A Cached is safe for concurrent use. The Fingerprint it returns is shared between callers and must
// be treated as read-only.
type Cached struct {
	ttl  time.Duration
	opts *options
	cur  atomic.Pointer[cacheEntry]

	mu       sync.Mutex
	inflight *cacheCall
}

type cacheEntry struct {
	fp      *Fingerprint
	expires time.Time // zero: never
}

func (e *cacheEntry) fresh() bool {
	return e != nil && (e.expires.IsZero() || time.Now().Before(e.expires))
}

type cacheCall struct {
	done chan struct{}
	fp   *Fingerprint
	err  error
}

// NewCached returns a Cached that collects with opts and keeps a result for ttl. ttl <= 0 keeps it
// for the life of the Cached (until Reset). NewCached does no I/O.
func NewCached(ttl time.Duration, opts ...Option) *Cached {
	return &Cached{ttl: ttl, opts: newOptions(opts)}
}

// Collect returns the cached fingerprint while it is fresh, and collects otherwise (see the
// package-level Collect for the error contract). Errors are not cached, and neither is a result
// collected while ctx ended, since its TimedOut components reflect the caller's deadline rather than
// the machine. A caller waiting for another caller's collection stops waiting when its own ctx ends.
func (c *Cached) Collect(ctx context.Context) (*Fingerprint, error) {
	if e := c.cur.Load(); e.fresh() {
		return e.fp, nil
	}
	return c.slow(ctx)
}

func (c *Cached) slow(ctx context.Context) (*Fingerprint, error) {
	c.mu.Lock()
	if e := c.cur.Load(); e.fresh() {
		c.mu.Unlock()
		return e.fp, nil
	}
	if call := c.inflight; call != nil {
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.fp, call.err
		case <-ctx.Done():
			return nil, fmt.Errorf("fingerprint: %w", ctx.Err())
		}
	}
	call := &cacheCall{done: make(chan struct{})}
	c.inflight = call
	c.mu.Unlock()

	fp, callerDone, err := collect(ctx, c.opts)
	call.fp, call.err = fp, err

	c.mu.Lock()
	if err == nil && !callerDone {
		e := &cacheEntry{fp: fp}
		if c.ttl > 0 {
			e.expires = time.Now().Add(c.ttl)
		}
		c.cur.Store(e)
	}
	c.inflight = nil
	c.mu.Unlock()
	close(call.done)
	return fp, err
}

// Reset drops the cached result; the next Collect collects again.
func (c *Cached) Reset() {
	c.cur.Store(nil)
}
