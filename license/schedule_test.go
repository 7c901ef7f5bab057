package license

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestNextAttemptProperties checks the schedule's guarantees over a large
// random sample of inputs: always at least minSleep (never a busy loop),
// never past a deadline that is further away than minSleep, renewal at
// 50-70 % of the session after a success, and never a zero wait after an
// error.
func TestNextAttemptProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	durations := []time.Duration{time.Second, 4 * time.Second, 14 * time.Second, time.Minute, 10 * time.Minute,
		time.Hour, 24 * time.Hour}
	for i := 0; i < 200000; i++ {
		p := plan{
			session:    durations[rng.IntN(len(durations))],
			grace:      []time.Duration{0, time.Second, 8 * time.Second, time.Hour}[rng.IntN(4)],
			failures:   rng.IntN(40),
			retryAfter: []time.Duration{0, time.Second, 24 * time.Hour}[rng.IntN(3)],
			base:       []time.Duration{0, 100 * time.Millisecond, 2 * time.Second}[rng.IntN(3)],
			u:          rng.Float64(),
		}
		if rng.IntN(5) == 0 {
			p.maxInterval = time.Duration(rng.Int64N(int64(time.Hour))) + time.Second
		}
		p.elapsed = time.Duration(rng.Int64N(int64(2*(p.session+p.grace)))) - p.session/10
		got := nextAttempt(p)

		if got < minSleep {
			t.Fatalf("nextAttempt(%+v) = %v; want >= %v", p, got, minSleep)
		}
		for _, d := range []struct{ at, margin time.Duration }{
			{p.session, marginFor(p.session)}, {p.session + p.grace, marginFor(p.grace)},
		} {
			left := d.at - p.elapsed
			if left <= 0 || d.margin <= 0 {
				continue
			}
			// Kept, not crossed: with room for one attempt before the
			// deadline, the attempt lands at least the margin ahead of it,
			// never on it or in the margin (where the state would change
			// before the attempt could finish).
			if last := left - d.margin; last >= minSleep && got > last {
				t.Fatalf("nextAttempt(%+v) = %v; within the %v margin of the deadline %v away", p, got, d.margin, left)
			}
			if p.failures > 0 && got == left {
				t.Fatalf("nextAttempt(%+v) = %v; a retry lands exactly on the deadline", p, got)
			}
		}
		// Without room before the next deadline (the last attempt just
		// failed), the retry still backs off: no burst at the deadline.
		if p.failures > 0 {
			if left := p.session - p.elapsed; left > 0 && left-marginFor(p.session) < minSleep && got < minSleep {
				t.Fatalf("nextAttempt(%+v) = %v; a burst before the lapse", p, got)
			}
		}
		if p.failures > 0 {
			limit := capFor(p)
			if got > max(limit, minSleep) {
				t.Fatalf("nextAttempt(%+v) = %v; above the cap %v", p, got, limit)
			}
		}
	}
}

func TestNextAttemptRenewalWindow(t *testing.T) {
	t.Parallel()
	for _, u := range []float64{0, 0.25, 0.5, 0.999} {
		got := nextAttempt(plan{session: time.Hour, grace: time.Hour, u: u})
		assert.GreaterOrEqual(t, got, 30*time.Minute)
		assert.Less(t, got, 42*time.Minute)
	}
	// Counted from the anchor, not from now.
	assert.Equal(t, 20*time.Minute, nextAttempt(plan{session: time.Hour, elapsed: 10 * time.Minute, u: 0}))
	// Short sessions keep the 50-70 % window: at most two calls a session.
	assert.Equal(t, 2*time.Second, nextAttempt(plan{session: 4 * time.Second, u: 0}))
	assert.Equal(t, 2800*time.Millisecond, nextAttempt(plan{session: 4 * time.Second, u: 1 - 1e-12}).Round(time.Millisecond))
	// MaxRenewInterval caps the wait.
	assert.Equal(t, time.Hour, nextAttempt(plan{session: 24 * time.Hour, maxInterval: time.Hour}))
	// Out-of-range randomness cannot break the window.
	assert.Equal(t, 36*time.Minute, nextAttempt(plan{session: time.Hour, u: 7}))
}

func TestNextAttemptBackoff(t *testing.T) {
	t.Parallel()
	p := plan{session: time.Hour, grace: time.Hour, base: 2 * time.Second, u: 0.999999}
	var prev time.Duration
	for f := 1; f <= 10; f++ {
		p.failures = f
		got := nextAttempt(p)
		assert.GreaterOrEqual(t, got, prev, "backoff grows with failures")
		prev = got
	}
	// While live the cap is min(60 s, max(D/10, 5 s)): 60 s for D = 1 h.
	assert.InDelta(t, float64(graceCap), float64(prev), float64(time.Millisecond))
	p.session, p.failures = 20*time.Second, 10
	assert.InDelta(t, float64(5*time.Second), float64(nextAttempt(p)), float64(time.Millisecond),
		"for D = 20 s the live cap is 5 s")
	// Retry-After counts, but only up to the cap.
	p = plan{session: time.Hour, grace: time.Hour, failures: 1, base: time.Second, retryAfter: 24 * time.Hour, u: 0}
	assert.Equal(t, graceCap, nextAttempt(p))
	// In grace the cap is 60 s; after grace, 5 minutes.
	p = plan{session: time.Minute, grace: time.Hour, failures: 30, base: time.Second, u: 0.999999, elapsed: 2 * time.Minute}
	assert.InDelta(t, float64(graceCap), float64(nextAttempt(p)), float64(time.Millisecond))
	p.elapsed = 2 * time.Hour
	assert.InDelta(t, float64(expiredCap), float64(nextAttempt(p)), float64(time.Millisecond))
	// Never past the lapse: the last attempt falls a margin ahead of it.
	p = plan{session: time.Hour, grace: time.Hour, failures: 5, base: 2 * time.Second, elapsed: time.Hour - 3*time.Second, u: 0.9}
	assert.Equal(t, 2*time.Second, nextAttempt(p))
}

// TestNextAttemptKeepsDeadlines walks the retries of a long outage through
// the schedule and checks that the last attempt before each deadline has
// room to finish before it, and that none lands on a deadline.
func TestNextAttemptKeepsDeadlines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ session, grace time.Duration }{
		{10 * time.Minute, time.Hour}, {4 * time.Second, 8 * time.Second}, {2 * time.Second, 2 * time.Second},
		{time.Minute, 0},
	} {
		rng := rand.New(rand.NewPCG(3, 5))
		p := plan{session: tc.session, grace: tc.grace, base: 2 * time.Second, elapsed: tc.session / 2}
		var lastBeforeLapse, lastBeforeExpiry time.Duration = -1, -1
		for p.elapsed < tc.session+tc.grace+time.Minute {
			p.failures++
			p.u = rng.Float64()
			p.elapsed += nextAttempt(p)
			switch {
			case p.elapsed < tc.session:
				lastBeforeLapse = p.elapsed
			case p.elapsed < tc.session+tc.grace:
				lastBeforeExpiry = p.elapsed
			}
			assert.NotEqual(t, tc.session, p.elapsed, "an attempt on the lapse")
			assert.NotEqual(t, tc.session+tc.grace, p.elapsed, "an attempt on the expiry")
		}
		assert.Equal(t, tc.session-marginFor(tc.session), lastBeforeLapse, "%v: the last attempt before the lapse", tc)
		if tc.grace > 0 {
			assert.Equal(t, tc.session+tc.grace-marginFor(tc.grace), lastBeforeExpiry, "%v: the last attempt before expiry", tc)
		}
	}
}
