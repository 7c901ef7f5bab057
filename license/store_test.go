package license

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/statefile"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// Tests of the store (store.go, record.go): the offline budget, the record
// location, refusals per licence, and the save path's invariants.

// sawtoothSession and sawtoothGrace are the control options of the clock
// sawtooth of issue 20: 4 s of session and 4 s of grace.
const (
	sawtoothSession = 4 * time.Second
	sawtoothGrace   = 4 * time.Second
)

// TestOfflineClockSawtoothWithinRun: a run started offline (on a live
// persisted session) whose wall clock is set back by a little, again and
// again (less than the rollback slack each time, 10 times), leaves Valid
// once the session and grace the server granted are used up, measured on
// the monotonic clock. Before the offline budget, such a run stayed Active
// for ever.
func TestOfflineClockSawtoothWithinRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, dir, opt := newDirEnv(t, envConfig{session: sawtoothSession, grace: sawtoothGrace})
		c := e.mustStartIn(dir, opt)
		word := time.Now() // the server's last word
		e.srv.SetDown(true)
		crash(c) // keep the live session in the state

		c = e.mustStartIn(dir, opt)
		require.True(t, c.Valid(), "the persisted session is live")
		for range 10 {
			time.Sleep(time.Second)
			e.wall.jump(-time.Second) // well within rollbackSlack
			used := time.Since(word)
			if used >= sawtoothSession+sawtoothGrace {
				assert.False(t, c.Valid(), "valid after %v of offline use; the server granted %v",
					used, sawtoothSession+sawtoothGrace)
			}
		}
		require.Greater(t, time.Since(word), sawtoothSession+sawtoothGrace, "the test ran past the allowance")
		assert.Equal(t, Expired, c.Status().State)
		assert.ErrorIs(t, c.Status().Reason, ErrGraceExpired)
	})
}

// TestOfflineClockSawtoothAcrossRestarts: the same sawtooth with a restart
// at every step, after a Close or after a crash: the budget used is saved
// at every state change and every minute offline (and a restart after a
// crash charges one save interval), so no restart gains anything. Total
// offline use never exceeds the session and grace the server granted.
func TestOfflineClockSawtoothAcrossRestarts(t *testing.T) {
	for _, crashes := range []bool{false, true} {
		name := "close"
		if crashes {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, dir, opt := newDirEnv(t, envConfig{session: sawtoothSession, grace: sawtoothGrace})
				c := e.mustStartIn(dir, opt)
				word := time.Now()
				e.srv.SetDown(true)
				crash(c)

				valid := 0
				for i := range 10 {
					c, err := e.startIn(dir, opt)
					if c.Valid() {
						valid++
						assert.NoError(t, err)
					}
					time.Sleep(time.Second)
					used := time.Since(word)
					if used >= sawtoothSession+sawtoothGrace {
						assert.False(t, c.Valid(), "restart %d: valid after %v of offline use; the server granted %v",
							i, used, sawtoothSession+sawtoothGrace)
					}
					if crashes {
						crash(c)
					} else {
						_ = c.Close(context.Background())
					}
					e.wall.jump(-time.Second) // well within rollbackSlack
				}
				require.Greater(t, time.Since(word), sawtoothSession+sawtoothGrace, "the test ran past the allowance")
				assert.Positive(t, valid, "the first offline restart is valid")
			})
		})
	}
}

// TestSuspendResume simulates a suspend: the monotonic clock stops and the
// wall clock jumps. The documented outcome (docs/security.md): suspended
// time counts as offline time, as time with the machine off does; a client
// that can reach the server renews at once on resume, so a suspend costs it
// nothing; an offline one is in Grace or Expired by the time that passed.
func TestSuspendResume(t *testing.T) {
	t.Run("online", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			c := e.start()
			begins := e.srv.Count("begin_session") + e.srv.Count("extend_session")
			e.wall.jump(3 * time.Hour) // suspended for longer than session and grace
			time.Sleep(maxSleep + time.Second)
			assert.Equal(t, Active, c.Status().State, "renewed on resume")
			assert.Greater(t, e.srv.Count("begin_session")+e.srv.Count("extend_session"), begins)
			assert.GreaterOrEqual(t, c.Status().GraceDeadline.Sub(e.wall.now()), time.Hour, "the whole grace is left")
		})
	})
	t.Run("offline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e, dir, opt := newDirEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			c := e.mustStartIn(dir, opt)
			e.srv.SetDown(true)
			e.wall.jump(30 * time.Minute) // suspended offline
			assert.Equal(t, Grace, c.Status().State, "the suspend counts as offline time")
			left := c.Status().GraceDeadline.Sub(e.wall.now())
			assert.InDelta(t, float64(40*time.Minute), float64(left), float64(time.Second))
			// The budget survives a restart.
			_ = c.Close(context.Background())
			c = e.mustStartIn(dir, opt)
			assert.Equal(t, Grace, c.Status().State)
			e.wall.jump(time.Hour) // suspended past the grace
			assert.Equal(t, Expired, c.Status().State)
		})
	})
}

