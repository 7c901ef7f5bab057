package license

import (
	"context"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/statefile"
	"github.com/licensekit/licensekit-go/internal/wire"
)

// Shared mode with the integrity features of the state: the anti-rollback
// record, persisted refusals and clock-rollback detection. The clients are
// in-process (one synctest bubble, real files and real OS locks), so that
// hours pass in milliseconds; shared_test.go runs real processes.

// sharedIn returns the options of a shared-mode client whose
// anti-rollback records live in records.
func sharedIn(records string) []Option {
	return []Option{WithSharedSession(SharedSession{}), WithRollbackRecordDir(records)}
}

// TestSharedRestoredStateAndClockSetBack: with grace used up, restoring an
// older copy of the state directory (shared file included) and setting the
// clock back grants nothing, neither to the process that would renew nor to
// a follower: the shared file's anti-rollback record is ahead of it. An
// online start still works and brings the record and the state together.
func TestSharedRestoredStateAndClockSetBack(t *testing.T) {
	t.Run("record-dir", func(t *testing.T) { sharedRestoredStateAndClockSetBack(t, true) })
	t.Run("default-location", func(t *testing.T) { sharedRestoredStateAndClockSetBack(t, false) })
}

func sharedRestoredStateAndClockSetBack(t *testing.T, recordDir bool) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		dir, backup, records := t.TempDir(), t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opts := sharedIn(records)
		if !recordDir {
			opts = []Option{WithSharedSession(SharedSession{})} // under os.UserConfigDir, which TestMain sets
		}

		r, err := e.startIn(dir, opts...)
		require.NoError(t, err)
		f, err := e.startIn(dir, opts...)
		require.NoError(t, err)
		require.Equal(t, Renewer, r.Shared().Role)
		require.Equal(t, Follower, f.Shared().Role)
		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		_ = f.Close(ctx)
		_ = r.Close(ctx)
		copyDir(t, dir, backup) // the copy a restore brings back
		if recordDir {
			files, _ := filepath.Glob(filepath.Join(records, "rb-*[0-9a-f]"))
			require.Len(t, files, 1, "one record for the shared file")
		}

		// Offline until grace is used up.
		time.Sleep(2 * time.Hour)
		c, err := e.startIn(dir, opts...)
		require.ErrorIs(t, err, ErrGraceExpired)
		_ = c.Close(ctx)

		// The attack: restore the copy, set the clock back into the copy's
		// session.
		copyDir(t, backup, dir)
		e.wall.jump(-2 * time.Hour)
		begins := e.srv.Count(wire.Begin)
		r, err = e.startIn(dir, opts...)
		require.Error(t, err, "a restored shared state plus a clock set back was usable")
		assert.ErrorIs(t, err, ErrStateRollback)
		assert.False(t, r.Valid())
		assert.Equal(t, Follower, r.Shared().Role, "a failed Start gives up the renewer lock")
		_ = r.Close(ctx)

		// A follower: another process holds the renewer lock (one still
		// starting, say), and this one checks the record too.
		copyDir(t, backup, dir)
		holder, err := statefile.JoinShared(ctx, dir, statefile.SharedName(testProduct, testLicense))
		require.NoError(t, err)
		lead, err := holder.TryLead()
		require.NoError(t, err)
		require.True(t, lead)
		f, err = e.startIn(dir, opts...)
		require.Error(t, err, "a follower of a restored shared state was usable")
		assert.ErrorIs(t, err, ErrStateRollback)
		assert.False(t, f.Valid())
		assert.Equal(t, Follower, f.Shared().Role)
		// The same copy written again (a new file): still restored.
		copyDir(t, backup, dir)
		require.NoError(t, f.lock(ctx))
		f.refreshSharedLocked(false)
		allowed, why := f.offlineAllowanceLocked()
		f.unlock()
		assert.False(t, allowed, "a re-read of the restored copy made it current")
		assert.ErrorIs(t, why, ErrStateRollback)
		_ = f.Close(ctx)
		require.NoError(t, holder.Release())

		// Saves after the detection do not make the copy current: a
		// second offline start without a new restore grants nothing.
		r, err = e.startIn(dir, opts...)
		require.Error(t, err)
		assert.False(t, r.Valid())
		_ = r.Close(ctx)
		assert.Equal(t, begins, e.srv.Count(wire.Begin), "the server is down")

		// Online start still works; afterwards the state is current again.
		e.wall.jump(2 * time.Hour)
		e.srv.SetDown(false)
		r, err = e.startIn(dir, opts...)
		require.NoError(t, err)
		assert.Equal(t, Active, r.Status().State)
		assert.Equal(t, StartBegan, r.Shared().Start)
		f, err = e.startIn(dir, opts...)
		require.NoError(t, err)
		assert.Equal(t, StartFollowed, f.Shared().Start)
		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		_ = f.Close(ctx)
		_ = r.Close(ctx)
		r, err = e.startIn(dir, opts...)
		require.NoError(t, err, "after an online start the shared state is current again")
		assert.True(t, r.Valid())
		_ = r.Close(ctx)
	})
}

