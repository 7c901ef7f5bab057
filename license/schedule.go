package license

import (
	"time"

	"github.com/licensekit/licensekit-go/internal/backoff"
	"github.com/licensekit/licensekit-go/license/internal/diag"
)

// Schedule constants. See doc.go, "Renewal and grace".
const (
	// renewFrom and renewSpan place a renewal at a uniform random point in
	// [50 %, 70 %) of the session after the send time.
	renewFrom = 0.50
	renewSpan = 0.20
	// minSleep is the shortest wait the loop ever takes: never a busy loop.
	minSleep = 100 * time.Millisecond
	// maxSleep bounds every wait, so that the loop notices a suspend, a
	// deadline or a clock change within a minute.
	maxSleep = 60 * time.Second
	// graceCap and expiredCap bound the retry wait in Grace (together with
	// a tenth of the grace period) and Expired.
	graceCap   = 60 * time.Second
	expiredCap = 5 * time.Minute
	// rollbackSlack is how far the wall clock may fall behind the latest
	// time seen before it counts as rolled back.
	rollbackSlack = diag.RollbackSlack
	// deadlineMargin is how far ahead of a deadline (lapse, grace expiry)
	// the last attempt before it is placed: room for one attempt, which is
	// cut at the deadline. A phase shorter than four margins uses a quarter
	// of itself.
	deadlineMargin = time.Second
)

// marginFor is the deadline margin of a phase (the session before the
// lapse, the grace period before expiry).
func marginFor(phase time.Duration) time.Duration { return min(deadlineMargin, phase/4) }

// plan is the input of nextAttempt: everything the schedule depends on.
type plan struct {
	// elapsed is the time since the anchor (the last successful send).
	elapsed time.Duration
	// session and grace are the server's control options.
	session, grace time.Duration
	// failures counts consecutive failed renewals; 0 after a success.
	failures int
	// retryAfter is the server's Retry-After on the last failure, if any.
	retryAfter time.Duration
	// base is the first retry wait; it doubles per failure.
	base time.Duration
	// maxInterval caps the wait between successful renewals (0 = none).
	maxInterval time.Duration
	// u is a uniform random number in [0, 1).
	u float64
}

// nextAttempt returns how long to wait before the next renewal attempt. It
// is a pure function of p. The result is always at least minSleep. While a
// deadline (lapse, then grace expiry) lies ahead, an attempt that would land
// on or after it is moved ahead of it by the deadline margin (one second,
// or a quarter of a short phase), so that a server answering before the
// deadline prevents the state change. When there is no room left for that
// (the last attempt before the deadline has just failed), the wait is left
// as it is and the attempt falls after the deadline: the state changes at
// the deadline first, on time.
//
// After a success the attempt falls at 50–70 % of the session. After a
// failure it waits U[0.5, 1) × min(cap, base × 2^(failures-1)), where cap is
// min(60 s, max(session/10, 5 s)) while the session is live,
// min(60 s, max(grace/10, 5 s)) in grace and 5 min once grace is spent; a
// Retry-After counts up to that cap.
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
		base := p.base
		if base <= 0 {
			base = 2 * time.Second
		}
		wait = backoff.Wait(min(base, limit), limit, p.failures-1, u)
		if ra := min(p.retryAfter, limit); ra > wait {
			wait = ra
		}
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
// session's lapse, then grace expiry), or limit if that comes first or no
// deadline lies ahead. It is the one clamp of every wait and call budget
// that must not run past a state change: renewal calls (callTimeoutLocked)
// and the loop's sleep (wakeLocked).
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
	switch {
	case p.elapsed < p.session:
		return min(graceCap, max(p.session/10, 5*time.Second))
	case p.elapsed < p.session+p.grace:
		return min(graceCap, max(p.grace/10, 5*time.Second))
	default:
		return expiredCap
	}
}

// sleepFor is the renewal loop's sleep: until the next attempt (untilTry)
// or the next offline save (untilSave), but never past maxSleep or the
// next deadline (untilDeadline; elapsed < 0 means no session, so none),
// and at least 1 ms. It may be shorter than minSleep only when it ends at
// a deadline or a save: attempts themselves stay minSleep apart
// (nextAttempt).
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
// an offline Start, Close's end_session and a shared follower all ask it.
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
// recompute the state from the clock.
type snapshot struct {
	status Status
	// anchorMono is the time.Now reading elapsed time is measured from (the
	// send of the last successful begin or extend, or the load of the
	// persisted state) and base the budget used by then; anchorWall is the
	// wall time of the send.
	anchorMono, anchorWall time.Time
	base                   time.Duration
	// session and grace measure from anchor.
	session, grace time.Duration
	// timed is set when State follows the deadlines (Active, Grace,
	// Expired after grace ran out).
	timed bool
	// rolledBack is set when the wall clock was found set back: grace is
	// then refused.
	rolledBack bool
}

// at computes the state at mono (a time.Now reading) and wall (the wall
// clock). Elapsed time is the budget measured on the monotonic clock, or
// the wall clock's elapsed time if that is more: the wall clock can only
// shorten what is left. A suspend counts on every OS (the wall clock
// moves), and setting the clock back never stretches a deadline.
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
// max(base + monotonic time since anchorMono, wall time since anchorWall):
// base is what was used when the monotonic anchor was taken (zero at a
// send, the persisted budget at a load).
func elapsedSince(anchorMono, anchorWall time.Time, base time.Duration, mono, wall time.Time) time.Duration {
	e := wall.Round(0).Sub(anchorWall.Round(0))
	m := base
	if !anchorMono.IsZero() {
		m += mono.Sub(anchorMono)
	}
	return max(e, m)
}
