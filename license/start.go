package license

import (
	"context"
	"errors"
	"time"
)

// Start budgets. See WithStartBudget and docs/lifecycle.md.
const (
	// DefaultOfflineStartBudget is StartBudget.Offline's default.
	DefaultOfflineStartBudget = 2 * time.Second
	// DefaultStartTimeout is StartBudget.Online's default.
	DefaultStartTimeout = 15 * time.Second
)

// StartBudget bounds Start. Zero fields keep their defaults. The caller's
// context bounds Start as well; the earlier limit wins.
type StartBudget struct {
	// Offline bounds Start when the persisted state still grants time
	// without the server (a live session or grace); Client.Start says what
	// it does then. Default DefaultOfflineStartBudget (2 s).
	Offline time.Duration
	// Online bounds Start when there is no such allowance, retries and
	// Retry-After waits included: a server that hangs or asks to retry in a
	// day fails Start with ErrUnreachable within Online. Default
	// DefaultStartTimeout (15 s).
	Online time.Duration
}

// WithStartBudget sets how long Start may wait for the server. See
// StartBudget.
func WithStartBudget(b StartBudget) Option { return func(o *options) { o.start = b } }

// startCut is when Start stops waiting for the server within budget b: 2 %
// (at most 25 ms) early, so that settling the state still ends within b.
func startCut(b time.Duration) time.Duration {
	return b - min(b/50, 25*time.Millisecond)
}

// startLocked loads the state and connects within the offline budget (one
// HTTP attempt per call) when the persisted deadlines grant time without
// the server, else within the online budget, both counted from at.
func (c *Client) startLocked(ctx context.Context, at time.Time) (err error) {
	defer func() {
		if err != nil {
			c.resignSharedLocked() // shared mode: a client that does not run does not renew
		}
	}()
	if err := c.loadLocked(ctx); err != nil {
		return err
	}
	if c.sharedOn() { // a live shared session is followed or resumed, never an orphan
		if done, err := c.joinSharedLocked(ctx); done {
			return err
		}
	}
	allowed, why := c.offlineAllowanceLocked()
	budget := c.opts.start.Online
	if allowed {
		budget = c.opts.start.Offline
	}
	sctx, cancel := context.WithDeadline(ctx, at.Add(startCut(budget)))
	defer cancel()
	if allowed {
		c.attemptCap = 1
		err = c.connectLocked(sctx, true)
		c.attemptCap = 0
	} else {
		if c.st.Token != "" && !c.sharedOn() {
			c.emit(Event{Type: EventOrphanEnded, Reason: c.endOrphanLocked(sctx)}) // best effort: begin either way
		}
		err = c.beginLocked(sctx)
	}
	switch {
	case err == nil:
		c.orphan = false
		c.enterLocked(Active, nil)
		c.noteSharedStart(StartBegan)
		c.log.Info("licence session started", "state", Active, "session_expiry", c.st.Sent.Add(c.session()))
		return nil
	case refused(err):
		c.refusedLocked(err)
		c.enterLocked(Refused, err)
		return err
	case allowed && errors.Is(ctx.Err(), context.Canceled):
		return err // the caller gave up, or Close
	case allowed:
		return c.startOfflineLocked(err)
	}
	if why != nil {
		err = errors.Join(err, why)
	}
	if corrupt := c.store.corrupt; corrupt != nil {
		err = errors.Join(err, corrupt)
	}
	c.lastErr = err
	c.publishLocked()
	return err
}

// startOfflineLocked ends a Start that had an offline allowance and did not
// reach the server (unreachable, or out of budget): the client runs on the
// persisted deadlines, and saves at once that this run is offline (see
// persisted.OfflineOpen).
func (c *Client) startOfflineLocked(err error) error {
	c.noteFailureLocked(err)
	c.saveLocked(context.Background())
	st, reason := Active, error(nil)
	if phaseOf(c.elapsed(time.Now(), c.wallNow()), c.session(), c.grace()) != phaseLive {
		st, reason = Grace, err
	}
	c.enterLocked(st, reason)
	c.noteSharedStart(StartOffline)
	c.log.Warn("server unreachable at start; continuing on the persisted deadlines", "state", st,
		"session_expiry", c.st.Sent.Add(c.session()), "grace_deadline", c.st.Sent.Add(c.session()+c.grace()),
		"error", err)
	return nil
}
