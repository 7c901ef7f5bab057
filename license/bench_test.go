package license

import (
	"context"
	"net/http"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

var sinkBool bool

// BenchmarkStatus measures the hot path. Compare with
// BenchmarkStatusBaseline, the least a clock-correct answer costs.
func BenchmarkStatus(b *testing.B) {
	srv := licensetest.NewUnstartedServer(nil)
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, Features: "a,b,c", SessionDuration: time.Hour})
	c := benchClient(b, srv, srv.Transport())
	defer c.Close(context.Background())
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// The sink is a bool, like the baseline's: storing the whole
		// Status in a global would add write barriers the caller does not
		// pay when it uses the Status it got.
		st := c.Status()
		sinkBool = st.State == Active
	}
}

// BenchmarkStatusBaseline is a bare atomic.Pointer load plus one time.Now.
func BenchmarkStatusBaseline(b *testing.B) {
	var p atomic.Pointer[Status]
	p.Store(&Status{State: Active})
	var t time.Time
	b.ReportAllocs()
	for b.Loop() {
		s := p.Load()
		t = time.Now()
		sinkBool = s.State == Active && !t.IsZero()
	}
}

// BenchmarkStatusVsBaseline alternates batches of 1,000 Status calls and
// 1,000 baseline reads (BenchmarkStatusBaseline's atomic load plus
// time.Now) and reports the ratio of the median batch times as
// "x_baseline", so that a change of load hits both alike. One op is one
// batch of each.
func BenchmarkStatusVsBaseline(b *testing.B) {
	srv := licensetest.NewUnstartedServer(nil)
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, Features: "a,b,c", SessionDuration: time.Hour})
	c := benchClient(b, srv, srv.Transport())
	defer c.Close(context.Background())
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	var p atomic.Pointer[Status]
	p.Store(&Status{State: Active})
	const batch = 1000
	var ours, base []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		for range batch {
			st := c.Status()
			sinkBool = st.State == Active
		}
		t1 := time.Now()
		for range batch {
			s := p.Load()
			t := time.Now()
			sinkBool = s.State == Active && !t.IsZero()
		}
		t2 := time.Now()
		ours, base = append(ours, t1.Sub(t0)), append(base, t2.Sub(t1))
	}
	if m := medianDuration(base); m > 0 {
		b.ReportMetric(float64(medianDuration(ours))/float64(m), "x_baseline")
	}
}

func benchClient(b *testing.B, srv *licensetest.Server, rt http.RoundTripper) *Client {
	return benchClientMode(b, srv, rt, false, "")
}

