package license

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/transport"
)

// TestDayOfRenewals runs 24 hours of renewals with two outages, one inside
// the grace period and one that outlasts it, in bubble time.
func TestDayOfRenewals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const D, G = 10 * time.Minute, time.Hour
		e := newEnv(t, envConfig{session: D, grace: G})
		t0 := time.Now()
		c := e.start()

		type outage struct{ from, to time.Duration }
		outages := []outage{{6 * time.Hour, 6*time.Hour + 40*time.Minute}, {12 * time.Hour, 14 * time.Hour}}
		for _, o := range outages {
			sleepUntil(t0, o.from)
			e.srv.SetDown(true)
			sleepUntil(t0, o.to)
			e.srv.SetDown(false)
		}
		sleepUntil(t0, 24*time.Hour)
		synctest.Wait()
		require.Equal(t, Active, c.Status().State)

		// The state sequence: two trips into grace, the second to expiry.
		assert.Equal(t, []State{Active, Grace, Active, Grace, Expired, Active}, e.rec.states())

		// Each lapse happened at exactly the expiry of the last renewal
		// before it, and expiry exactly one grace period later.
		var lastExpiry time.Time
		var graceAt time.Time
		for _, ev := range e.rec.all() {
			switch {
			case ev.Type == EventRenewed:
				lastExpiry = ev.SessionExpiry
			case ev.Type == EventStateChanged && ev.State == Grace:
				assert.Equal(t, lastExpiry, ev.Time, "Grace must start exactly at the session expiry")
				assert.ErrorIs(t, ev.Reason, ErrUnreachable)
				graceAt = ev.Time
			case ev.Type == EventStateChanged && ev.State == Expired:
				assert.Equal(t, graceAt.Add(G), ev.Time, "Expired must come exactly one grace period after the lapse")
				assert.ErrorIs(t, ev.Reason, ErrGraceExpired)
			}
		}

		// Recovery: back to Active within the retry cap of the outage end.
		trans := e.rec.transitions()
		back1 := trans[2].Time.Sub(t0)
		assert.GreaterOrEqual(t, back1, outages[0].to)
		assert.LessOrEqual(t, back1, outages[0].to+graceCap, "recovery from Grace within the 60 s cap")
		back2 := trans[5].Time.Sub(t0)
		assert.GreaterOrEqual(t, back2, outages[1].to)
		assert.LessOrEqual(t, back2, outages[1].to+expiredCap, "recovery from Expired within the 5 min cap")

		// Steady state: at most 2 calls per session, and no fewer than one
		// per 70 % of a session. Count extends in the quiet hours 1h-5h.
		var extends int
		for _, r := range e.srv.Requests() {
			at := r.Time.Sub(t0)
			if r.Endpoint == wire.Extend && at >= time.Hour && at < 5*time.Hour {
				extends++
			}
		}
		quiet := 4 * time.Hour
		assert.LessOrEqual(t, extends, 2*int(quiet/D))
		assert.GreaterOrEqual(t, extends, int(quiet/(7*D/10)))

		// The gaps between attempts never go below the floor. A refused
		// extend is followed at once by an end and a begin: one attempt.
		var prev time.Time
		refusedExtend := false
		for _, r := range e.srv.Requests() {
			if r.Endpoint != wire.Extend && r.Endpoint != wire.Begin {
				continue
			}
			if !prev.IsZero() && !(r.Endpoint == wire.Begin && refusedExtend) {
				assert.GreaterOrEqual(t, r.Time.Sub(prev), minSleep, "busy loop at %v", r.Time.Sub(t0))
			}
			refusedExtend = r.Endpoint == wire.Extend && r.Status >= 400 && r.Status < 500
			prev = r.Time
		}
		assert.Equal(t, 1, e.srv.Count(wire.Register))
	})
}

func TestRefusalSkipsGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start()
		time.Sleep(2 * time.Minute)
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		time.Sleep(10 * time.Minute)
		synctest.Wait()

		st := c.Status()
		assert.Equal(t, Refused, st.State)
		assert.ErrorIs(t, st.Reason, ErrRevoked)
		assert.ErrorIs(t, st.Reason, ErrRefused)
		var api *APIError
		require.ErrorAs(t, st.Reason, &api)
		assert.Contains(t, api.Message, "revoked")
		assert.Equal(t, []State{Active, Refused}, e.rec.states(), "no Grace on refusal")
		require.True(t, isDone(c), "Done() must be closed on refusal")
		assert.ErrorIs(t, c.Err(), ErrRevoked)
		// One extend refused, one begin refused, then nothing.
		assert.Equal(t, 1, e.srv.Count(wire.Extend))
		assert.Equal(t, 2, e.srv.Count(wire.Begin))
		time.Sleep(time.Hour)
		assert.Equal(t, 2, e.srv.Count(wire.Begin), "the loop stops after a refusal")
	})
}

func TestExtendRefusedThenBeginSucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start()
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultFail, Count: 1, Status: 404})
		time.Sleep(8 * time.Minute)
		synctest.Wait()
		assert.Equal(t, Active, c.Status().State)
		assert.Equal(t, 2, e.srv.Count(wire.Begin))
		assert.Equal(t, []State{Active}, e.rec.states())
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
	})
}

func TestControlOptionsChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
		c := e.start()
		require.NoError(t, e.srv.SetControlOptions(testProduct, testLicense, 2*time.Minute, 5*time.Minute))
		time.Sleep(45 * time.Minute) // one renewal at 30-42 min picks up the new options
		synctest.Wait()
		st := c.Status()
		assert.Equal(t, 2*time.Minute, st.SessionDuration)
		assert.Equal(t, 5*time.Minute, st.GracePeriod)
		assert.Equal(t, 1, e.rec.count(EventControlOptionsChanged))
		before := e.srv.Count(wire.Extend)
		time.Sleep(20 * time.Minute)
		n := e.srv.Count(wire.Extend) - before
		// Renewing at 50-70 % of 2 minutes: 15-20 calls in 20 minutes.
		assert.GreaterOrEqual(t, n, 14)
		assert.LessOrEqual(t, n, 21)
		assert.Equal(t, Active, c.Status().State)
	})
}

func TestTokenRotationIsFollowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, serverCfg: &licensetest.Config{TokenRotation: true}})
		c := e.start()
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, Active, c.Status().State)
		tokens := map[string]bool{}
		extends := 0
		for _, r := range e.srv.Requests() {
			if r.Endpoint == wire.Extend {
				var req wire.ExtendRequest
				require.NoError(t, json.Unmarshal(r.Payload, &req))
				tokens[req.Token] = true
				extends++
			}
		}
		assert.GreaterOrEqual(t, extends, 5)
		assert.Len(t, tokens, extends, "each extend uses the token the previous reply rotated to")
		assert.Equal(t, 1, e.srv.Count(wire.Begin), "a stale token would have been refused and forced a begin")
	})
}

func TestOfflineRestartKeepsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const D, G = 10 * time.Minute, time.Hour
		e := newEnv(t, envConfig{session: D, grace: G})
		c1 := e.start()
		time.Sleep(3 * time.Minute)
		want := c1.Status().GraceDeadline
		e.srv.SetDown(true)
		crash(c1)

		time.Sleep(20 * time.Minute) // lapsed, in grace
		c2, err := e.tryStart()
		require.NoError(t, err, "offline start within grace succeeds")
		st := c2.Status()
		assert.Equal(t, Grace, st.State)
		assert.ErrorIs(t, st.Reason, ErrUnreachable)
		assert.True(t, want.Equal(st.GraceDeadline), "a restart never resets or extends grace: %v, want %v", st.GraceDeadline, want)
		assert.True(t, c2.Valid())

		sleepUntil(want, -time.Second)
		assert.Equal(t, Grace, c2.Status().State)
		sleepUntil(want, 0)
		synctest.Wait()
		assert.Equal(t, Expired, c2.Status().State)
		assert.ErrorIs(t, c2.Status().Reason, ErrGraceExpired)

		// A further restart after the deadline gets nothing offline.
		_, err = e.tryStart()
		assert.ErrorIs(t, err, ErrUnreachable)
		assert.ErrorIs(t, err, ErrGraceExpired)
	})
}

