package license

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/license/licensetest"
)

// soakEnv reads an optional override of a soak parameter.
func soakEnv[T any](t *testing.T, name string, def T, parse func(string) (T, error)) T {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := parse(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// soakModes are the two soak runs:
//   - shared-secret: shared-secret envelopes, a fixed fingerprint per client
//     (nothing collected) and state in memory: the client and server alone;
//   - public-key: the SDK's default configuration, HPKE envelopes with
//     sealed replies, the real fingerprint of this machine (collected by
//     each client and cached, as by default) and a real state directory per
//     client, so that every state change is an fsync'd atomic write.
var soakModes = []struct {
	name        string
	defaultMode bool
}{{"shared-secret", false}, {"public-key", true}}

// TestSoak runs many clients in one process against one loopback mock
// server, in real time, and checks that nothing fails, that each client
// renews at most twice per session, and that the heap stays bounded. It
// runs once per soak mode (LICENSEKIT_SOAK_MODE selects one). It is skipped
// unless LICENSEKIT_SOAK=1 (scripts/soak sets it). The defaults are those
// of issue 7: 1,000 clients, a 2 s session, 30 s; override them with
// LICENSEKIT_SOAK_CLIENTS, LICENSEKIT_SOAK_SESSION and
// LICENSEKIT_SOAK_DURATION.
func TestSoak(t *testing.T) {
	if os.Getenv("LICENSEKIT_SOAK") != "1" {
		t.Skip("set LICENSEKIT_SOAK=1 to run the soak (scripts/soak)")
	}
	only := os.Getenv("LICENSEKIT_SOAK_MODE")
	for _, m := range soakModes {
		if only != "" && only != m.name {
			continue
		}
		t.Run(m.name, func(t *testing.T) { soak(t, m.name, m.defaultMode) })
	}
}

// soak is one soak run; defaultMode selects the public-key run described
// at soakModes.
func soak(t *testing.T, mode string, defaultMode bool) {
	n := soakEnv(t, "LICENSEKIT_SOAK_CLIENTS", 1000, strconv.Atoi)
	session := soakEnv(t, "LICENSEKIT_SOAK_SESSION", 2*time.Second, time.ParseDuration)
	duration := soakEnv(t, "LICENSEKIT_SOAK_DURATION", 30*time.Second, time.ParseDuration)
	const heapLimit = 512 << 20

	srv := licensetest.NewServer(&licensetest.Config{MaxRequests: -1})
	defer srv.Close()
	if err := srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, Seats: 0,
		SessionDuration: session, GracePeriod: time.Minute, Features: "pro"}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, SharedSecret: srv.Info().Secret,
		ProductGUID: testProduct, LicenseKey: testLicense}
	stateRoot := ""
	if defaultMode {
		cfg.SharedSecret, cfg.ServerPublicKey = nil, srv.Info().PublicKey.EncodeBase64()
		stateRoot = t.TempDir()
	}

	var renewed, renewFailed, leftActive atomic.Int64
	handler := func(e Event) {
		switch {
		case e.Type == EventRenewed:
			renewed.Add(1)
		case e.Type == EventRenewFailed:
			renewFailed.Add(1)
		case e.Type == EventStateChanged && e.Previous == Active && e.State != Ended:
			leftActive.Add(1)
		}
	}

	// Start every client, a few at a time, each with its own transport.
	// In shared-secret mode each is its own machine (a fixed fingerprint,
	// so nothing is collected) and keeps state in memory. In public-key
	// mode each collects this machine's fingerprint and keeps its state in
	// a directory of its own.
	clients := make([]*Client, n)
	var startErrs atomic.Int64
	var firstErr atomic.Value
	begun := time.Now()
	parallel(n, 8, func(i int) {
		opts := []Option{WithEventHandler(handler)}
		ccfg := cfg
		if defaultMode {
			ccfg.StateDir = filepath.Join(stateRoot, strconv.Itoa(i))
		} else {
			fp := testFingerprint()
			fp.MBSerial.Value = fmt.Sprintf("soak-board-%05d", i)
			fp.Extra[0].Value = fp.MBSerial.Value
			opts = append(opts, fixedFingerprint(fp), WithStateStore(&MemoryStateStore{}))
		}
		c, err := New(ccfg, opts...)
		if err == nil {
			err = c.Start(context.Background())
		}
		if err != nil {
			startErrs.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}
		clients[i] = c
	})
	startTime := time.Since(begun)
	defer parallel(n, 8, func(i int) {
		if clients[i] != nil {
			_ = clients[i].Close(context.Background())
		}
	})
	if startErrs.Load() > 0 {
		t.Fatalf("%d of %d clients failed to start; first: %v", startErrs.Load(), n, firstErr.Load())
	}

	// The window: count the server's work, sample the heap every second.
	extends0, begins0, all0 := srv.Count(licensetest.Extend), srv.Count(licensetest.Begin), srv.Count("")
	failed0 := renewFailed.Load()
	var heap []uint64
	var maxG int
	var ms runtime.MemStats
	tick := time.NewTicker(time.Second)
	deadline := time.Now().Add(duration)
	for time.Now().Before(deadline) {
		<-tick.C
		runtime.ReadMemStats(&ms)
		heap = append(heap, ms.HeapAlloc)
		maxG = max(maxG, runtime.NumGoroutine())
	}
	tick.Stop()
	extends := srv.Count(licensetest.Extend) - extends0
	begins := srv.Count(licensetest.Begin) - begins0
	requests := srv.Count("") - all0
	notActive := 0
	for _, c := range clients {
		if c.Status().State != Active {
			notActive++
		}
	}

	sessions := float64(n) * duration.Seconds() / session.Seconds()
	perSession := float64(extends+begins) / sessions
	mib := func(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	window := func(s []uint64) uint64 { return slices.Max(s) }
	maxHeap, finalHeap := slices.Max(heap), heap[len(heap)-1]

	t.Logf("soak: mode=%s clients=%d session=%v duration=%v started_in=%v", mode, n, session, duration, startTime.Round(time.Millisecond))
	t.Logf("soak: errors start=%d renew_failed=%d left_active=%d not_active_at_end=%d",
		startErrs.Load(), renewFailed.Load()-failed0, leftActive.Load(), notActive)
	t.Logf("soak: renewals extends=%d begins=%d per_client_per_session=%.2f (limit 2) server_requests=%d (%.0f/s)",
		extends, begins, perSession, requests, float64(requests)/duration.Seconds())
	t.Logf("soak: heap max=%s final=%s per_client=%.1f KiB goroutines_max=%d",
		mib(maxHeap), mib(finalHeap), float64(finalHeap)/float64(n)/1024, maxG)

	if got := renewFailed.Load() - failed0; got != 0 {
		t.Errorf("%d renewals failed; want 0", got)
	}
	if got := leftActive.Load(); got != 0 {
		t.Errorf("%d clients left Active; want 0", got)
	}
	if notActive != 0 {
		t.Errorf("%d clients not Active at the end; want 0", notActive)
	}
	if perSession > 2 {
		t.Errorf("renewal calls per client per session = %.2f; want at most 2", perSession)
	}
	if maxHeap > heapLimit {
		t.Errorf("heap peaked at %s; want below %s", mib(maxHeap), mib(heapLimit))
	}
	if len(heap) >= 20 {
		prev, last := window(heap[len(heap)-20:len(heap)-10]), window(heap[len(heap)-10:])
		growth := float64(last)/float64(prev) - 1
		t.Logf("soak: heap previous_10s_max=%s last_10s_max=%s growth=%+.1f%% (limit +20%%)", mib(prev), mib(last), 100*growth)
		if growth > 0.20 {
			t.Errorf("heap grew %.1f%% over the last 10 s; want at most 20%%", 100*growth)
		}
	}
}

// parallel runs f(0..n-1) on at most workers goroutines and waits.
func parallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		}()
	}
	wg.Wait()
}
