package statefile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// acquire locks a slot in dir and releases it at cleanup.
func acquire(t *testing.T, dir string, slots int) *File {
	t.Helper()
	f, err := Acquire(dir, "state", slots)
	require.NoError(t, err, "Acquire(%q, state, %d)", dir, slots)
	t.Cleanup(func() { _ = f.Release() })
	return f
}

// requireStateErr checks err is an *Error for op that matches target.
func requireStateErr(t *testing.T, err error, op string, target error) {
	t.Helper()
	require.Error(t, err)
	var se *Error
	require.True(t, errors.As(err, &se), "error %T %q is not a *statefile.Error", err, err)
	assert.Equal(t, op, se.Op, "Op of %q", err)
	assert.True(t, strings.HasPrefix(err.Error(), "statefile: "), "message %q lacks the package prefix", err)
	if target != nil {
		assert.ErrorIs(t, err, target)
	}
}

// names lists the file names in dir that start with prefix, sorted.
func names(t *testing.T, dir, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

func TestFileRoundTrip(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b") // parents created too
	f := acquire(t, dir, 1)
	assert.Equal(t, 0, f.Slot())
	assert.Equal(t, filepath.Join(dir, "state"), f.Path())

	_, err := f.Read()
	requireStateErr(t, err, "read", ErrNotExist)

	for _, want := range [][]byte{[]byte("first contents, longer"), []byte("short"), {}, bytes.Repeat([]byte{0xA5}, MaxSize)} {
		require.NoError(t, f.Write(want))
		got, err := f.Read()
		require.NoError(t, err)
		require.True(t, bytes.Equal(got, want), "Read() = %d bytes; want the %d written", len(got), len(want))
	}
	require.NoError(t, f.Write([]byte("kept")))
	assert.Empty(t, names(t, dir, "state.tmp-"), "temporary files left behind")

	if runtime.GOOS != "windows" {
		st, err := os.Stat(f.Path())
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), st.Mode().Perm(), "state file mode")
		st, err = os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o700), st.Mode().Perm(), "created directory mode")
	}

	require.NoError(t, f.Release())
	g := acquire(t, dir, 1)
	got, err := g.Read()
	require.NoError(t, err)
	assert.Equal(t, "kept", string(got), "contents after re-acquire")
}

func TestFileWriteTooLarge(t *testing.T) {
	t.Parallel()
	f := acquire(t, t.TempDir(), 1)
	require.NoError(t, f.Write([]byte("old")))
	err := f.Write(make([]byte, MaxSize+1))
	requireStateErr(t, err, "write", nil)
	got, err := f.Read()
	require.NoError(t, err)
	assert.Equal(t, "old", string(got))
}

func TestFileReadBounded(t *testing.T) {
	t.Parallel()
	f := acquire(t, t.TempDir(), 1)
	require.NoError(t, os.WriteFile(f.Path(), make([]byte, MaxSize+1), 0o600))
	_, err := f.Read()
	requireStateErr(t, err, "read", ErrCorrupt)

	// A directory where the state file should be is corrupt state too.
	require.NoError(t, os.Remove(f.Path()))
	require.NoError(t, os.Mkdir(f.Path(), 0o700))
	_, err = f.Read()
	requireStateErr(t, err, "read", ErrCorrupt)
}

// TestFileCrashBeforeRename kills a writer between its temporary write and
// the rename, then checks the next Acquire removes the temporary file and
// the old contents survived.
func TestFileCrashBeforeRename(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, code := runChild(t, "crash-before-rename", dir, 1)
	require.Equal(t, crashExitCode, code, "helper exit code; stdout %q", out)

	temps := names(t, dir, "state.tmp-")
	require.Len(t, temps, 1, "the crashed writer should leave its temporary file")
	tmp, err := os.ReadFile(filepath.Join(dir, temps[0]))
	require.NoError(t, err)
	assert.Equal(t, "new", string(tmp), "temporary file contents")

	f := acquire(t, dir, 1)
	assert.Empty(t, names(t, dir, "state.tmp-"), "Acquire left the stale temporary file")
	got, err := f.Read()
	require.NoError(t, err)
	assert.Equal(t, "old", string(got), "contents after the crash")
}

// TestFileStaleTempsOtherSlots checks Acquire removes only its own slot's
// temporary files: another slot's may belong to a live writer.
func TestFileStaleTempsOtherSlots(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"state":             "old",
		"state.tmp-123":     "partial",
		"state.tmp-456":     "",
		"state-1.tmp-789":   "other slot",
		"statefile.tmp-000": "other base",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
	}
	f := acquire(t, dir, 2)
	require.Equal(t, 0, f.Slot())
	assert.Empty(t, names(t, dir, "state.tmp-"))
	assert.Equal(t, []string{"state-1.tmp-789"}, names(t, dir, "state-1.tmp-"))
	assert.Equal(t, []string{"statefile.tmp-000"}, names(t, dir, "statefile."))
	got, err := f.Read()
	require.NoError(t, err)
	assert.Equal(t, "old", string(got))
}