func TestOrphanCleanup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, seats: 1})
		c1 := e.start()
		time.Sleep(time.Minute)
		crash(c1)
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense), "the crashed run holds the only seat")

		c2 := e.start()
		assert.Equal(t, Active, c2.Status().State, "the seat was freed by orphan cleanup")
		assert.Equal(t, 1, e.srv.Count(wire.End))
		assert.Equal(t, 1, e.rec.count(EventOrphanEnded))
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
	})
}

func TestCloseDuringRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute})
		c := e.start()
		e.srv.SetLatency(wire.Extend, time.Hour)
		waitRenewing(t, c)
		before := time.Now()
		require.NoError(t, c.Close(context.Background()))
		assert.Less(t, time.Since(before), time.Second, "Close cancels the extend in flight")
		assert.Equal(t, Ended, c.Status().State)
		assert.Equal(t, 1, e.srv.Count(wire.End))
		assert.Equal(t, 0, e.srv.SeatsInUse(testProduct, testLicense))
	})
}

func TestContextCancelledDuringStartBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		e.srv.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultFail, Count: 100, Status: 503})
		e.srv.SetRetryAfter("", 30*time.Second)
		c := e.newClient(e.config())
		defer c.Close(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		before := time.Now()
		err := c.Start(ctx)
		assert.ErrorIs(t, err, ErrUnreachable)
		assert.LessOrEqual(t, time.Since(before), 5*time.Second)
	})
}

func TestClockRollbackRefusesGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: 24 * time.Hour})
		c := e.start()
		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		e.wall.jump(-2 * time.Hour)
		time.Sleep(time.Minute)
		synctest.Wait()
		// Still inside the session: the monotonic clock keeps it honest.
		assert.Equal(t, Active, c.Status().State)
		time.Sleep(9 * time.Minute)
		synctest.Wait()
		st := c.Status()
		assert.Equal(t, Expired, st.State, "no offline grace after a rollback")
		assert.ErrorIs(t, st.Reason, ErrClockRollback)
		assert.NoError(t, c.Err(), "Expired can recover: Done stays open")

		// Reaching the server again clears it.
		e.srv.SetDown(false)
		time.Sleep(expiredCap + time.Second)
		synctest.Wait()
		assert.Equal(t, Active, c.Status().State)
		require.False(t, isDone(c), "Done() closed although the client recovered")
	})
}

func TestClockRollbackCaughtAtOfflineRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: 24 * time.Hour})
		c1 := e.start()
		time.Sleep(2 * time.Hour) // high-water mark advances with renewals
		e.srv.SetDown(true)
		crash(c1)
		e.wall.jump(-2 * time.Hour)
		c2, err := e.tryStart()
		assert.ErrorIs(t, err, ErrClockRollback)
		assert.ErrorIs(t, err, ErrUnreachable)
		assert.False(t, c2.Valid())
	})
}

func TestSuspendCounts(t *testing.T) {
	t.Run("online: renew at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
			c := e.start()
			time.Sleep(10 * time.Minute)
			before := e.srv.Count(wire.Extend) + e.srv.Count(wire.Begin)
			e.wall.jump(3 * time.Hour) // the laptop slept 3 h
			time.Sleep(maxSleep + time.Second)
			synctest.Wait()
			assert.Equal(t, 1, e.rec.count(EventResumeDetected))
			assert.Greater(t, e.srv.Count(wire.Extend)+e.srv.Count(wire.Begin), before)
			assert.Equal(t, Active, c.Status().State)
		})
	})
	t.Run("offline: the jump counts against grace", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
			c := e.start()
			time.Sleep(10 * time.Minute)
			e.srv.SetDown(true)
			e.wall.jump(3 * time.Hour)
			// Status is right at once, before the loop even wakes.
			assert.Equal(t, Expired, c.Status().State)
			time.Sleep(maxSleep + time.Second)
			synctest.Wait()
			assert.Equal(t, Expired, c.Status().State)
			assert.ErrorIs(t, c.Status().Reason, ErrGraceExpired)
		})
	})
}

func TestSlowEventHandlerDoesNotMoveSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute})
		block := make(chan struct{})
		slow := func(Event) { <-block }
		c := e.start(WithEventHandler(slow))
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		n := e.srv.Count(wire.Extend)
		assert.GreaterOrEqual(t, n, int(2*time.Hour/(7*time.Minute)))
		assert.LessOrEqual(t, n, int(2*time.Hour/(5*time.Minute)))
		assert.Equal(t, Active, c.Status().State)
		close(block)
	})
}

func TestEventsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: 10 * time.Minute})
		c := e.start()
		time.Sleep(8 * time.Minute)
		e.srv.SetDown(true)
		time.Sleep(15 * time.Minute)
		e.srv.SetDown(false)
		time.Sleep(2 * time.Minute)
		require.NoError(t, c.Close(context.Background()))
		all := e.rec.all()
		for i := 1; i < len(all); i++ {
			assert.False(t, all[i].Time.Before(all[i-1].Time), "event %d (%v) before event %d", i, all[i].Type, i-1)
		}
		var kinds []EventType
		for _, ev := range all {
			if len(kinds) == 0 || kinds[len(kinds)-1] != ev.Type {
				kinds = append(kinds, ev.Type)
			}
		}
		assert.Equal(t, []EventType{EventStateChanged, EventRenewed, EventRenewFailed, EventStateChanged,
			EventRenewFailed, EventStateChanged, EventRenewed, EventStateChanged, EventEnded}, kinds)
		assert.Equal(t, []State{Active, Grace, Active, Ended}, e.rec.states())
		n := len(all)
		time.Sleep(time.Hour)
		assert.Equal(t, n, len(e.rec.all()), "no event after Close")
	})
}

func TestStaleInstanceIsRegisteredAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute})
		c1 := e.start()
		require.NoError(t, c1.Close(context.Background()))

		// A fresh server (a reset database) does not know the stored instance.
		e2 := newEnv(t, envConfig{session: 10 * time.Minute})
		e2.store = e.store
		c2 := e2.start()
		assert.Equal(t, Active, c2.Status().State)
		assert.Equal(t, 1, e2.srv.Count(wire.Register), "registered again once")
		assert.Equal(t, 2, e2.srv.Count(wire.Begin))
		assert.NotEqual(t, c1.Status().InstanceGUID, c2.Status().InstanceGUID)
	})
}

func TestDoneClosesBeforeTheRefusedEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: time.Minute, grace: time.Minute})
		var c *Client
		var errAtEvent atomic.Value
		c = e.start(WithEventHandler(func(ev Event) {
			if ev.Type == EventStateChanged && ev.State == Refused {
				errAtEvent.Store(fmt.Sprint(c.Err()))
			}
		}))
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		assert.Equal(t, Refused, c.Status().State)
		assert.Equal(t, c.Err().Error(), errAtEvent.Load(), "Err must be set when the event arrives")
	})
}

func TestShortGraceRetriesOften(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// With G = 8 s the retry cap in grace is 5 s, so a server back in
		// the middle of grace is found before grace runs out.
		e := newEnv(t, envConfig{session: 4 * time.Second, grace: 8 * time.Second})
		c := e.start()
		e.srv.SetDown(true)
		time.Sleep(4*time.Second + time.Millisecond)
		synctest.Wait()
		require.Equal(t, Grace, c.Status().State)
		time.Sleep(2 * time.Second)
		e.srv.SetDown(false)
		time.Sleep(5*time.Second + 100*time.Millisecond)
		synctest.Wait()
		assert.Equal(t, Active, c.Status().State)
		assert.NotContains(t, e.rec.states(), Expired)
	})
}

func TestStateMarshalsByName(t *testing.T) {
	b, err := json.Marshal(map[string]any{"state": Grace, "event": EventRenewed})
	require.NoError(t, err)
	assert.JSONEq(t, `{"state":"Grace","event":"Renewed"}`, string(b))
}

