package license

import (
	"time"

	"github.com/licensekit/licensekit-go/internal/backoff"
	"github.com/licensekit/licensekit-go/license/internal/diag"
)

// Schedule constants. See doc.go, "Renewal and grace".
const (
	// A renewal falls at a uniform random point in [50 %, 70 %) of the
	// session after the send time.
	renewFrom = 0.50
	renewSpan = 0.20
	// minSleep is the shortest wait between attempts: never a busy loop.
	minSleep = 100 * time.Millisecond
	// maxSleep bounds every wait, so that the loop notices a suspend, a
	// deadline or a clock change within a minute.
	maxSleep = 60 * time.Second
	// The retry caps (capFor).
	graceCap   = 60 * time.Second
	expiredCap = 5 * time.Minute
	// rollbackSlack is how far the wall clock may fall behind the latest
	// time seen before it counts as rolled back.
	rollbackSlack = diag.RollbackSlack
	// deadlineMargin is how far ahead of a deadline the last attempt before
	// it is placed: room for one attempt, which is cut at the deadline.
	deadlineMargin = time.Second
)

// marginFor is the deadline margin of a phase: a quarter of a short one.
func marginFor(phase time.Duration) time.Duration { return min(deadlineMargin, phase/4) }

// plan is the input of nextAttempt: everything the schedule depends on.
type plan struct {
	elapsed        time.Duration // since the last successful send
	session, grace time.Duration
	failures       int           // consecutive failed renewals
	retryAfter     time.Duration // the last failure's Retry-After
	base           time.Duration // the first retry wait; it doubles per failure
	maxInterval    time.Duration // caps the wait between successful renewals (0 = none)
	u              float64       // uniform in [0, 1)
}

// nextAttempt returns how long to wait before the next renewal attempt, a
// pure function of p, always at least minSleep; doc.go ("Renewal and
// grace") states the schedule. An attempt that would land on or after a
// deadline ahead is moved a margin before it; when there is no room left
// (the last attempt before it has just failed), it falls after the
// deadline, so the state changes on time first.
func nextAttempt(p plan) time.Duration {
	u := p.u
	if !(u >= 0 && u < 1) {
		u = 0.5 // as backoff.Wait takes it
	}
	var wait time.Duration
	if p.failures == 0 {
		at := time.Duration(float64(p.session) * (renewFrom + renewSpan*u))
		if p.maxInterval > 0 && at > p.maxInterval {
			at = p.maxInterval
		}
		wait = at - p.elapsed
	} else {
		limit := capFor(p)
		base := positiveOr(p.base, 2*time.Second)
		wait = backoff.Wait(min(base, limit), limit, p.failures-1, u)
		wait = max(wait, min(p.retryAfter, limit))
	}
	// Keep the deadlines: the last attempt before each falls a margin
	// ahead of it, when there is room.
	for _, d := range [...]struct{ at, margin time.Duration }{
		{p.session, marginFor(p.session)},
		{p.session + p.grace, marginFor(p.grace)},
	} {
		if d.margin <= 0 {
			continue // no grace: expiry is the lapse
		}
		last := d.at - d.margin - p.elapsed
		if d.at-p.elapsed > 0 && wait > last && last >= minSleep {
			wait = last
		}
	}
	return max(wait, minSleep)
}

// untilDeadline is the time from elapsed to the next deadline ahead (the
// lapse, then grace expiry), or limit if that comes first or none lies
// ahead: the one clamp of renewal calls and of the loop's sleep.
func untilDeadline(elapsed, session, grace, limit time.Duration) time.Duration {
	for _, d := range [...]time.Duration{session, session + grace} {
		if left := d - elapsed; left > 0 && left < limit {
			return left
		}
	}
	return limit
}

// capFor is the retry cap for the phase p.elapsed falls in.
func capFor(p plan) time.Duration {
	switch phaseOf(p.elapsed, p.session, p.grace) {
	case phaseLive:
		return min(graceCap, max(p.session/10, 5*time.Second))
	case phaseGrace:
		return min(graceCap, max(p.grace/10, 5*time.Second))
	}
	return expiredCap
}

// sleepFor is the renewal loop's sleep: until the next attempt or offline
// save, but never past maxSleep or the next deadline (elapsed < 0: no
// session, no deadline), and at least 1 ms. It is shorter than minSleep
// only when it ends at a deadline or a save; attempts stay minSleep apart.
func sleepFor(untilTry, untilSave, elapsed, session, grace time.Duration) time.Duration {
	wait := min(untilTry, untilSave, maxSleep)
	if elapsed >= 0 {
		wait = untilDeadline(elapsed, session, grace, wait)
	}
	return max(wait, time.Millisecond)
}

// phase is where elapsed time falls against a session's deadlines.
type phase int

const (
	phaseLive  phase = iota // before the lapse: the session is live
	phaseGrace              // after the lapse, before grace expiry
	phaseSpent              // grace is spent
)

// phaseOf is the one answer to "is the session live": Status (snapshot.at),
// an offline Start, the retry cap and a shared follower all ask it.
func phaseOf(elapsed, session, grace time.Duration) phase {
	switch {
	case elapsed < session:
		return phaseLive
	case elapsed < session+grace:
		return phaseGrace
	default:
		return phaseSpent
	}
}

// snapshot is what Status reads: the stored status plus what it needs to
// recompute the state from the clock. The anchors and base are the
// client's (sessionState.anchor, persisted.Sent, sessionState.base).
type snapshot struct {
	status                 Status
	anchorMono, anchorWall time.Time
	base                   time.Duration
	session, grace         time.Duration
	timed                  bool // State follows the deadlines (Active, Grace, Expired)
	rolledBack             bool // the wall clock was set back: grace is refused
}

// at computes the state at mono (a time.Now reading) and wall (the wall
// clock), with elapsed time measured as elapsedSince does.
func (s *snapshot) at(mono, wall time.Time) (State, error) {
	st := s.status.State
	if !s.timed {
		return st, s.status.Reason
	}
	ph := phaseOf(elapsedSince(s.anchorMono, s.anchorWall, s.base, mono, wall), s.session, s.grace)
	switch {
	case ph == phaseLive:
		return st, s.status.Reason
	case s.rolledBack:
		return Expired, ErrClockRollback
	case ph == phaseGrace:
		if st == Active {
			return Grace, ErrUnreachable
		}
		return st, s.status.Reason
	default:
		return Expired, ErrGraceExpired
	}
}

// elapsedSince measures the time used since the send at anchorWall as
// max(base + monotonic time since anchorMono, wall time since anchorWall),
// base being the budget used when anchorMono was taken: the wall clock can
// only shorten what is left, so a suspend counts and setting the clock back
// never stretches a deadline.
func elapsedSince(anchorMono, anchorWall time.Time, base time.Duration, mono, wall time.Time) time.Duration {
	e := wall.Round(0).Sub(anchorWall.Round(0))
	m := base
	if !anchorMono.IsZero() {
		m += mono.Sub(anchorMono)
	}
	return max(e, m)
}