// TestSharedStateRestoredWhileFollowing: a copy restored under running
// processes is not taken by a follower (it keeps the newer state it
// follows).
func TestSharedStateRestoredWhileFollowing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		dir, records := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opts := sharedIn(records)
		r, err := e.startIn(dir, opts...)
		require.NoError(t, err)
		f, err := e.startIn(dir, opts...)
		require.NoError(t, err)
		path := r.Shared().Path
		old, err := os.ReadFile(path)
		require.NoError(t, err)
		time.Sleep(8 * time.Minute) // the renewer extends at least once
		synctest.Wait()
		require.Greater(t, e.srv.Count(wire.Extend), 0)
		want := f.Status().SessionExpiry
		require.True(t, r.Status().SessionExpiry.Equal(want))

		require.NoError(t, os.WriteFile(path, old, 0o600))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.True(t, want.Equal(f.Status().SessionExpiry), "the follower took the restored copy: %v, want %v",
			f.Status().SessionExpiry, want)
		assert.Equal(t, Active, f.Status().State)
		_ = f.Close(ctx)
		_ = r.Close(ctx)
	})
}

// TestSharedRefusalReachesEveryProcess: when the renewer is finally refused
// (its extend refused, then its one fresh begin), the refusal is written to
// the shared state; every follower reaches Refused within its refresh
// interval, with Done closed. A process started meanwhile asks the server
// itself (the refused renewer no longer holds the renewer lock) and is
// refused at once. After Close, no offline restart of any process is
// usable.
func TestSharedRefusalReachesEveryProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		dir, records := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opts := append(sharedIn(records), WithSharedSession(SharedSession{RefreshInterval: 2 * time.Second}))
		r, err := e.startIn(dir, opts...)
		require.NoError(t, err)
		followers := make([]*Client, 3)
		for i := range followers {
			followers[i], err = e.startIn(dir, opts...)
			require.NoError(t, err)
			require.Equal(t, Follower, followers[i].Shared().Role)
		}

		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		<-r.Done()
		require.ErrorIs(t, r.Err(), ErrRevoked)
		require.Equal(t, Refused, r.Status().State)
		time.Sleep(2*time.Second + time.Millisecond)
		synctest.Wait()
		for i, f := range followers {
			assert.Equal(t, Refused, f.Status().State, "follower %d", i)
			assert.False(t, f.Valid(), "follower %d", i)
			select {
			case <-f.Done():
				assert.ErrorIs(t, f.Err(), ErrRefused, "follower %d", i)
			default:
				t.Errorf("follower %d: Done still open after the renewer's refusal", i)
			}
		}
		assert.Equal(t, 2, e.srv.Count(wire.Begin), "the first begin and the renewer's fresh begin only")

		// A process started now: it asks the server once, and is refused.
		late, err := e.startIn(dir, opts...)
		assert.ErrorIs(t, err, ErrRevoked)
		assert.False(t, late.Valid())
		assert.Equal(t, 3, e.srv.Count(wire.Begin))
		_ = late.Close(ctx)

		for _, f := range followers {
			_ = f.Close(ctx)
		}
		_ = r.Close(ctx)

		// Offline restarts of two processes: neither is usable.
		e.srv.SetDown(true)
		for i := range 2 {
			c, err := e.startIn(dir, opts...)
			require.Error(t, err, "offline restart %d after a refusal was usable", i)
			assert.ErrorIs(t, err, ErrRefused, "restart %d", i)
			assert.False(t, c.Valid())
		}
	})
}

// TestRestoredStateStaysRestoredAfterSave: a copy from before a refusal is
// restored (the clock is not touched). It is found behind its record and
// then saved again (Close saves, moving the generation past the record),
// yet the next offline start still grants nothing: the restored deadlines
// were not kept.
func TestRestoredStateStaysRestoredAfterSave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		dir, backup, records := t.TempDir(), t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opt := WithRollbackRecordDir(records)
		c, err := e.startIn(dir, opt)
		require.NoError(t, err)
		e.srv.SetDown(true)
		_ = c.Close(ctx)
		copyDir(t, dir, backup)
		e.srv.SetDown(false)
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		c, err = e.startIn(dir, opt)
		require.ErrorIs(t, err, ErrRevoked)
		_ = c.Close(ctx)

		copyDir(t, backup, dir)
		e.srv.SetDown(true)
		c, err = e.startIn(dir, opt)
		require.Error(t, err)
		// The licence's refusal is kept outside StateDir: it outlives the
		// restored copy, which is also found behind its record.
		assert.ErrorIs(t, err, ErrRefused)
		assert.True(t, c.store.restored, "the copy is found behind its record")
		_ = c.Close(ctx) // saves
		c, err = e.startIn(dir, opt)
		require.Error(t, err, "the restored copy became current through a save")
		assert.False(t, c.Valid())
		_ = c.Close(ctx)
	})
}

// TestSharedClockSetBack: the shared state's high-water mark guards every
// process: with the clock set back, neither the process that would renew
// nor a follower resumes the session or gets grace.
func TestSharedClockSetBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		dir, records := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opts := sharedIn(records)
		r, err := e.startIn(dir, opts...)
		require.NoError(t, err)
		time.Sleep(20 * time.Minute) // extends, and high-water saves
		e.srv.SetDown(true)
		_ = r.Close(ctx)
		e.wall.jump(-30 * time.Minute)

		holder, err := statefile.JoinShared(ctx, dir, statefile.SharedName(testProduct, testLicense))
		require.NoError(t, err)
		lead, err := holder.TryLead()
		require.NoError(t, err)
		require.True(t, lead)
		f, err := e.startIn(dir, opts...)
		assert.ErrorIs(t, err, ErrClockRollback, "follower")
		assert.False(t, f.Valid())
		_ = f.Close(ctx)
		require.NoError(t, holder.Release())

		r, err = e.startIn(dir, opts...)
		assert.ErrorIs(t, err, ErrClockRollback, "renewer")
		assert.False(t, r.Valid())
		_ = r.Close(ctx)
	})
}