// TestNoFlickerWhenServerAnswersBeforeDeadline brings the server back one
// second before a deadline. The last attempt before the deadline falls a
// margin ahead of it, so the state never changes: no Grace for a moment at
// the lapse, no Expired for a moment at the end of grace.
func TestNoFlickerWhenServerAnswersBeforeDeadline(t *testing.T) {
	const back = -time.Second - time.Millisecond // the server is back 1 s before the deadline
	for _, tc := range []struct {
		name     string
		deadline func(Status) time.Time
		want     []State
		msg      string
	}{
		{"lapse", func(st Status) time.Time { return st.SessionExpiry }, []State{Active}, "no Grace flicker at the lapse"},
		{"grace expiry", func(st Status) time.Time { return st.GraceDeadline }, []State{Active, Grace, Active},
			"no Expired flicker at the end of grace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				c := e.start()
				deadline := tc.deadline(c.Status())
				time.Sleep(time.Minute)
				e.srv.SetDown(true)
				sleepUntil(deadline, back)
				e.srv.SetDown(false)
				time.Sleep(time.Minute)
				synctest.Wait()
				assert.Equal(t, tc.want, e.rec.states(), tc.msg)
				assert.Equal(t, Active, c.Status().State)
				require.False(t, isDone(c), "Done closed although the licence never became unusable")
			})
		})
	}
}

// TestDeadlineEventsOnTimeWithSlowCallInFlight makes every call slower than
// the session. The calls are cut at each deadline, so the state change, its
// event and Status agree to the nanosecond, and every event after a change
// carries the new state.
func TestDeadlineEventsOnTimeWithSlowCallInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const D, G = 2 * time.Second, 2 * time.Second
		e := newEnv(t, envConfig{session: D, grace: G})
		c := e.start()
		st := c.Status()
		e.srv.SetLatency("", time.Hour)

		sleepUntil(st.SessionExpiry, 0)
		synctest.Wait()
		assert.Equal(t, []State{Active, Grace}, e.rec.states(), "the Grace event is out at the lapse")
		sleepUntil(st.GraceDeadline, 0)
		synctest.Wait()
		assert.Equal(t, []State{Active, Grace, Expired}, e.rec.states(), "the Expired event is out at the deadline")
		assert.Equal(t, Expired, c.Status().State)
		time.Sleep(time.Minute)
		synctest.Wait()

		trans := e.rec.transitions()
		require.Len(t, trans, 3)
		assert.Equal(t, st.SessionExpiry, trans[1].Time, "Grace on time")
		assert.Equal(t, st.GraceDeadline, trans[2].Time, "Expired on time")
		for _, ev := range e.rec.all() {
			if ev.Type != EventRenewFailed {
				continue
			}
			want := Active
			switch {
			case !ev.Time.Before(st.GraceDeadline):
				want = Expired
			case !ev.Time.Before(st.SessionExpiry):
				want = Grace
			}
			assert.Equal(t, want, ev.State, "RenewFailed at %v carries the state of its time", ev.Time.Sub(st.SessionExpiry))
		}
		e.srv.SetLatency("", 0)
		require.NoError(t, c.Close(context.Background()))
	})
}

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

// hangingServer accepts connections on loopback and never answers, as a
// wedged server or a black-holing proxy does. It counts the connections.
type hangingServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newHangingServer(t *testing.T) *hangingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return startHanging(t, ln)
}

// newHangingServerB is newHangingServer for benchmarks.
func newHangingServerB(b *testing.B) *hangingServer {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return startHanging(b, ln)
}

func startHanging(t testing.TB, ln net.Listener) *hangingServer {
	h := &hangingServer{ln: ln}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		h.wg.Wait()
		h.mu.Lock()
		for _, c := range h.conns {
			_ = c.Close()
		}
		h.mu.Unlock()
	})
	return h
}

func (h *hangingServer) url() string { return "http://" + h.ln.Addr().String() + licensetest.BasePath }

func (h *hangingServer) accepted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// attempts is the HTTP attempt count of the transport error in err.
func attempts(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.Attempts
	}
	return -1
}