// breakRecord makes the record location unusable in one of three ways and
// returns a function that undoes it (nil when the client repairs it).
func breakRecord(t *testing.T, how, records string) (restore func()) {
	t.Helper()
	switch how {
	case "file-for-dir":
		aside := records + ".aside"
		require.NoError(t, os.Rename(records, aside))
		require.NoError(t, os.WriteFile(records, []byte("not a directory"), 0o600))
		return func() {
			require.NoError(t, os.Remove(records))
			require.NoError(t, os.Rename(aside, records))
		}
	case "unreadable":
		require.NoError(t, os.Chmod(records, 0))
		return func() { require.NoError(t, os.Chmod(records, 0o700)) }
	case "record-is-dir":
		// Unreadable even for root: a directory where the record belongs.
		files, _ := filepath.Glob(filepath.Join(records, "rb-*[0-9a-f]"))
		require.NotEmpty(t, files)
		for _, f := range files {
			require.NoError(t, os.Remove(f))
			require.NoError(t, os.Mkdir(f, 0o700))
		}
		return nil
	case "corrupt":
		files, _ := filepath.Glob(filepath.Join(records, "rb-*[0-9a-f]"))
		require.NotEmpty(t, files)
		for _, f := range files {
			require.NoError(t, os.WriteFile(f, []byte("LKST\x01garbage that does not open at all......."), 0o600))
		}
		return nil
	}
	t.Fatalf("unknown way %q", how)
	return nil
}

// TestRecordLocationUnusable: a record location that exists but cannot be
// used is not "no record": an offline start from the persisted state is
// not Valid and says why (ErrRollbackRecordUnusable); an online start is
// Active; once the location works again, offline grace comes back only
// after the next online success. (The doctor's finding is tested in
// license/doctor: TestRecordLocationUnusable there.)
func TestRecordLocationUnusable(t *testing.T) {
	for _, how := range []string{"file-for-dir", "unreadable", "record-is-dir", "corrupt"} {
		t.Run(how, func(t *testing.T) {
			if how == "unreadable" && os.Geteuid() == 0 {
				t.Skip("root reads a directory without permission")
			}
			if how == "unreadable" && runtime.GOOS == "windows" {
				t.Skip("Windows has no POSIX permissions: chmod 0 only sets the read-only attribute (record-is-dir covers an unreadable record)")
			}
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				dir, records := t.TempDir(), filepath.Join(t.TempDir(), "records")
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				opt := WithRollbackRecordDir(records)
				c := e.mustStartIn(dir, opt)
				e.srv.SetDown(true)
				_ = c.Close(ctx)

				restore := breakRecord(t, how, records)
				c, err := e.startIn(dir, opt)
				require.Error(t, err, "offline start from persisted state without a usable record")
				assert.ErrorIs(t, err, ErrRollbackRecordUnusable)
				assert.False(t, c.Valid())
				_ = c.Close(ctx)

				if restore != nil {
					// Online start works while the location refuses.
					e.srv.SetDown(false)
					c = e.mustStartIn(dir, opt)
					assert.Equal(t, Active, c.Status().State)
					e.srv.SetDown(true)
					_ = c.Close(ctx)
					restore()
				}

				// The location works again; the state saved meanwhile still
				// grants nothing offline.
				c, err = e.startIn(dir, opt)
				require.Error(t, err, "offline grace came back before the server answered")
				assert.ErrorIs(t, err, ErrRollbackRecordUnusable)
				assert.False(t, c.Valid())
				_ = c.Close(ctx)

				// The next online success brings it back.
				e.srv.SetDown(false)
				c = e.mustStartIn(dir, opt)
				e.srv.SetDown(true)
				_ = c.Close(ctx)
				c = e.mustStartIn(dir, opt)
				assert.True(t, c.Valid(), "offline grace after an online success")
			})
		})
	}
}

