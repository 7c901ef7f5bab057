package fingerprint

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockUntilDone makes the named task hang until its context ends, like a source stuck in the kernel
// or in WMI.
func blockUntilDone(name string) func(string, taskFunc) taskFunc {
	return func(task string, run taskFunc) taskFunc {
		if task != name {
			return run
		}
		return func(ctx context.Context) taskResult {
			<-ctx.Done()
			return run(ctx)
		}
	}
}

// unblockedRoom is the deadline in tests that block one task and want the others to finish: far
// above a fixture read, which takes tens of milliseconds on a loaded machine or under Wine. A test
// using it lasts that long.
const unblockedRoom = time.Second

func TestComponentTimeout(t *testing.T) {
	t.Parallel()
	fp, err := Collect(context.Background(), withFS(loadFixture(t, "baremetal")), withoutNetwork(),
		WithComponentTimeout(unblockedRoom), withWrap(blockUntilDone("volume")))
	require.NoError(t, err, "a partial fingerprint is not an error")
	require.NotNil(t, fp.VolumeHash.Missing)
	assert.Equal(t, TimedOut, fp.VolumeHash.Missing.Reason)
	assert.ErrorIs(t, fp.VolumeHash.Missing, context.DeadlineExceeded)
	assert.Equal(t, "/dev/disk/by-uuid", fp.VolumeHash.Source, "the planned source is reported")
	assert.True(t, fp.CPUID.Present(), "other components are unaffected")
	assert.True(t, fp.MACAddresses.Present())
}

func TestOverallTimeoutAndCallerDeadline(t *testing.T) {
	t.Parallel()
	// The overall budget caps the component deadline.
	fp, err := Collect(context.Background(), withFS(loadFixture(t, "vm")), withoutNetwork(),
		WithTimeout(20*time.Millisecond), withWrap(blockUntilDone("dmi")))
	require.NoError(t, err)
	for _, n := range []string{NameMBSerial, NameProductUUID, NameBoardSerial} {
		assert.Equal(t, TimedOut, reasonOf(extra(t, fp, n)), n)
	}

	// So does the caller's deadline; the result is still returned.
	ctx, cancel := context.WithTimeout(context.Background(), unblockedRoom)
	defer cancel()
	fp, err = Collect(ctx, withFS(loadFixture(t, "vm")), withoutNetwork(), withWrap(blockUntilDone("mac")))
	require.NoError(t, err)
	assert.Equal(t, TimedOut, reasonOf(fp.MACAddresses))
	assert.True(t, fp.HostName.Present())
}

func TestCollectCancelledContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fp, err := Collect(ctx, withFS(loadFixture(t, "vm")), withoutNetwork())
	assert.Nil(t, fp)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestNoUsableComponent(t *testing.T) {
	t.Parallel()
	empty := func(string, taskFunc) taskFunc {
		return func(context.Context) taskResult { return taskResult{} }
	}
	fp, err := Collect(context.Background(), withFS(loadFixture(t, "vm")), withoutNetwork(), withWrap(empty))
	require.ErrorIs(t, err, ErrNoUsableComponent)
	require.NotNil(t, fp, "the fingerprint comes with the summary error")
	assert.Contains(t, err.Error(), "cpu_id: unsupported")
	for _, c := range fp.Components() {
		assert.False(t, c.Present(), c.Name)
	}
}

func TestCollectOptionErrors(t *testing.T) {
	t.Parallel()
	_, err := Collect(context.Background(), WithHashedIdentifiers(nil), withFS(loadFixture(t, "vm")))
	assert.ErrorContains(t, err, "empty product key")
	_, err = Collect(context.Background(), WithServerAddress("licence.example.com"), withFS(loadFixture(t, "vm")))
	assert.ErrorContains(t, err, "not host:port")
	assert.NotContains(t, err.Error(), "fingerprint: fingerprint")
}

// TestGenericPlatformUnsupported: where only the portable sources exist, every other wire field is
// reported Unsupported rather than silently empty.
func TestGenericPlatformUnsupported(t *testing.T) {
	t.Parallel()
	o := newOptions([]Option{withoutNetwork()})
	tasks := genericTasks(o)
	results := make([]taskResult, len(tasks))
	finished := make([]bool, len(tasks))
	for i, tk := range tasks {
		results[i], finished[i] = tk.run(context.Background()), true
	}
	fp := assemble(tasks, results, finished, context.DeadlineExceeded)
	for _, c := range []Component{fp.CPUID, fp.MBSerial, fp.MACAddresses, fp.VolumeHash} {
		require.NotNil(t, c.Missing, c.Name)
		assert.Equal(t, Unsupported, c.Missing.Reason, c.Name)
	}
	assert.True(t, fp.HostName.Present() || reasonOf(fp.HostName) == Placeholder)

	// darwin reports machine_id this way.
	c := unsupported(NameMachineID, "no machine id", Strong)
	assert.Equal(t, Unsupported, c.Missing.Reason)
	assert.EqualError(t, c.Missing, "fingerprint: machine_id: unsupported: no machine id")
}

func TestWithRootReadsTheTree(t *testing.T) {
	t.Parallel()
	fp, err := Collect(context.Background(), WithRoot(fixtureDir+"/vm/root"), withoutNetwork())
	require.NoError(t, err)
	assert.Equal(t, "vm-build-7", fp.HostName.Value)
	assert.Equal(t, "/proc/sys/kernel/hostname", fp.HostName.Source)
	assert.Equal(t, "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", fp.MBSerial.Value)
	// The fixture keeps its device symlinks in fixture.json, not in git, so a plain root has no bus device.
	assert.Equal(t, NotPresent, reasonOf(fp.MACAddresses))
	assert.Contains(t, fp.MACAddresses.Missing.Error(), "no bus device")
}

func TestIPAddress(t *testing.T) {
	t.Parallel()
	// A UDP connect to an IP literal sends nothing; on a machine without a route it falls back.
	c := localIP(context.Background(), newOptions([]Option{WithServerAddress("127.0.0.1:9")}))
	require.True(t, c.Present(), "%v", c.Missing)
	assert.Equal(t, "127.0.0.1", c.Value)
	assert.Equal(t, "udp connect 127.0.0.1:9", c.Source)

	ip, ok := firstUnicast([]string{"127.0.0.1/8", "::1/128", "fe80::1/64", "169.254.3.4/16", "2001:db8::5/64", "10.1.2.3/8"})
	assert.True(t, ok)
	assert.Equal(t, "10.1.2.3", ip, "global IPv4 first")
	ip, _ = firstUnicast([]string{"fe80::1/64", "2001:db8::5/64"})
	assert.Equal(t, "2001:db8::5", ip)
	ip, _ = firstUnicast([]string{"fe80::1/64", "169.254.3.4/16"})
	assert.Equal(t, "169.254.3.4", ip)
	_, ok = firstUnicast([]string{"127.0.0.1/8", "::1/128", "ff02::1/16", "garbage"})
	assert.False(t, ok)
}

func TestConcurrentCollect(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	count := func(_ string, run taskFunc) taskFunc {
		return func(ctx context.Context) taskResult { calls.Add(1); return run(ctx) }
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := Collect(context.Background(), withFS(loadFixture(t, "baremetal")), withoutNetwork(), withWrap(count))
			errs <- err
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
	assert.Equal(t, int32(8*8), calls.Load(), "8 tasks per collection")
	assert.False(t, errors.Is(nil, ErrNoUsableComponent))
}

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