// TestOfflineStartAfterCrashIsBounded crashes a real process holding a live
// session, then starts this process on the same state directory while the
// server is out in each shape a product meets. Start returns nil at once in
// Active (the old session has not lapsed), after one HTTP attempt, and
// keeps trying in the background; it never waits through retries, a
// Retry-After or a hanging connection.
func TestOfflineStartAfterCrashIsBounded(t *testing.T) {
	cases := []struct {
		name   string
		outage func(t *testing.T, srv *licensetest.Server) (url string, calls func() int)
	}{
		{"connection refused", func(t *testing.T, srv *licensetest.Server) (string, func() int) {
			srv.SetDown(true)
			return srv.URL, nil
		}},
		{"connection reset", func(t *testing.T, srv *licensetest.Server) (string, func() int) {
			srv.SetDownMode(licensetest.DownReset)
			srv.SetDown(true)
			return srv.URL, nil
		}},
		{"503 with Retry-After of a day", func(t *testing.T, srv *licensetest.Server) (string, func() int) {
			srv.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultFail, Count: 1000, Status: 503})
			srv.SetRetryAfter("", 24*time.Hour)
			n := srv.Count("")
			return srv.URL, func() int { return srv.Count("") - n }
		}},
		{"429 with Retry-After of a day", func(t *testing.T, srv *licensetest.Server) (string, func() int) {
			srv.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultFail, Count: 1000, Status: 429})
			srv.SetRetryAfter("", 24*time.Hour)
			n := srv.Count("")
			return srv.URL, func() int { return srv.Count("") - n }
		}},
		{"accepts and never answers", func(t *testing.T, srv *licensetest.Server) (string, func() int) {
			h := newHangingServer(t)
			return h.url(), h.accepted
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := licensetest.NewServer(nil)
			defer srv.Close()
			require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
				SessionDuration: time.Hour, GracePeriod: time.Hour}))
			dir := t.TempDir()
			_, stop := child(t, "crash", srv, dir)
			require.NoError(t, stop())

			url, calls := tc.outage(t, srv)
			c, err := New(Config{ServerURL: url, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
				ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}, fixedFingerprint(testFingerprint()))
			require.NoError(t, err)
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				defer cancel()
				_ = c.Close(ctx) // the server is out: end_session cannot succeed
			}()

			begun := time.Now()
			require.NoError(t, c.Start(context.Background()))
			took := time.Since(begun)
			st := c.Status()
			assert.Equal(t, Active, st.State, "the crashed run's session has not lapsed")
			assert.NoError(t, st.Reason)
			assert.ErrorIs(t, st.LastError, ErrUnreachable)
			if calls != nil {
				assert.Equal(t, 1, calls(), "Start made one attempt, then left the rest to the loop")
			} else {
				assert.Equal(t, 1, attempts(st.LastError), "Start made one attempt: %v", st.LastError)
			}
			// The hanging case is cut by the budget; the others return
			// after one attempt. The attempt timeout (10 s) is the bound
			// that the previous code could never beat with a hanging server.
			assert.Less(t, took, 10*time.Second, "Start took %v", took)
		})
	}
}

// TestStartBoundInBubble checks the start-up bounds exactly, in bubble time,
// against an in-memory server that hangs or says "retry in a day".
func TestStartBoundInBubble(t *testing.T) {
	t.Run("live persisted session, hanging server: the offline budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
			crash(e.start())
			e.srv.SetLatency("", 24*time.Hour)
			c, took, err := e.timedStart(context.Background())
			require.NoError(t, err)
			assert.Equal(t, startCut(DefaultOfflineStartBudget), took)
			assert.Equal(t, Active, c.Status().State)
		})
	})
	t.Run("grace persisted, hanging server: a shorter configured budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			crash(e.start())
			time.Sleep(20 * time.Minute)
			e.srv.SetLatency("", 24*time.Hour)
			c, took, err := e.timedStart(context.Background(), WithStartBudget(StartBudget{Offline: 300 * time.Millisecond}))
			require.NoError(t, err)
			assert.Equal(t, startCut(300*time.Millisecond), took)
			st := c.Status()
			assert.Equal(t, Grace, st.State)
			assert.ErrorIs(t, st.Reason, ErrUnreachable)
		})
	})
	t.Run("caller's deadline shorter than the budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
			crash(e.start())
			e.srv.SetLatency("", 24*time.Hour)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			c, took, err := e.timedStart(ctx)
			require.NoError(t, err)
			assert.Equal(t, 500*time.Millisecond, took)
			assert.Equal(t, Active, c.Status().State)
		})
	})
	t.Run("no state, hanging server: the online default", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
			e.srv.SetLatency("", 24*time.Hour)
			c, took, err := e.timedStart(context.Background())
			assert.ErrorIs(t, err, ErrUnreachable)
			assert.Equal(t, startCut(DefaultStartTimeout), took)
			assert.Equal(t, Idle, c.Status().State)
		})
	})
	t.Run("no state, Retry-After of a day: at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
			e.srv.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultFail, Count: 1000, Status: 429})
			e.srv.SetRetryAfter("", 24*time.Hour)
			_, took, err := e.timedStart(context.Background())
			assert.ErrorIs(t, err, ErrUnreachable)
			assert.LessOrEqual(t, took, DefaultStartTimeout)
			assert.Equal(t, 1, e.srv.Count(wire.Register), "no retry can fit a day's wait into the budget")
		})
	})
	t.Run("then the server answers: orphan ended, fresh session", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour, seats: 1})
			crash(e.start())
			e.srv.SetDown(true)
			c := e.start()
			assert.Equal(t, Active, c.Status().State)
			e.srv.SetDown(false)
			time.Sleep(time.Minute)
			synctest.Wait()
			assert.Equal(t, Active, c.Status().State)
			assert.Nil(t, c.Status().LastError)
			assert.Equal(t, 1, e.srv.Count(wire.End), "the orphan was ended")
			assert.Equal(t, 2, e.srv.Count(wire.Begin), "then a fresh session began")
			assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
			var ended []error
			for _, ev := range e.rec.all() {
				if ev.Type == EventOrphanEnded {
					ended = append(ended, ev.Reason)
				}
			}
			require.Len(t, ended, 2, "one failed try at Start, one success later")
			assert.ErrorIs(t, ended[0], ErrUnreachable)
			assert.NoError(t, ended[1])
		})
	})
}

