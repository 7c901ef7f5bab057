package license

import (
	"context"
	"errors"
	"time"

	"github.com/licensekit/licensekit-go/internal/text"
	"github.com/licensekit/licensekit-go/transport"
)

// callBudget bounds one renewal call, retries included.
const callBudget = 60 * time.Second

// highWaterEvery is how often the wall-time high-water mark is saved when
// nothing else changes.
const highWaterEvery = 10 * time.Minute

// offlineSaveEvery is how often the offline budget used is saved while the
// server does not answer: a restart after a crash charges this much, so
// that a crash, a clock set back and a restart gain nothing.
const offlineSaveEvery = time.Minute

// run is the renewal goroutine. Its context is closeCtx, which Close cancels.
// Each pass updates the state from the deadlines, renews when due, and
// sleeps (wakeLocked) without holding the client's lock.
func (c *Client) run(ctx context.Context) {
	defer close(c.loopDone)
	// Shared mode (shared.go): a follower waits here until it becomes the
	// renewer.
	if c.sharedOn() && !c.store.leading() && !c.followLoop(ctx) {
		return
	}
	timer := time.NewTimer(maxSleep)
	defer timer.Stop()

	if c.lock(ctx) != nil {
		return
	}
	c.running = true
	c.scheduleLocked(time.Now())
	c.unlock()
	lastMono, lastWall := time.Now(), c.wallNow()
	for {
		now, wall := time.Now(), c.wallNow()
		// A wall clock that ran well ahead of the monotonic clock since the
		// last wake means the machine slept: renew at once.
		resumed := wall.Sub(lastWall)-now.Sub(lastMono) > 2*maxSleep
		lastMono, lastWall = now, wall

		if c.lock(ctx) != nil {
			return
		}
		if resumed {
			c.log.Info("resume from suspend detected; renewing now")
			c.emit(Event{Type: EventResumeDetected})
			c.nextTry = now
		}
		c.observeLocked(now, wall)
		if c.state == Refused {
			c.unlock()
			return
		}
		if !now.Before(c.nextTry) {
			if stop := c.renewLocked(ctx); stop {
				c.unlock()
				return
			}
			now = time.Now()
			c.observeLocked(now, c.wallNow())
		}
		wait := c.wakeLocked(now)
		c.unlock()

		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// observeLocked moves the state along the deadlines, watches for a clock
// rollback and keeps the high-water mark.
func (c *Client) observeLocked(mono, wall time.Time) {
	if c.clockRolledBack(wall) && !c.rolledBack {
		c.rolledBack = true
		c.log.Warn("wall clock set back; offline grace refused until the server answers",
			"high_water", c.st.HighWater, "now", wall)
		c.publishLocked()
	}
	if !c.rolledBack && wall.After(c.st.HighWater) {
		c.st.HighWater = wall
		if wall.Sub(c.store.savedHW) >= highWaterEvery {
			c.saveLocked(context.Background())
		}
	}
	if c.offlineSaveDue(mono, wall) <= 0 {
		c.saveLocked(context.Background())
	}
	if c.st.Sent.IsZero() || !(c.state == Active || c.state == Grace || c.state == Expired) {
		return
	}
	st, reason := c.snap.Load().at(mono, wall)
	if st != c.state {
		if st == Grace && c.lastErr != nil {
			reason = c.lastErr
		}
		c.enterLocked(st, reason)
		c.saveLocked(context.Background())
	}
}

// renewLocked makes one renewal attempt: extend the session, or, when that
// is refused or there is no session, begin a new one. It reports whether
// the loop must stop (refused, or the context ended).
func (c *Client) renewLocked(ctx context.Context) (stop bool) {
	// One call is bounded by callBudget, but never past the next deadline,
	// so that a hung request cannot delay a state change.
	budget := callBudget
	if !c.st.Sent.IsZero() {
		budget = untilDeadline(c.elapsed(time.Now(), c.wallNow()), c.session(), c.grace(), callBudget)
	}
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	c.setRenewing(true)
	var err error
	if c.st.Token != "" && !c.orphan {
		err = c.extendLocked(cctx)
		if refused(err) {
			// The server no longer knows the session: end it, best effort,
			// so that it cannot hold a seat, then try one fresh begin.
			c.log.Info("extend refused; beginning a new session", "error", err)
			if eerr := c.endLocked(cctx); eerr != nil {
				c.st.Token = ""
			}
			err = c.beginLocked(cctx)
		}
	} else {
		err = c.connectLocked(cctx, false) // ends an orphan first
	}
	c.setRenewing(false)
	if ctx.Err() != nil {
		// Close began: the outcome is Close's to report, and an event now
		// ("renewed, next renewal at ...") would describe a future that
		// will not happen.
		return true
	}
	now := time.Now()
	if err != nil {
		// A deadline the call ran into changes the state before the call's
		// own events, so that they carry the new state.
		c.observeLocked(now, c.wallNow())
	}

	switch {
	case err == nil:
		c.enterLocked(Active, nil)
		c.scheduleLocked(now)
		c.emit(Event{Type: EventRenewed, SessionExpiry: c.st.Sent.Add(c.session()),
			SessionDuration: c.session(), GracePeriod: c.grace(), NextTry: c.wallAt(c.nextTry)})
		return false
	case refused(err):
		c.lastErr = err
		c.refusedLocked(err)
		c.enterLocked(Refused, err)
		c.log.Warn("licence refused by the server", "state", Refused, "error", err)
		return true
	}
	c.noteFailureLocked(err)
	if c.failures == 1 {
		c.saveLocked(context.Background()) // the run is now offline: say so, with its budget
	}
	c.scheduleLocked(now)
	c.publishLocked()
	left := c.graceLeft()
	c.log.Warn("licence renewal failed", "state", c.state, "attempt", c.failures,
		"retry_in", c.nextTry.Sub(now).Round(time.Millisecond).String(), "grace_left", left.Round(time.Second).String(),
		"error", err)
	c.emit(Event{Type: EventRenewFailed, Reason: err, Attempt: c.failures, NextTry: c.wallAt(c.nextTry),
		GraceLeft: left})
	return false
}

// refusedLocked records the refusal of a begin_session: a final one through
// persistRefusalLocked, the one place that saves a refusal; a capacity
// refusal saves nothing, so the next start asks the server again. Either
// way a shared session's renewer stops renewing.
func (c *Client) refusedLocked(err error) {
	var api *APIError
	if !errors.As(err, &api) || api.Kind.Final() { // without an *APIError: final
		c.persistRefusalLocked(err)
		return
	}
	c.log.Info("capacity refusal; not saved, the next start asks the server again", "error", err)
	c.resignSharedLocked()
}

// refusalRecord is the persisted final refusal: while it is set, the state
// grants no offline time. Only an authenticated success clears it.
type refusalRecord struct {
	At time.Time `json:"at"` // wall time
	// Endpoint and Message are the refusal's; Message is already redacted,
	// text.Clean only bounds it to one printable line.
	Endpoint string `json:"endpoint,omitempty"`
	Message  string `json:"message,omitempty"`
}

// persistRefusalLocked records a final refusal (of a begin): the offline
// allowance is zeroed and saved at once, so that neither Close nor a crash
// nor an offline restart brings it back.
func (c *Client) persistRefusalLocked(err error) {
	rec := &refusalRecord{At: c.wallNow()}
	var api *APIError
	if errors.As(err, &api) {
		rec.Endpoint, rec.Message = api.Endpoint, text.Clean(api.Message, 200)
	}
	c.st.Refusal = rec
	c.st.Token = ""
	c.st.Sent = time.Time{} // no deadline left to run offline on
	c.anchor = time.Time{}
	c.saveLocked(context.Background())
	c.resignSharedLocked() // shared mode: the verdict is saved; let another process ask
}

// persistedRefusal explains why a persisted refusal grants no offline time.
func (c *Client) persistedRefusal() error {
	r := c.st.Refusal
	if r == nil {
		return nil
	}
	msg := "the server refused this licence at " + r.At.UTC().Format(time.RFC3339)
	if r.Message != "" {
		msg += " (" + r.Message + ")"
	}
	return &stateError{kind: ErrRefused, msg: msg + "; no offline use until the server answers again"}
}

// scheduleLocked sets nextTry from the pure schedule.
func (c *Client) scheduleLocked(now time.Time) {
	p := plan{
		elapsed:     c.elapsed(now, c.wallNow()),
		session:     c.session(),
		grace:       c.grace(),
		failures:    c.failures,
		retryAfter:  c.retryAfter,
		base:        c.opts.retry.RenewBackoff,
		maxInterval: c.opts.retry.MaxRenewInterval,
		u:           c.opts.rnd(),
	}
	if c.st.Sent.IsZero() {
		// No session at all yet: retry on the failure schedule.
		p.elapsed = p.session + p.grace
	}
	c.nextTry = now.Add(nextAttempt(p))
}

// noteFailureLocked counts a failed attempt and keeps its Retry-After.
func (c *Client) noteFailureLocked(err error) {
	c.failures++
	c.lastErr = err
	c.retryAfter = 0
	var te *transport.Error
	if errors.As(err, &te) {
		c.retryAfter = te.RetryAfter
	}
}

// wakeLocked returns how long the loop sleeps (sleepFor).
func (c *Client) wakeLocked(now time.Time) time.Duration {
	wall := c.wallNow()
	elapsed := time.Duration(-1) // no session: no deadline
	if !c.st.Sent.IsZero() {
		elapsed = c.elapsed(now, wall)
	}
	return sleepFor(c.nextTry.Sub(now), c.offlineSaveDue(now, wall), elapsed, c.session(), c.grace())
}

// offlineSaveDue is how long until the offline budget must be saved again;
// maxSleep when the client is not offline.
func (c *Client) offlineSaveDue(mono, wall time.Time) time.Duration {
	if c.failures == 0 || c.st.Sent.IsZero() || c.state == Ended {
		return maxSleep
	}
	return offlineSaveEvery - (c.elapsed(mono, wall) - c.st.Used)
}

// wallAt converts a monotonic-clock instant to the wall clock for events.
func (c *Client) wallAt(t time.Time) time.Time {
	return c.wallNow().Add(time.Until(t))
}