// benchClientMode returns a client of srv in the SDK's default
// configuration (sealed replies) with a fixed fingerprint, in shared-secret
// mode if shared, keeping its state in stateDir ("" = in memory).
func benchClientMode(b *testing.B, srv *licensetest.Server, rt http.RoundTripper, shared bool, stateDir string) *Client {
	b.Helper()
	opts := []Option{fixedFingerprint(testFingerprint())}
	if rt != nil {
		opts = append(opts, WithRoundTripper(rt))
	}
	if stateDir != "" {
		// The anti-rollback record, in a directory of the benchmark's own
		// rather than the user's configuration directory.
		opts = append(opts, WithRollbackRecordDir(b.TempDir()))
	}
	cfg := Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense, StateDir: stateDir}
	// Sealed replies are the default configuration the benchmarks measure.
	if shared {
		cfg.ServerPublicKey, cfg.SharedSecret = "", srv.Info().Secret
	}
	c, err := New(cfg, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// benchModes are the envelope modes the lifecycle benchmarks run in.
var benchModes = []struct {
	name   string
	shared bool
}{{"hpke", false}, {"shared-secret", true}}

// benchStores are the two ways the SDK keeps state: in memory (no
// Config.StateDir) and in a state directory (an fsync'd atomic write per
// state change).
var benchStores = []struct {
	name string
	dir  bool
}{{"memory", false}, {"statedir", true}}

// lifecycleBench holds one loopback server with two clients: the SDK's
// and the baseline's (baseline_bench_test.go).
type lifecycleBench struct {
	srv  *licensetest.Server
	sdk  *Client
	base *baseClient
	// durable is the baseline with a state directory and an anti-rollback
	// record directory of its own.
	durable *baseClient
	m       wire.Machine
}

func newLifecycleBench(b *testing.B, shared, stateDir bool) *lifecycleBench {
	b.Helper()
	srv := licensetest.NewServer(&licensetest.Config{MaxRequests: -1})
	b.Cleanup(srv.Close)
	if err := srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, SessionDuration: time.Hour}); err != nil {
		b.Fatal(err)
	}
	dir := ""
	if stateDir {
		dir = b.TempDir()
	}
	c := benchClientMode(b, srv, nil, shared, dir)
	b.Cleanup(func() { _ = c.Close(context.Background()) })
	pub, secret := srv.Info().PublicKey, []byte(nil)
	if shared {
		pub, secret = nil, srv.Info().Secret
	}
	env, err := newBaseEnvelope(srv.Info().APIKey, pub, secret)
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{}
	b.Cleanup(hc.CloseIdleConnections)
	fp := testFingerprint()
	m := wire.Machine{CPUID: fp.CPUID.Value, MBSerial: fp.MBSerial.Value, MACAddresses: fp.MACAddresses.Values,
		VolumeHash: fp.VolumeHash.Value, HostName: fp.HostName.Value, IPAddress: fp.IPAddress.Value}
	return &lifecycleBench{srv: srv, sdk: c, m: m,
		base: &baseClient{url: srv.URL, env: env, hc: hc},
		durable: &baseClient{url: srv.URL, env: env, hc: hc, stateDir: b.TempDir(), recordDir: b.TempDir(),
			key: make([]byte, 32)}}
}

// sdkLifecycle is register, begin, extend and end through the client.
func (l *lifecycleBench) sdkLifecycle(ctx context.Context) error {
	c := l.sdk
	if err := c.lock(ctx); err != nil {
		return err
	}
	c.st.InstanceGUID = "" // force a register each time
	c.unlock()
	if _, err := c.Register(ctx); err != nil {
		return err
	}
	if err := c.BeginSession(ctx); err != nil {
		return err
	}
	if err := c.ExtendSession(ctx); err != nil {
		return err
	}
	return c.EndSession(ctx)
}

// checkNoLiveSessions fails if a lifecycle left a session open.
func (l *lifecycleBench) checkNoLiveSessions(b *testing.B) {
	b.Helper()
	if n := len(l.srv.Sessions()); n != 0 {
		b.Fatalf("%d sessions left live; want 0", n)
	}
}

// BenchmarkLifecycle is register, begin, extend and end through the client
// over loopback HTTP, with state in memory and in a state directory.
// Compare with BenchmarkLifecycleBaseline, or read the interleaved ratio
// of BenchmarkLifecycleVsBaseline.
func BenchmarkLifecycle(b *testing.B) {
	eachLifecycle(b, func(b *testing.B, l *lifecycleBench, stateDir bool) {
		loopLifecycle(b, l, l.sdkLifecycle)
	})
}

// eachLifecycle runs f as a sub-benchmark per envelope mode and state
// store, on a fresh lifecycleBench (whose SDK client has a state directory
// in the "statedir" runs).
func eachLifecycle(b *testing.B, f func(b *testing.B, l *lifecycleBench, stateDir bool)) {
	for _, m := range benchModes {
		for _, st := range benchStores {
			b.Run(m.name+"/"+st.name, func(b *testing.B) {
				f(b, newLifecycleBench(b, m.shared, st.dir), st.dir)
			})
		}
	}
}

// loopLifecycle times lifecycle, then checks that no session was left
// live.
func loopLifecycle(b *testing.B, l *lifecycleBench, lifecycle func(context.Context) error) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := lifecycle(ctx); err != nil {
			b.Fatal(err)
		}
	}
	l.checkNoLiveSessions(b)
}

