package license

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"time"
)

// SharedSession turns on shared mode with WithSharedSession: every process
// of the same product and licence that uses the same Config.StateDir shares
// one licence session, one seat, on the server. See docs/shared-sessions.md.
//
// One process at a time, chosen by an OS file lock, is the renewer: it
// renews as in normal mode and writes the sealed shared state atomically to
// one file per product and licence in the state directory. The others are
// followers: they never call the server, their Status, Valid and HasFeature
// are the same lock-free reads, refreshed when the file changes, and one of
// them takes over within one check when the renewer exits or dies. Start
// that finds a live shared session returns Active with no network call, as
// a follower or as the renewer that resumes it.
//
// The integrity rules apply to every process: the shared file has its own
// anti-rollback record, a clock set back or a restored shared file grants
// no process a session or grace, and a final refusal brings every follower
// to Refused at its next check and frees the renewer lock, so that the next
// process to start asks the server itself.
//
// The zero value leaves the session to lapse when the last process closes
// and checks the shared state once a second (at most).
type SharedSession struct {
	// EndOnLastClose makes the last process to Close end the session with
	// end_session, freeing the seat at once. The default leaves the session
	// to lapse on its own at the end of the session duration, so that the
	// next run of a command-line tool resumes it without a round trip; the
	// seat then stays taken until the session lapses.
	EndOnLastClose bool
	// RefreshInterval is how often a follower checks the shared state file
	// (one stat) and whether the renewer is still alive (one non-blocking
	// lock attempt). Zero means one second. Whatever is set, the interval is
	// at most a tenth of the session duration and at least 10 ms, so that a
	// hand-over happens well before the renewal is due (at half the session
	// duration at the earliest).
	RefreshInterval time.Duration
}

// WithSharedSession turns on shared mode (see SharedSession). It requires
// Config.StateDir and cannot be combined with WithStateStore. In shared mode
// Register, BeginSession, ExtendSession and EndSession are not available:
// Start and Close manage the shared session.
func WithSharedSession(s SharedSession) Option { return func(o *options) { o.shared = &s } }

// SharedRole is the part a client plays in a shared session.
type SharedRole uint8

// The roles.
const (
	// NotShared: shared mode is off, Start has not run yet, or the shared
	// file is unusable (the client then runs unshared, in memory).
	NotShared SharedRole = iota
	// Renewer: this process holds the renewer lock, talks to the server and
	// writes the shared state.
	Renewer
	// Follower: another process renews; this one reads the shared state.
	Follower
)

var roleNames = [...]string{"NotShared", "Renewer", "Follower"}

// String returns the role's name.
func (r SharedRole) String() string { return nameOr(roleNames[:], int(r), "SharedRole(?)") }

func nameOr(names []string, i int, other string) string {
	if i < len(names) {
		return names[i]
	}
	return other
}

// SharedStart says how Start obtained a usable licence in shared mode.
type SharedStart uint8

// How Start obtained the licence.
const (
	// StartNone: shared mode is off, or Start has not succeeded.
	StartNone SharedStart = iota
	// StartBegan: no live shared session existed; this process began one
	// (a network call).
	StartBegan
	// StartResumed: no other process ran; this one found the live session a
	// previous run left and became its renewer, with no network call.
	StartResumed
	// StartFollowed: another process renews the live shared session; this
	// one follows it, with no network call.
	StartFollowed
	// StartOffline: the server was unreachable and the persisted shared
	// session still granted offline time (Grace).
	StartOffline
)

var startNames = [...]string{"None", "Began", "Resumed", "Followed", "Offline"}

// String returns the name, such as "Resumed".
func (s SharedStart) String() string { return nameOr(startNames[:], int(s), "SharedStart(?)") }

// SharedStatus describes a client's place in a shared session.
type SharedStatus struct {
	// Role is the part the client plays now; a follower becomes the renewer
	// when the renewer leaves.
	Role SharedRole
	// Start is how Start obtained the licence.
	Start SharedStart
	// Path is the shared state file; empty when shared mode is off, before
	// Start, or when the shared file is unusable.
	Path string
}

// Shared reports the client's place in a shared session. It is lock-free.
// Without WithSharedSession it returns the zero SharedStatus.
func (c *Client) Shared() SharedStatus {
	if c.sh == nil {
		return SharedStatus{}
	}
	return SharedStatus{Role: SharedRole(c.sh.role.Load()), Start: SharedStart(c.sh.start.Load()),
		Path: c.sh.path.Load().(string)}
}

// shared is a client's shared-mode state: its options and, atomic for
// Shared, its role, how it started and the shared file's path.
type shared struct {
	cfg   SharedSession
	role  atomic.Uint32
	start atomic.Uint32
	path  atomic.Value // string
}

const (
	sharedMinRefresh = 10 * time.Millisecond // bounds of the follower's check
	sharedMaxRefresh = time.Second
	// Start polls sharedJoinPoll while the renewer begins the first session,
	// and fails after sharedJoinWait.
	sharedJoinPoll = 20 * time.Millisecond
	sharedJoinWait = 30 * time.Second
	// sharedLeadWait bounds the last process's wait for a leaving renewer's
	// lock before it ends the session.
	sharedLeadWait = time.Second
)

