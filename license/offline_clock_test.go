package license

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOfflineActivationClockSetBack: a licence activated by file counts its
// time as every offline session does (docs/security.md, "Offline time is a
// budget"): the wall clock set back again and again, within one run and
// across restarts, never lengthens it. With a 2-day session and a day of
// grace, the licence is over 3 days after the server began the session,
// however the clock was moved.
func TestOfflineActivationClockSetBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const day = 24 * time.Hour
		e := newEnv(t, envConfig{session: 2 * day, grace: day, seats: 1})
		store := &MemoryStateStore{}
		c := e.offlineMachine(e.fp, store)
		more, err := activate(c, e.exchange(request(t, c)))
		require.NoError(t, err)
		require.True(t, more)
		reply := e.exchange(request(t, c))
		time.Sleep(time.Hour) // carried back
		_, err = activate(c, reply)
		require.NoError(t, err)
		require.NoError(t, c.Start(context.Background()))
		require.Equal(t, Active, c.Status().State)

		// Within the run: set the clock back by 4.5 minutes (under the
		// rollback slack) every half hour, for 2 days: 7.2 hours of wall
		// time "regained", were the wall clock believed.
		for range 96 {
			time.Sleep(30 * time.Minute)
			e.wall.jump(-270 * time.Second)
		}
		synctest.Wait()
		assert.Equal(t, Grace, c.Status().State, "the 2-day session is spent after 2 days and an hour of real time")
		require.NoError(t, c.Close(context.Background()))

		// Across restarts: each restart with the clock set back by a day.
		for range 3 {
			e.wall.jump(-day)
			c = e.offlineMachine(e.fp, store)
			_ = c.Start(context.Background())
			time.Sleep(6 * time.Hour)
			require.NoError(t, c.Close(context.Background()))
		}
		// 2 days and 19 hours have passed since the server began the
		// session: its 3 days of session and grace end within the next 6
		// hours, whatever the clock says.
		c = e.offlineMachine(e.fp, store)
		_ = c.Start(context.Background())
		time.Sleep(6*time.Hour + time.Minute)
		synctest.Wait()
		assert.False(t, c.Valid(), "the licence outlived its budget: %v", c.Status().State)
		require.NoError(t, c.Close(context.Background()))
	})
}