// BenchmarkLifecycleBaseline is the same lifecycle by the baseline client
// of baseline_bench_test.go: each request sealed afresh with bare
// crypto/hpke (or AES-GCM), posted, status checked, sealed reply opened,
// decoded into a minimal struct, the real token used, the session ended.
// With "statedir" it also writes its state durably after each call.
func BenchmarkLifecycleBaseline(b *testing.B) {
	eachLifecycle(b, func(b *testing.B, l *lifecycleBench, stateDir bool) {
		base := l.base
		if stateDir {
			base = l.durable
		}
		loopLifecycle(b, l, func(ctx context.Context) error { return base.lifecycle(ctx, l.m) })
	})
}

// BenchmarkLifecycleVsBaseline alternates the SDK's lifecycle and the
// baseline's against the same server in every iteration and reports the
// ratio of their median times as "x_baseline" (the goal's ratio: the
// baseline keeps no state), which a change of load on a shared machine hits
// alike. With a state directory it also runs the durable baseline and
// reports "x_durable_baseline": the SDK against a client that writes the
// same state changes durably, each as a state file and an anti-rollback
// record.
func BenchmarkLifecycleVsBaseline(b *testing.B) {
	eachLifecycle(b, func(b *testing.B, l *lifecycleBench, stateDir bool) {
		ctx := context.Background()
		var sdk, base, durable []time.Duration
		for b.Loop() {
			t0 := time.Now()
			if err := l.sdkLifecycle(ctx); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := l.base.lifecycle(ctx, l.m); err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			sdk, base = append(sdk, t1.Sub(t0)), append(base, t2.Sub(t1))
			if stateDir {
				if err := l.durable.lifecycle(ctx, l.m); err != nil {
					b.Fatal(err)
				}
				durable = append(durable, time.Since(t2))
			}
		}
		l.checkNoLiveSessions(b)
		ms := float64(medianDuration(sdk))
		if mb := medianDuration(base); mb > 0 {
			b.ReportMetric(ms/float64(mb), "x_baseline")
		}
		if md := medianDuration(durable); md > 0 {
			b.ReportMetric(ms/float64(md), "x_durable_baseline")
		}
	})
}

// medianDuration returns the median of d (sorting d).
func medianDuration(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// BenchmarkIdleClient reports the heap and goroutines one started, idle
// client holds.
func BenchmarkIdleClient(b *testing.B) {
	srv := licensetest.NewUnstartedServer(nil)
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, SessionDuration: time.Hour})
	const n = 200
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		clients := make([]*Client, n)
		for i := range clients {
			clients[i] = benchClient(b, srv, srv.Transport())
			if err := clients[i].Start(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		g1 := runtime.NumGoroutine()
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heapB/client")
		b.ReportMetric(float64(g1-g0)/n, "goroutines/client")
		for _, c := range clients {
			_ = c.Close(context.Background())
		}
	}
}

// TestIdleClientGoroutines checks that an idle client runs at most two
// goroutines: the renewal loop and the event dispatcher. It counts the
// difference between 20 and 40 clients, so goroutines other tests leave
// winding down do not count.
func TestIdleClientGoroutines(t *testing.T) {
	srv := licensetest.NewUnstartedServer(nil)
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, SessionDuration: time.Hour})
	var clients []*Client
	startN := func(n int) {
		for range n {
			c, err := New(Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
				ProductGUID: testProduct, LicenseKey: testLicense},
				fixedFingerprint(testFingerprint()), WithRoundTripper(srv.Transport()), WithEventHandler(func(Event) {}))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			clients = append(clients, c)
		}
	}
	// settled returns the lowest goroutine count over a short while.
	settled := func() int {
		low := runtime.NumGoroutine()
		for range 20 {
			time.Sleep(5 * time.Millisecond)
			low = min(low, runtime.NumGoroutine())
		}
		return low
	}
	startN(20)
	g1 := settled()
	startN(20)
	g2 := settled()
	if per := float64(g2-g1) / 20; per > 2 {
		t.Errorf("an idle client runs %.2f goroutines; want at most 2", per)
	}
	for _, c := range clients {
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
