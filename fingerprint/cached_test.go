package fingerprint

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countCollections counts how often the cpu task runs, i.e. how many collections happened.
func countCollections(n *atomic.Int32) Option {
	return withWrap(func(task string, run taskFunc) taskFunc {
		if task != "cpu" {
			return run
		}
		return func(ctx context.Context) taskResult { n.Add(1); return run(ctx) }
	})
}

func TestCachedWarm(t *testing.T) { // not parallel: AllocsPerRun
	var n atomic.Int32
	c := NewCached(0, withFS(loadFixture(t, "vm")), withoutNetwork(), countCollections(&n))
	assert.Zero(t, n.Load(), "NewCached does no I/O")
	a, err := c.Collect(context.Background())
	require.NoError(t, err)
	b, err := c.Collect(context.Background())
	require.NoError(t, err)
	assert.Same(t, a, b, "warm read returns the cached fingerprint")
	assert.Equal(t, int32(1), n.Load())
	allocs := testing.AllocsPerRun(100, func() { _, _ = c.Collect(context.Background()) })
	assert.Zero(t, allocs, "warm read allocates nothing")

	c.Reset()
	d, err := c.Collect(context.Background())
	require.NoError(t, err)
	assert.NotSame(t, a, d)
	assert.Equal(t, int32(2), n.Load())
}

func TestCachedTTL(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	c := NewCached(time.Nanosecond, withFS(loadFixture(t, "vm")), withoutNetwork(), countCollections(&n))
	_, err := c.Collect(context.Background())
	require.NoError(t, err)
	time.Sleep(time.Millisecond) // let the 1 ns TTL lapse
	_, err = c.Collect(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int32(2), n.Load(), "an expired entry is collected again")

	c = NewCached(time.Hour, withFS(loadFixture(t, "vm")), withoutNetwork())
	a, _ := c.Collect(context.Background())
	b, _ := c.Collect(context.Background())
	assert.Same(t, a, b)
}

func TestCachedSingleFlight(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	release := make(chan struct{})
	slow := withWrap(func(task string, run taskFunc) taskFunc {
		if task != "cpu" {
			return run
		}
		return func(ctx context.Context) taskResult {
			n.Add(1)
			<-release
			return run(ctx)
		}
	})
	c := NewCached(0, withFS(loadFixture(t, "vm")), withoutNetwork(), slow)
	var wg sync.WaitGroup
	got := make([]*Fingerprint, 8)
	for i := range got {
		wg.Go(func() {
			fp, err := c.Collect(context.Background())
			assert.NoError(t, err)
			got[i] = fp
		})
	}
	// Wait until the first collection is under way, then let it finish.
	require.Eventually(t, func() bool { return n.Load() == 1 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	assert.Equal(t, int32(1), n.Load(), "concurrent cold callers share one collection")
	for _, fp := range got {
		assert.Same(t, got[0], fp)
	}
}

func TestCachedDoesNotKeepDegradedResults(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	c := NewCached(0, withFS(loadFixture(t, "vm")), withoutNetwork(), countCollections(&n), withWrap(blockUntilDone("mac")),
		WithComponentTimeout(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	fp, err := c.Collect(ctx)
	require.NoError(t, err)
	assert.Equal(t, TimedOut, reasonOf(fp.MACAddresses))

	// The caller's deadline degraded that result, so it was not cached. (n counts the cpu task of
	// every collection; the mac task blocks until the component deadline.)
	_, _ = c.Collect(context.Background())
	assert.Equal(t, int32(2), n.Load())

	// A waiter whose own context ends stops waiting.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	c2 := NewCached(0, withFS(loadFixture(t, "vm")), withoutNetwork())
	_, err = c2.Collect(ctx)
	assert.ErrorIs(t, err, context.Canceled)

	// Errors are not cached.
	c3 := NewCached(0, WithHashedIdentifiers(nil))
	_, err = c3.Collect(context.Background())
	assert.Error(t, err)
	_, err = c3.Collect(context.Background())
	assert.Error(t, err)
}
