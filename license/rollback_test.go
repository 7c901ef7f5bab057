package license

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

		c, err := e.startIn(dir, opt)
		require.NoError(t, err)
		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		copyDir(t, dir, backup) // "yesterday's copy"

		// Offline until grace is used up.
		time.Sleep(2 * time.Hour)
		c, err = e.startIn(dir, opt)
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
		c, err = e.startIn(dir, opt)
		require.NoError(t, err)
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
		c, err := e.startIn(dir, WithRollbackRecordDir(records))
		require.NoError(t, err)
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		files, _ := filepath.Glob(filepath.Join(records, "rb-*"))
		require.NotEmpty(t, files, "one record per state file")
		for _, f := range files {
			require.NoError(t, os.Remove(f))
		}
		c, err = e.startIn(dir, WithRollbackRecordDir(records))
		require.NoError(t, err)
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