func TestFileWriteFailureKeepsContents(t *testing.T) {
	t.Parallel()
	t.Run("hook before rename", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		f := acquire(t, dir, 1)
		require.NoError(t, f.Write([]byte("old")))
		boom := errors.New("injected failure")
		var sawTemp bool
		f.beforeRename = func(tmp string) error {
			b, err := os.ReadFile(tmp)
			sawTemp = err == nil && string(b) == "new"
			return boom
		}
		err := f.Write([]byte("new"))
		requireStateErr(t, err, "write", boom)
		assert.True(t, sawTemp, "the hook did not see the written temporary file")
		assert.Empty(t, names(t, dir, "state.tmp-"), "temporary file not removed")
		f.beforeRename = nil
		got, err := f.Read()
		require.NoError(t, err)
		assert.Equal(t, "old", string(got))
	})
	t.Run("rename onto a non-empty directory", func(t *testing.T) {
		// A real OS failure that even root cannot override.
		t.Parallel()
		dir := t.TempDir()
		f := acquire(t, dir, 1)
		require.NoError(t, os.MkdirAll(filepath.Join(f.Path(), "inside"), 0o700))
		err := f.Write([]byte("new"))
		requireStateErr(t, err, "write", nil)
		assert.NotContains(t, err.Error(), dir, "error names the directory")
		assert.Empty(t, names(t, dir, "state.tmp-"), "temporary file not removed")
		st, err := os.Stat(filepath.Join(f.Path(), "inside"))
		require.NoError(t, err)
		assert.True(t, st.IsDir())
	})
}

func TestFileReadOnlyDirectory(t *testing.T) {
	t.Parallel()
	t.Run("directory under a file", func(t *testing.T) {
		// Creating the directory fails with ENOTDIR, for root too.
		t.Parallel()
		parent := t.TempDir()
		file := filepath.Join(parent, "file")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		f, err := Acquire(filepath.Join(file, "state-dir"), "state", 1)
		require.Nil(t, f)
		requireStateErr(t, err, "acquire", nil)
		assert.NotErrorIs(t, err, ErrLocked)
		assert.NotContains(t, err.Error(), parent, "error names the directory")
		if runtime.GOOS != "windows" {
			assert.ErrorIs(t, err, syscall.ENOTDIR)
		}
	})
	t.Run("chmod 0500", func(t *testing.T) {
		t.Parallel()
		if runtime.GOOS == "windows" {
			t.Skip("skipping: Windows has no POSIX directory modes")
		}
		if os.Geteuid() == 0 {
			t.Skip("skipping: running as root, which ignores directory modes; " +
				"the ENOTDIR and rename-onto-directory cases still check the typed error")
		}
		dir := t.TempDir()
		f := acquire(t, dir, 1)
		require.NoError(t, f.Write([]byte("old")))
		require.NoError(t, f.Release())

		require.NoError(t, os.Chmod(dir, 0o500))
		t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })

		// The lock file exists, so the slot can still be locked and read.
		g := acquire(t, dir, 1)
		got, err := g.Read()
		require.NoError(t, err)
		assert.Equal(t, "old", string(got))
		err = g.Write([]byte("new"))
		requireStateErr(t, err, "write", fs.ErrPermission)
		got, err = g.Read()
		require.NoError(t, err)
		assert.Equal(t, "old", string(got))

		// A slot without a lock file cannot be created.
		_, err = Acquire(dir, "other", 1)
		requireStateErr(t, err, "acquire", fs.ErrPermission)
	})
}

func TestAcquireSlots(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := acquire(t, dir, 2)
	b := acquire(t, dir, 2)
	assert.Equal(t, 0, a.Slot())
	assert.Equal(t, 1, b.Slot(), "second Acquire in one process")
	assert.Equal(t, filepath.Join(dir, "state-1"), b.Path())

	_, err := Acquire(dir, "state", 2)
	requireStateErr(t, err, "acquire", ErrLocked)
	for _, slots := range []int{0, -1} {
		_, err := Acquire(dir, "state", slots)
		requireStateErr(t, err, "acquire", ErrLocked)
	}

	// Slots keep separate contents.
	require.NoError(t, a.Write([]byte("zero")))
	require.NoError(t, b.Write([]byte("one")))
	got, err := b.Read()
	require.NoError(t, err)
	assert.Equal(t, "one", string(got))

	require.NoError(t, a.Release())
	require.NoError(t, a.Release(), "second Release")
	c := acquire(t, dir, 2)
	assert.Equal(t, 0, c.Slot(), "slot freed by Release")
	got, err = c.Read()
	require.NoError(t, err)
	assert.Equal(t, "zero", string(got))

	// Another base in the same directory is independent.
	d, err := Acquire(dir, "other", 1)
	require.NoError(t, err)
	assert.Equal(t, 0, d.Slot())
	require.NoError(t, d.Release())
}

