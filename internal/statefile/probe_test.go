package statefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProbe reports held and free slots and their contents, creates
// nothing, and leaves a held lock with its holder.
func TestProbe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	held, err := Acquire(dir, "state", 3)
	require.NoError(t, err)
	t.Cleanup(func() { _ = held.Release() })
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
	again, err := Acquire(dir, "state", 3)
	require.NoError(t, err)
	assert.Equal(t, 1, again.Slot())
	require.NoError(t, again.Release())
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
