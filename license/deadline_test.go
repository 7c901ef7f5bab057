package license

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoFlickerWhenServerAnswersBeforeDeadline brings the server back one
// second before a deadline. The last attempt before the deadline falls a
// margin ahead of it, so the state never changes: no Grace for a moment at
// the lapse, no Expired for a moment at the end of grace.
func TestNoFlickerWhenServerAnswersBeforeDeadline(t *testing.T) {
	const back = -time.Second - time.Millisecond // the server is back 1 s before the deadline
	t.Run("lapse", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			c := e.start()
			lapse := c.Status().SessionExpiry
			time.Sleep(time.Minute)
			e.srv.SetDown(true)
			sleepUntil(lapse, back)
			e.srv.SetDown(false)
			time.Sleep(time.Minute)
			synctest.Wait()
			assert.Equal(t, []State{Active}, e.rec.states(), "no Grace flicker at the lapse")
			assert.Equal(t, Active, c.Status().State)
		})
	})
	t.Run("grace expiry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			c := e.start()
			expiry := c.Status().GraceDeadline
			time.Sleep(time.Minute)
			e.srv.SetDown(true)
			sleepUntil(expiry, back)
			e.srv.SetDown(false)
			time.Sleep(time.Minute)
			synctest.Wait()
			assert.Equal(t, []State{Active, Grace, Active}, e.rec.states(), "no Expired flicker at the end of grace")
			select {
			case <-c.Done():
				t.Fatal("Done closed although the licence never became unusable")
			default:
			}
		})
	})
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