func TestAcquireInvalid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, base := range []string{"", ".", "..", "a/b", `a\b`, "a\x00b"} {
		f, err := Acquire(dir, base, 1)
		assert.Nil(t, f, "Acquire(dir, %q, 1)", base)
		requireStateErr(t, err, "acquire", nil)
	}
	f, err := Acquire("", "state", 1)
	assert.Nil(t, f)
	requireStateErr(t, err, "acquire", nil)
}

func TestFileAfterRelease(t *testing.T) {
	t.Parallel()
	f, err := Acquire(t.TempDir(), "state", 1)
	require.NoError(t, err)
	require.NoError(t, f.Write([]byte("x")))
	requireReleased(t, f)
}

// requireReleased releases s twice and checks that it is closed for use.
func requireReleased(t *testing.T, s *File) {
	t.Helper()
	require.NoError(t, s.Release())
	require.NoError(t, s.Release(), "second Release")
	_, err := s.Read()
	requireStateErr(t, err, "read", fs.ErrClosed)
	requireStateErr(t, s.Write([]byte("y")), "write", fs.ErrClosed)
	_, err = s.Quarantine()
	requireStateErr(t, err, "quarantine", fs.ErrClosed)
}

// TestAcquireOtherProcess checks the lock holds across processes, and that
// a process dying with a slot held frees it.
func TestAcquireOtherProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := acquire(t, dir, 1)
	require.Equal(t, 0, f.Slot())

	out, code := runChild(t, "acquire", dir, 1)
	assert.Equal(t, "locked", out, "child with one slot while the parent holds it (exit %d)", code)
	out, code = runChild(t, "acquire", dir, 2)
	assert.Equal(t, "slot 1", out, "child with two slots (exit %d)", code)

	require.NoError(t, f.Release())
	out, code = runChild(t, "acquire", dir, 1)
	assert.Equal(t, "slot 0", out, "child after the parent released (exit %d)", code)

	out, code = runChild(t, "die-holding", dir, 1)
	require.Equal(t, "slot 0", out, "child that exits holding the slot (exit %d)", code)
	g := acquire(t, dir, 1)
	assert.Equal(t, 0, g.Slot(), "slot of a dead process")
}

func TestFileQuarantine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Another slot's quarantined file must survive this slot's rotation.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "state-1.corrupt-1"), []byte("other"), 0o600))
	f := acquire(t, dir, 1)

	name, err := f.Quarantine()
	require.NoError(t, err, "Quarantine() with no file")
	assert.Empty(t, name)

	var moved []string
	for _, body := range []string{"v0", "v1", "v2", "v3", "v4"} {
		require.NoError(t, f.Write([]byte(body)))
		name, err := f.Quarantine()
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(name, "state.corrupt-"), "Quarantine() = %q", name)
		assert.NotContains(t, moved, name, "name reused")
		moved = append(moved, name)
		_, err = f.Read()
		requireStateErr(t, err, "read", ErrNotExist)
	}
	kept := names(t, dir, "state.corrupt-")
	assert.ElementsMatch(t, moved[2:], kept, "kept quarantined files")
	for i, name := range moved[2:] {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.Equal(t, []string{"v2", "v3", "v4"}[i], string(b), "contents of %s", name)
	}
	assert.Equal(t, []string{"state-1.corrupt-1"}, names(t, dir, "state-1."))
}

// TestProbe reports held and free slots and their contents, creates
// nothing, and leaves a held lock with its holder.
func TestProbe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	held := acquire(t, dir, 3)
	require.NoError(t, held.Write([]byte("sealed-bytes")))
	free, err := Acquire(dir, "state", 3)
	require.NoError(t, err)
	require.NoError(t, free.Write([]byte("other")))
	require.NoError(t, free.Release())
	before, err := os.ReadDir(dir)
	require.NoError(t, err)

	infos, err := Probe(dir, "state", 3)
	require.NoError(t, err)
	require.Len(t, infos, 3)
	assert.True(t, infos[0].Held)
	assert.Equal(t, []byte("sealed-bytes"), infos[0].Data)
	assert.False(t, infos[1].Held)
	assert.Equal(t, []byte("other"), infos[1].Data)
	assert.False(t, infos[2].Held)
	assert.ErrorIs(t, infos[2].ReadErr, ErrNotExist)
	for _, in := range infos {
		assert.NoError(t, in.LockErr)
	}

	after, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Equal(t, len(before), len(after), "Probe created or removed a file")

	// The holder keeps its slot; the probed free slot is free again.
	require.NoError(t, held.Write([]byte("still mine")))
	assert.Equal(t, 1, acquire(t, dir, 3).Slot())
}

// TestProbeBadDir: a missing directory and a file in its place.
func TestProbeBadDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := Probe(filepath.Join(dir, "missing"), "state", 1)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = Probe(file, "state", 1)
	assert.ErrorIs(t, err, ErrNotDir)
	_, err = Probe(dir, "../x", 1)
	assert.Error(t, err)
	assert.False(t, errors.Is(err, ErrNotDir))
}