// TestRefusalSeenByEverySlot: after a revocation, a client holding slot 0
// makes the next start use slot 1, whose own state still holds a live
// session: it is refused all the same, offline.
func TestRefusalSeenByEverySlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		dir, records := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opts := []Option{WithRollbackRecordDir(records), WithStateSlots(2)}
		a := e.mustStartIn(dir, opts...)
		b := e.mustStartIn(dir, opts...)
		require.NotEqual(t, a.store.slot.Slot(), b.store.slot.Slot())
		e.srv.SetDown(true)
		_ = a.Close(ctx)
		_ = b.Close(ctx) // both slots keep a live session and grace

		e.srv.SetDown(false)
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		held, err := e.startIn(dir, opts...)
		require.ErrorIs(t, err, ErrRevoked)
		require.Equal(t, 0, held.store.slot.Slot())

		e.srv.SetDown(true)
		c, err := e.startIn(dir, opts...)
		require.Equal(t, 1, c.store.slot.Slot())
		require.Error(t, err, "slot 1 granted offline use after the licence was refused")
		assert.ErrorIs(t, err, ErrRefused)
		assert.False(t, c.Valid())
		_ = c.Close(ctx)
		_ = held.Close(ctx)

		// A sealed success in slot 0 clears it for every slot: slot 1's own
		// copy of the refusal is older than the success.
		e.srv.SetDown(false)
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Active))
		c = e.mustStartIn(dir, opts...)
		require.Equal(t, 0, c.store.slot.Slot())
		e.srv.SetDown(true)
		c1, err := e.startIn(dir, opts...)
		require.Equal(t, 1, c1.store.slot.Slot())
		require.NoError(t, err, "slot 1 after the licence was cleared")
		assert.True(t, c1.Valid())
	})
}

// TestRefusalSeenBySharedFollower: a refusal saved by one client of the
// licence (here in normal mode) reaches a shared-mode process restarted
// offline while the renewer still runs on the shared session the refusal
// did not touch: the follower is refused, not Active.
func TestRefusalSeenBySharedFollower(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		dir, records := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		r := e.mustStartIn(dir, sharedIn(records)...)
		f := e.mustStartIn(dir, sharedIn(records)...)
		require.Equal(t, Follower, f.Shared().Role)

		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		other, err := e.startIn(dir, WithRollbackRecordDir(records))
		require.ErrorIs(t, err, ErrRevoked)
		_ = other.Close(ctx)

		e.srv.SetDown(true)
		_ = f.Close(ctx)
		f, err = e.startIn(dir, sharedIn(records)...)
		require.Error(t, err, "a follower restarted offline used a refused licence")
		assert.ErrorIs(t, err, ErrRefused)
		assert.False(t, f.Valid())
		_ = f.Close(ctx)
		_ = r.Close(ctx)
	})
}

// TestCorruptStateIsNotRestored: an offline restart with a corrupt state
// file says that the state was corrupt, not that it was restored from a
// copy.
func TestCorruptStateIsNotRestored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, dir, opt := newDirEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.mustStartIn(dir, opt)
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		require.NoError(t, os.WriteFile(filepath.Join(dir, stateBase), []byte("LKST\x01 damaged beyond use ........"), 0o600))

		_, err := e.startIn(dir, opt)
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrStateCorrupt)
		assert.NotErrorIs(t, err, ErrStateRollback)
		assert.NotContains(t, err.Error(), "restored from a copy")
	})
}

// TestStartWithEndedContext: Start given a context that has already ended
// sends nothing and says so, with the context's own error.
func TestStartWithEndedContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		c := e.newClient(e.config())
		defer c.Close(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := c.Start(ctx)
		require.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "nothing was sent")
		assert.NotContains(t, err.Error(), "unreachable")
		assert.NotContains(t, err.Error(), "fingerprint")
		assert.Zero(t, len(e.srv.Requests()), "nothing was sent")
		require.NoError(t, c.Start(context.Background()), "Start may be retried")
	})
}

// readSealed opens the sealed file dir/name with the test machine's key.
func readSealed(t *testing.T, dir, name string, aad []byte) []byte {
	t.Helper()
	blob, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	plain, err := statefile.Open(sealKey(&Config{ProductGUID: testProduct, LicenseKey: testLicense}, testFingerprint()), aad, blob)
	require.NoError(t, err)
	return plain
}

