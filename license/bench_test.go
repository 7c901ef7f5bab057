package license

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

var sinkStatus Status
var sinkBool bool

// BenchmarkStatus measures the hot path. Compare with
// BenchmarkStatusBaseline, the least a clock-correct answer costs.
func BenchmarkStatus(b *testing.B) {
	srv := licensetest.NewUnstartedServer()
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
		sinkStatus = c.Status()
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

func benchClient(b *testing.B, srv *licensetest.Server, rt http.RoundTripper) *Client {
	return benchClientMode(b, srv, rt, false)
}

func benchClientMode(b *testing.B, srv *licensetest.Server, rt http.RoundTripper, shared bool) *Client {
	b.Helper()
	opts := []Option{fixedFingerprint(testFingerprint())}
	if rt != nil {
		opts = append(opts, WithRoundTripper(rt))
	}
	cfg := Config{ServerURL: srv.URL, APIKey: srv.APIKey(), ServerPublicKey: srv.PublicKey().EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense}
	if shared {
		cfg.ServerPublicKey, cfg.SharedSecret = "", srv.Secret()
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

// BenchmarkLifecycle is register, begin, extend and end through the client
// over loopback HTTP. Compare with BenchmarkLifecycleBaseline.
func BenchmarkLifecycle(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) { benchLifecycle(b, m.shared) })
	}
}

func benchLifecycle(b *testing.B, shared bool) {
	srv := licensetest.NewServer()
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, SessionDuration: time.Hour})
	c := benchClientMode(b, srv, nil, shared)
	defer c.Close(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = c.lock(ctx)
		c.st.InstanceGUID = "" // force a register each time
		c.unlock()
		if _, err := c.Register(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.BeginSession(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.ExtendSession(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.EndSession(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLifecycleBaseline posts four pre-sealed JSON bodies (register,
// begin, extend, end) to the same loopback server with a bare http.Client:
// the same server work and HTTP, none of the client's.
func BenchmarkLifecycleBaseline(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) { benchLifecycleBaseline(b, m.shared) })
	}
}

func benchLifecycleBaseline(b *testing.B, shared bool) {
	srv := licensetest.NewServer()
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, SessionDuration: time.Hour})
	sealer, err := envelope.NewSealer(srv.PublicKey())
	if shared {
		sealer, err = envelope.NewSharedSecretSealer(srv.Secret())
	}
	if err != nil {
		b.Fatal(err)
	}
	// Every request is sealed afresh, as the client does: a repeated body
	// would be answered from the server's replay cache without processing.
	seal := func(ep string, v any) []byte {
		plain, _ := json.Marshal(v)
		sd, err := sealer.Seal(envelope.Request{APIKey: srv.APIKey(), Endpoint: ep}, plain)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := json.Marshal(wire.Request{Key: sd.Key, Data: sd.Data})
		return body
	}
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	post := func(ep string, body []byte) []byte {
		resp, err := hc.Post(srv.URL+"/"+ep, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return out
	}
	fp := testFingerprint()
	m := wire.Machine{CPUID: fp.CPUID.Value, MBSerial: fp.MBSerial.Value, MACAddresses: fp.MACAddresses.Values,
		VolumeHash: fp.VolumeHash.Value, HostName: fp.HostName.Value, IPAddress: fp.IPAddress.Value}
	regReq := wire.RegisterRequest{ProductGUID: testProduct, LicenseKey: testLicense, Machine: m}
	r, err := wire.DecodeRegister(post(wire.Register, seal(wire.Register, regReq)))
	if err != nil {
		b.Fatal(err)
	}
	beginReq := wire.BeginRequest{ProductGUID: testProduct, LicenseKey: testLicense, InstanceGUID: r.GUID, Machine: m}
	br, err := wire.DecodeBegin(post(wire.Begin, seal(wire.Begin, beginReq)))
	if err != nil {
		b.Fatal(err)
	}
	extendReq := wire.ExtendRequest{Token: br.Token}
	endReq := wire.EndRequest{Token: "already-ended"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		post(wire.Register, seal(wire.Register, regReq))
		post(wire.Begin, seal(wire.Begin, beginReq))
		post(wire.Extend, seal(wire.Extend, extendReq))
		post(wire.End, seal(wire.End, endReq))
	}
}

// BenchmarkIdleClient reports the heap and goroutines one started, idle
// client holds.
func BenchmarkIdleClient(b *testing.B) {
	srv := licensetest.NewUnstartedServer()
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
	srv := licensetest.NewUnstartedServer()
	defer srv.Close()
	_ = srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, SessionDuration: time.Hour})
	var clients []*Client
	startN := func(n int) {
		for range n {
			c, err := New(Config{ServerURL: srv.URL, APIKey: srv.APIKey(), ServerPublicKey: srv.PublicKey().EncodeBase64(),
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
