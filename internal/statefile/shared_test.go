package statefile

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func join(t *testing.T, dir string) *Shared {
	t.Helper()
	s, err := JoinShared(context.Background(), dir, "shared-x")
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Release() })
	return s
}

// leads calls m.TryLead and fails the test on an error.
func leads(t *testing.T, m *Shared) bool {
	t.Helper()
	ok, err := m.TryLead()
	require.NoError(t, err)
	return ok
}

// alone calls m.Alone and fails the test on an error.
func alone(t *testing.T, m *Shared) bool {
	t.Helper()
	ok, err := m.Alone()
	require.NoError(t, err)
	return ok
}

func TestSharedName(t *testing.T) {
	t.Parallel()
	a := SharedName("prod", "KEY-1")
	assert.Equal(t, BaseName("prod", "KEY-1")+"-shared", a)
	assert.NotEqual(t, a, SharedName("prod", "KEY-2"))
	assert.NotEqual(t, a, SharedName("prod2", "KEY-1"))
	assert.NotContains(t, a, "KEY")
}

// TestSharedLeadership checks that one member leads at a time, only the
// leader writes, and leadership passes on at Release.
func TestSharedLeadership(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := join(t, dir), join(t, dir)
	assert.True(t, leads(t, a))
	assert.False(t, leads(t, b), "two leaders")
	assert.ErrorIs(t, b.Write([]byte("x")), ErrNotLeader)
	_, err := b.Quarantine()
	assert.ErrorIs(t, err, ErrNotLeader)

	require.NoError(t, a.Write([]byte("one")))
	got, err := b.Read()
	require.NoError(t, err)
	assert.Equal(t, "one", string(got))
	assert.False(t, b.Changed())
	require.NoError(t, a.Write([]byte("two")))
	assert.True(t, b.Changed(), "a write shows in a stat")

	require.NoError(t, a.Release())
	require.NoError(t, a.Release(), "idempotent")
	assert.True(t, leads(t, b), "leadership passes on")
	_, err = a.Read()
	assert.ErrorIs(t, err, fs.ErrClosed)
}

// TestSharedAlone checks the last-member test and that a newcomer waits
// while the last member holds membership exclusively.
func TestSharedAlone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := join(t, dir), join(t, dir)
	assert.False(t, alone(t, a), "b is still a member")
	assert.True(t, alone(t, b), "a left")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := JoinShared(ctx, dir, "shared-x")
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "a newcomer waits for the last member: %v", err)
	require.NoError(t, b.Release())
	join(t, dir)
}

func TestSharedInvalid(t *testing.T) {
	t.Parallel()
	_, err := JoinShared(context.Background(), t.TempDir(), "a/b")
	assert.Error(t, err)
	_, err = JoinShared(context.Background(), "", "shared-x")
	assert.Error(t, err)
}

// TestSharedResign checks that a leader that resigns stays a member, can no
// longer write, and lets another member lead.
func TestSharedResign(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := join(t, dir), join(t, dir)
	require.NoError(t, a.Resign(), "not leading: nothing to do")
	require.True(t, leads(t, a))
	require.NoError(t, a.Resign())
	assert.False(t, a.Leading())
	assert.ErrorIs(t, a.Write([]byte("x")), ErrNotLeader)
	assert.True(t, leads(t, b), "another member leads after a resignation")
	assert.False(t, alone(t, b), "the resigned leader is still a member")
	require.NoError(t, a.Release())
}

// TestReadUnlocked reads a file whose lock another holder keeps, with the
// checks of File.Read.
func TestReadUnlocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := Acquire(dir, "rec", 1)
	require.NoError(t, err)
	defer f.Release()
	_, err = ReadUnlocked(dir, "rec")
	assert.ErrorIs(t, err, ErrNotExist)
	require.NoError(t, f.Write([]byte("one")))
	got, err := ReadUnlocked(dir, "rec")
	require.NoError(t, err)
	assert.Equal(t, "one", string(got))
	_, err = ReadUnlocked(dir, "../rec")
	assert.Error(t, err, "a path is not a name")
}