// TestSnapshotRestoreGainsTimeLeft documents the limit of everything kept
// on the machine: a VM snapshot restore brings back the state, the record
// and the clock together, and with them the offline time left at the
// snapshot, every time. Only contact with the server bounds it.
func TestSnapshotRestoreGainsTimeLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, records := t.TempDir(), t.TempDir()
		snapDir, snapRecords := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opt := WithRollbackRecordDir(records)
		c := e.mustStartIn(dir, opt)
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		copyDir(t, dir, snapDir) // the snapshot
		copyDir(t, records, snapRecords)
		snapAt := time.Now()

		for range 2 {
			time.Sleep(2 * time.Hour)
			c, err := e.startIn(dir, opt)
			require.ErrorIs(t, err, ErrGraceExpired)
			_ = c.Close(context.Background())

			// Restore the snapshot: files and clock.
			copyDir(t, snapDir, dir)
			copyDir(t, snapRecords, records)
			e.wall.jump(-time.Since(snapAt))
			snapAt = time.Now()
			c = e.mustStartIn(dir, opt)
			assert.True(t, c.Valid(), "the snapshot's offline time is back")
			_ = c.Close(context.Background())
			copyDir(t, snapDir, dir) // as the snapshot had it, for the next round
			copyDir(t, snapRecords, records)
		}
	})
}

// copyDir copies the regular files of src into dst (a backup or a restore).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dst, 0o700))
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600))
	}
}

// TestRestoredStateAndClockSetBackGrantNoGrace: with grace used up,
// restoring yesterday's copy of the whole state directory and setting the
// clock back grants no grace, because the anti-rollback record outside the
// directory is ahead of the restored state. Online start still works.
func TestRestoredStateAndClockSetBackGrantNoGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, backup, records := t.TempDir(), t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opt := WithRollbackRecordDir(records)

		c := e.mustStartIn(dir, opt)
		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		copyDir(t, dir, backup) // "yesterday's copy"

		// Offline until grace is used up.
		time.Sleep(2 * time.Hour)
		c, err := e.startIn(dir, opt)
		require.ErrorIs(t, err, ErrGraceExpired)
		_ = c.Close(context.Background())

		// The attack: restore the copy and set the clock back.
		copyDir(t, backup, dir)
		e.wall.jump(-2 * time.Hour)
		c, err = e.startIn(dir, opt)
		require.Error(t, err, "a restored state plus a clock set back granted grace")
		assert.ErrorIs(t, err, ErrStateRollback)
		assert.False(t, c.Valid())
		assert.NotEqual(t, Grace, c.Status().State)
		_ = c.Close(context.Background())

		// Repeatable: still nothing on the next try.
		copyDir(t, backup, dir)
		c, err = e.startIn(dir, opt)
		require.ErrorIs(t, err, ErrStateRollback)
		_ = c.Close(context.Background())

		// Online start still works, and re-syncs the record.
		e.wall.jump(2 * time.Hour)
		e.srv.SetDown(false)
		c = e.mustStartIn(dir, opt)
		assert.Equal(t, Active, c.Status().State)
		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		c, err = e.startIn(dir, opt)
		require.NoError(t, err, "after an online start the state is current again")
		assert.True(t, c.Valid(), "offline time granted")
	})
}

// TestRollbackRecordRecreated: a missing record is re-created from the state
// (and logged). A location that exists but refuses is not "no record":
// see TestRecordLocationUnusable.
func TestRollbackRecordRecreated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, records := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.mustStartIn(dir, WithRollbackRecordDir(records))
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		files, _ := filepath.Glob(filepath.Join(records, "rb-*"))
		require.NotEmpty(t, files, "one record per state file")
		for _, f := range files {
			require.NoError(t, os.Remove(f))
		}
		c = e.mustStartIn(dir, WithRollbackRecordDir(records))
		assert.True(t, c.Valid(), "offline time granted")
		_ = c.Close(context.Background())
		files, _ = filepath.Glob(filepath.Join(records, "rb-*"))
		assert.NotEmpty(t, files, "re-created")
	})
}

// TestRollbackRecordWithStore: the record also guards a custom store when
// its directory is given.
func TestRollbackRecordWithStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		records := t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start(WithRollbackRecordDir(records))
		old := e.store.Bytes()
		time.Sleep(2 * time.Minute)
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		_ = e.store.Save(context.Background(), old)
		c2 := e.newClient(e.config(), WithRollbackRecordDir(records))
		defer c2.Close(context.Background())
		assert.ErrorIs(t, c2.Start(context.Background()), ErrStateRollback)
	})
}