var errSharedManual = errors.New("license: Register, BeginSession, ExtendSession and EndSession are not available in shared mode; Start and Close manage the shared session")

// sharedOn reports shared mode with a usable shared file.
func (c *Client) sharedOn() bool { return c.sh != nil && c.store.shared != nil }

// refresh is the follower's check interval for a session of length d.
func (s *shared) refresh(d time.Duration) time.Duration {
	iv := positiveOr(s.cfg.RefreshInterval, sharedMaxRefresh)
	if d > 0 {
		iv = min(iv, d/10)
	}
	return max(iv, sharedMinRefresh)
}

// tryLeadLocked is store.tryLead, published for Shared.
func (c *Client) tryLeadLocked() bool {
	lead := c.store.tryLead()
	c.noteRole(lead)
	return lead
}

// noteRole publishes the client's role for Shared.
func (c *Client) noteRole(lead bool) {
	role := Follower
	if lead {
		role = Renewer
	}
	c.sh.role.Store(uint32(role))
}

// resignSharedLocked gives up the renewer lock (and the record's) when this
// client stops renewing for good, so that another process may ask.
func (c *Client) resignSharedLocked() {
	if !c.sharedOn() || !c.store.leading() {
		return
	}
	c.saveLocked(context.Background()) // its last state and high-water mark, with the record
	if err := c.store.resign(); err != nil {
		c.log.Warn("shared session: could not give up the renewer lock", "error", err)
		return
	}
	c.sh.role.Store(uint32(Follower))
}

// joinSharedLocked is Start in shared mode, after loadLocked. It reports
// done when Start is decided (a live session resumed or followed, a
// follower in grace, or an error); otherwise this client is the renewer
// without a live session, and Start begins one as in normal mode.
func (c *Client) joinSharedLocked(ctx context.Context) (done bool, err error) {
	c.orphan = false // a persisted live session is the shared session
	deadline := time.Now().Add(sharedJoinWait)
	timer := time.NewTimer(sharedJoinPoll)
	defer timer.Stop()
	for {
		lead := c.tryLeadLocked()
		if lead {
			// Read again: a renewer that left just now may have written.
			c.refreshSharedLocked(false)
		}
		if c.state == Refused {
			return true, c.reason // the renewer was refused meanwhile
		}
		wall := c.wallNow()
		refusal := c.persistedRefusal() // the licence's refusal, whichever client saved it
		switch {
		case refusal != nil && lead:
			return false, nil // ask the server: only its word ends a refusal
		case refusal != nil:
			c.enterLocked(Refused, refusal)
			return true, refusal
		case c.sharedLiveLocked(wall) && lead && c.st.Creds != "" && c.st.Creds != credentialsDigest(&c.cfg):
			// Other credentials than the server last answered: ask it, ending
			// the live session first so that a changed key takes no second
			// seat; a wrong key shows as Status.ConfigFault.
			c.orphan = true
			return false, nil
		case c.sharedLiveLocked(wall):
			how, msg := StartFollowed, "following the shared session"
			if lead {
				how, msg = StartResumed, "shared session resumed; this process renews it"
			}
			c.enterLocked(Active, nil)
			c.sh.start.Store(uint32(how))
			c.log.Info(msg, "state", Active, "session_expiry", c.st.Sent.Add(c.session()))
			return true, nil
		case lead:
			return false, nil // Start begins; noteSharedStart records how it went
		case c.st.Token != "":
			// The renewer cannot renew: the renewer's offline rules.
			if ok, why := c.offlineAllowanceLocked(); ok {
				c.enterLocked(Grace, ErrUnreachable)
				c.sh.start.Store(uint32(StartOffline))
				c.log.Warn("following the shared session offline", "state", Grace,
					"grace_deadline", c.st.Sent.Add(c.session()+c.grace()))
				return true, nil
			} else if why != nil {
				return true, &sharedError{msg: "the renewer cannot reach the server", err: why}
			}
		}
		// No session yet: the renewer is beginning one. Wait for it.
		if !time.Now().Before(deadline) {
			return true, &sharedError{msg: "the renewer has had no live session for " + sharedJoinWait.String()}
		}
		select {
		case <-ctx.Done():
			if c.closing.Load() {
				return true, ErrClosed
			}
			return true, localFault("join shared session", ctx.Err())
		case <-timer.C:
			timer.Reset(sharedJoinPoll)
		}
		c.refreshSharedLocked(false)
	}
}

// sharedLiveLocked reports whether the shared state holds a live session
// on a clock that was not set back.
func (c *Client) sharedLiveLocked(wall time.Time) bool {
	return c.st.Token != "" && !c.st.Sent.IsZero() && c.st.SessionSeconds > 0 &&
		!c.clockRolledBack(wall) && !wall.Before(c.st.Sent) &&
		phaseOf(wall.Sub(c.st.Sent), c.session(), c.grace()) == phaseLive
}