// The path must not turn a paying customer into a saved refusal by burning
// a seat (issue 21, section 3): a forged end_session answer, a lost begin
// reply, a capacity refusal.

// TestUnsealedEndSessionNotBelieved: in sealed mode the path answers
// end_session at Close with a plain 422. The client does not believe it:
// it keeps the token (the server still holds the seat), the next run ends
// that session and begins, nothing is saved as a refusal, and an offline
// start afterwards still has its grace.
func TestUnsealedEndSessionNotBelieved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
		path := &forger{next: e.srv.Transport(), endpoint: wire.End, answer: func(r *http.Request) *http.Response {
			return plainReply(r, http.StatusUnprocessableEntity, []byte(`{"success":false,"error":"session not found"}`))
		}}
		c := e.newClient(e.config(), WithRoundTripper(path))
		require.NoError(t, c.Start(context.Background()))
		path.armed.Store(1)
		err := c.Close(context.Background())
		assert.ErrorIs(t, err, ErrUnreachable, "a plain 422 was believed")
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
		assert.NotEmpty(t, c.st.Token, "the token was dropped")

		c2 := e.newClient(e.config())
		require.NoError(t, c2.Start(context.Background()), "the next run lost its seat")
		require.NoError(t, c2.Close(context.Background()))
		assert.Nil(t, c2.st.Refusal)

		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		c3 := e.start()
		assert.True(t, c3.Valid())
	})
}

// TestSealedEndSession422Ends: the server's own sealed 422 still means the
// session is over.
func TestSealedEndSession422Ends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start()
		e.srv.Inject(licensetest.Fault{Endpoint: wire.End, Kind: licensetest.FaultFail, Status: 422, Message: "unknown token"})
		require.NoError(t, c.EndSession(context.Background()))
		assert.Empty(t, c.st.Token)
		assert.Equal(t, Idle, c.Status().State)
	})
}

// TestLostBeginReplyResent: the path lets begin_session through and drops
// the reply. The retried Start resends the same sealed request, which the
// server's replay cache answers with the stored reply: one seat, no
// refusal.
func TestLostBeginReplyResent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultDrop})
		c, err := e.tryStart()
		require.ErrorIs(t, err, ErrUnreachable)
		require.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))

		require.NoError(t, c.Start(context.Background()), "the retried Start burned a seat")
		assert.Equal(t, Active, c.Status().State)
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
		var begins, repeats int
		for _, r := range e.srv.Requests() {
			if r.Endpoint == wire.Begin {
				begins++
				if r.Repeat {
					repeats++
				}
			}
		}
		assert.Equal(t, 2, begins)
		assert.Equal(t, 1, repeats, "the retry was not the same request")
		assert.Nil(t, c.st.Refusal)
	})
}

