package statefile

import (
	"bytes"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSlotConformance checks a File's Read, Write, Quarantine and Release
// behaviour.
func TestSlotConformance(t *testing.T) {
	t.Parallel()
	s, err := Acquire(t.TempDir(), "state", 1)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Release() })

	_, err = s.Read()
	requireStateErr(t, err, "read", ErrNotExist)
	name, err := s.Quarantine()
	require.NoError(t, err)
	assert.Empty(t, name, "Quarantine() with nothing stored")

	in := []byte("contents")
	require.NoError(t, s.Write(in))
	in[0] = 'X' // the store keeps its own copy
	got, err := s.Read()
	require.NoError(t, err)
	assert.Equal(t, "contents", string(got))
	got[0] = 'Y'
	got, err = s.Read()
	require.NoError(t, err)
	assert.Equal(t, "contents", string(got), "Read returned shared memory")

	requireStateErr(t, s.Write(make([]byte, MaxSize+1)), "write", nil)
	got, err = s.Read()
	require.NoError(t, err)
	assert.Equal(t, "contents", string(got), "contents after a refused write")

	require.NoError(t, s.Write(nil))
	got, err = s.Read()
	require.NoError(t, err)
	assert.Empty(t, got)

	names := map[string]bool{}
	for i := range 5 {
		require.NoError(t, s.Write([]byte("v"+strconv.Itoa(i))))
		name, err := s.Quarantine()
		require.NoError(t, err)
		assert.Contains(t, name, ".corrupt-")
		assert.False(t, names[name], "Quarantine name %q reused", name)
		names[name] = true
		_, err = s.Read()
		requireStateErr(t, err, "read", ErrNotExist)
	}

	requireReleased(t, s)
}

// TestFileConcurrent checks a File serialises its own callers.
func TestFileConcurrent(t *testing.T) {
	t.Parallel()
	f := acquire(t, t.TempDir(), 1)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				want := bytes.Repeat([]byte{byte('a' + g)}, 1+i)
				if err := f.Write(want); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				got, err := f.Read()
				if err != nil {
					t.Errorf("Read: %v", err)
					return
				}
				if bytes.Count(got, got[:1]) != len(got) {
					t.Errorf("Read() = %q: a torn write", got)
					return
				}
			}
		})
	}
	wg.Wait()
}
