//go:build unix

package statefile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSpecialFilesAtTheSlotPath puts a FIFO, a symlink and a directory
// where the state file belongs. Read reports each as corrupt at once,
// without blocking or following it, and Quarantine moves it aside.
func TestSpecialFilesAtTheSlotPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
	}{
		{"fifo", func(t *testing.T, path string) { require.NoError(t, syscall.Mkfifo(path, 0o600)) }},
		{"symlink to a valid file", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			require.NoError(t, os.WriteFile(target, []byte("LKST"), 0o600))
			require.NoError(t, os.Symlink(target, path))
		}},
		{"symlink to a fifo", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "fifo")
			require.NoError(t, syscall.Mkfifo(target, 0o600))
			require.NoError(t, os.Symlink(target, path))
		}},
		{"directory", func(t *testing.T, path string) { require.NoError(t, os.Mkdir(path, 0o700)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			f := acquire(t, dir, 1)
			tc.make(t, f.Path())
			_, err := f.Read()
			require.ErrorIs(t, err, ErrCorrupt)
			assert.Contains(t, err.Error(), "not a regular file")
			aside, err := f.Quarantine()
			require.NoError(t, err)
			assert.NotEmpty(t, aside)
			_, err = f.Read()
			assert.ErrorIs(t, err, ErrNotExist)
			require.NoError(t, f.Write([]byte("fresh")))
			got, err := f.Read()
			require.NoError(t, err)
			assert.Equal(t, "fresh", string(got))
		})
	}
}

// TestFIFOAsLockFile puts a FIFO where a slot's lock file belongs: Acquire
// fails with an error instead of hanging.
func TestFIFOAsLockFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "state.lock"), 0o600))
	_, err := Acquire(dir, "state", 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a regular file")
}

// TestProbeSpecialLockFiles puts a FIFO, and symlinks to a held lock file
// and to a FIFO, where a slot's lock file belongs. Probe reports each as a
// lock error at once, without blocking or following the link: a link to a
// held lock must not make the slot look held.
func TestProbeSpecialLockFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
		want string
	}{
		{"fifo", func(t *testing.T, path string) { require.NoError(t, syscall.Mkfifo(path, 0o600)) },
			"not a regular file"},
		{"symlink to a held lock", func(t *testing.T, path string) {
			other := t.TempDir()
			acquire(t, other, 1)
			require.NoError(t, os.Symlink(filepath.Join(other, "state.lock"), path))
		}, ""},
		{"symlink to a fifo", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "fifo")
			require.NoError(t, syscall.Mkfifo(target, 0o600))
			require.NoError(t, os.Symlink(target, path))
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tc.make(t, filepath.Join(dir, "state.lock"))
			type result struct {
				infos []SlotInfo
				err   error
			}
			done := make(chan result, 1)
			go func() {
				infos, err := Probe(dir, "state", 1)
				done <- result{infos, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Probe blocked on a special lock file")
			}
			require.NoError(t, r.err)
			require.Len(t, r.infos, 1)
			assert.False(t, r.infos[0].Held)
			require.Error(t, r.infos[0].LockErr)
			assert.Contains(t, r.infos[0].LockErr.Error(), tc.want)
		})
	}
}