// TestCapacityRefusalNotPersisted: a refusal about capacity (the server's
// "seat limit", a bare "no seats", a vendor's own wording mapped to
// RefusalSeatLimit) refuses now but is never saved as final: the grace of a
// still-live persisted session stays, and the next start asks again.
func TestCapacityRefusalNotPersisted(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		opts      []Option
	}{
		{"seat-limit", "seat limit", nil},
		{"no-seats", "No seats left on this licence", nil},
		{"vendor-capacity", "Concurrent user maximum reached (5/5)", []Option{WithRefusalRules(append(DefaultRefusalRules(),
			RefusalRule{Kind: RefusalSeatLimit, Phrase: "concurrent user maximum"}))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				c := e.newClient(e.config(), tc.opts...)
				require.NoError(t, c.Start(context.Background()))
				crash(c) // a live session persisted

				e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultFail, Status: 409, Message: tc.msg})
				c2 := e.newClient(e.config(), tc.opts...)
				err := c2.Start(context.Background())
				require.ErrorIs(t, err, ErrRefused, "it refuses now")
				assert.ErrorIs(t, err, ErrSeatLimit)
				assert.False(t, c2.Valid())
				require.NoError(t, c2.Close(context.Background()))

				e.srv.SetDown(true)
				c3 := e.newClient(e.config(), tc.opts...)
				require.NoError(t, c3.Start(context.Background()), "the capacity refusal took the grace away")
				assert.True(t, c3.Valid())
				require.NoError(t, c3.Close(context.Background()))

				e.srv.SetDown(false)
				begins := e.srv.Count(wire.Begin)
				c4 := e.newClient(e.config(), tc.opts...)
				defer c4.Close(context.Background())
				require.NoError(t, c4.Start(context.Background()))
				assert.Equal(t, Active, c4.Status().State)
				assert.Equal(t, begins+1, e.srv.Count(wire.Begin), "the next start asks again")
			})
		})
	}
}

// TestCapacityRefusalWithoutAllowance: with no persisted allowance, the
// server's genuine seat-limit refusal fails Start and saves nothing; once
// the seat is free, the next Start is Active.
func TestCapacityRefusalWithoutAllowance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
		other := e.newClient(e.config(), WithStateStore(&MemoryStateStore{}),
			fixedFingerprint(otherMachine()))
		require.NoError(t, other.Start(context.Background()))

		c := e.newClient(e.config())
		require.ErrorIs(t, c.Start(context.Background()), ErrSeatLimit)
		assert.Nil(t, c.st.Refusal, "a capacity refusal was saved as final")
		require.NoError(t, c.Close(context.Background()))

		require.NoError(t, other.Close(context.Background()))
		e.start()
	})
}

// TestCapacityRefusalInRenewal: in renewal, a refused extend and a fresh
// begin refused for capacity stop this run (Refused, Done closes) but save
// nothing: an offline restart still has the grace the last session granted.
func TestCapacityRefusalInRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start()
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultFail, Status: 404, Message: "unknown token"})
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultFail, Status: 409, Message: "seat limit"})
		time.Sleep(9 * time.Minute)
		synctest.Wait()
		require.Equal(t, Refused, c.Status().State)
		assert.ErrorIs(t, c.Err(), ErrSeatLimit)
		assert.Nil(t, c.st.Refusal)
		crash(c)

		e.srv.SetDown(true)
		c2 := e.start()
		assert.True(t, c2.Valid())
	})
}

// TestLostBeginReplyTooOldToResend: a begin whose reply was lost is resent
// only while the server still remembers it. Later the client seals afresh;
// the lost session still holds the only seat, so the server says "seat
// limit", which is not saved; once that session lapses, Start succeeds.
func TestLostBeginReplyTooOldToResend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultDrop})
		c := e.newClient(e.config())
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		require.ErrorIs(t, c.Start(context.Background()), ErrUnreachable)

		time.Sleep(resendWithin)
		err := c.Start(context.Background())
		require.ErrorIs(t, err, ErrSeatLimit)
		assert.Nil(t, c.st.Refusal)
		assert.Zero(t, countRejected(e.srv, wire.Begin), "an expired request was resent")

		time.Sleep(10 * time.Minute)
		e.start()
	})
}