func (c *Client) noteSharedStart(s SharedStart) {
	if c.sh != nil {
		c.sh.start.Store(uint32(s))
	}
}

// followLoop is the follower's part of the renewal goroutine: at each
// check it tries the renewer lock, reloads the shared state and moves along
// the deadlines. It returns true once this client is the renewer, false
// when it stops.
func (c *Client) followLoop(ctx context.Context) bool {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	if c.lock(ctx) != nil {
		return false
	}
	c.running = true // a refusal from now on closes Done
	c.unlock()
	for {
		if c.lock(ctx) != nil {
			return false
		}
		lead := c.store.leading() || c.tryLeadLocked()
		c.refreshSharedLocked(lead)
		if c.state == Refused {
			c.unlock()
			return false
		}
		if lead {
			c.log.Info("shared session: this process is now the renewer", "state", c.state)
			c.unlock()
			return true
		}
		now := time.Now()
		c.observeLocked(now, c.wallNow())
		c.nextTry = now.Add(c.sh.refresh(c.session()))
		wait := c.wakeLocked(now)
		c.unlock()

		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		}
	}
}

// refreshSharedLocked reloads the shared state (store.reload). A newer send
// time means the renewer reached the server: back to Active if live.
func (c *Client) refreshSharedLocked(force bool) {
	p := c.store.reload(force, &c.st)
	if p == nil {
		return
	}
	prev := c.st
	c.st = *p
	if c.st.HighWater.Before(prev.HighWater) {
		c.st.HighWater = prev.HighWater
	}
	// Another process's budget, measured on this one's clock from now.
	c.anchor, c.base = time.Now(), p.Used
	if r := c.st.Refusal; r != nil && (prev.Refusal == nil || !r.At.Equal(prev.Refusal.At)) &&
		c.state != Refused && c.state != Ended {
		// The renewer was finally refused: so is this process.
		c.resignSharedLocked()
		c.enterLocked(Refused, c.persistedRefusal())
		c.log.Warn("licence refused by the server (shared session)", "state", Refused, "error", c.reason)
		return
	}
	if c.st.Sent.After(prev.Sent) {
		c.failures, c.retryAfter, c.lastErr, c.rolledBack = 0, 0, nil, false
		if !prev.Sent.IsZero() && (prev.SessionSeconds != c.st.SessionSeconds || prev.GraceSeconds != c.st.GraceSeconds) {
			c.emit(Event{Type: EventControlOptionsChanged, SessionDuration: c.session(), GracePeriod: c.grace()})
		}
		if c.sharedLiveLocked(c.wallNow()) && c.state != Active && c.state != Idle && c.state != Ended {
			c.enterLocked(Active, nil)
			return
		}
	}
	c.publishLocked()
}

// sharedMayEndLocked is asked by Close before it ends the session: always
// yes in normal mode; in shared mode only with EndOnLastClose, no other
// process left, and the renewer lock held (a last follower takes it over).
func (c *Client) sharedMayEndLocked() bool {
	if !c.sharedOn() {
		return true
	}
	if !c.sh.cfg.EndOnLastClose {
		return false
	}
	alone, err := c.store.shared.Alone()
	if err != nil || !alone {
		return false
	}
	if c.store.leading() {
		return true // this client's state is the latest
	}
	// A leaving renewer may hold its lock a moment longer. Nothing sleeps
	// holding the client's lock: a call that takes it meanwhile sees
	// closing (locked).
	deadline := time.Now().Add(sharedLeadWait)
	for !c.tryLeadLocked() {
		if !time.Now().Before(deadline) {
			return false
		}
		c.unlock()
		time.Sleep(sharedMinRefresh)
		_ = c.lock(context.Background())
	}
	c.refreshSharedLocked(true) // the last renewer's final state
	return true
}

// sameState reports whether a and b differ at most by a high-water mark and
// an offline budget that moved less than their save intervals: the renewer
// skips such saves.
func sameState(a, b *persisted) bool {
	if d := b.HighWater.Sub(a.HighWater); d >= highWaterEvery || d < 0 {
		return false
	}
	if d := b.Used - a.Used; d >= offlineSaveEvery || d < 0 {
		return false
	}
	x, y := *a, *b
	x.HighWater, y.HighWater = time.Time{}, time.Time{}
	x.Used, y.Used = 0, 0
	xb, err1 := json.Marshal(&x)
	yb, err2 := json.Marshal(&y)
	return err1 == nil && err2 == nil && bytes.Equal(xb, yb)
}

// sharedError is Start's error when a follower cannot use the shared
// session. It matches ErrUnreachable.
type sharedError struct {
	msg string
	err error
}

func (e *sharedError) Error() string {
	if e.err != nil {
		return "license: shared session: " + e.msg + ": " + strings.TrimPrefix(e.err.Error(), "license: ")
	}
	return "license: shared session: " + e.msg
}
func (e *sharedError) Unwrap() error        { return e.err }
func (e *sharedError) Is(target error) bool { return target == ErrUnreachable }
