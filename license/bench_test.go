package license

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/testkit"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

var sinkBool bool

// BenchmarkStatus measures the hot path. Compare with
// BenchmarkStatusBaseline, the least a clock-correct answer costs.
func BenchmarkStatus(b *testing.B) {
	c := startedStatusClient(b)
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
	c := startedStatusClient(b)
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
	if m := testkit.Median(base); m > 0 {
		b.ReportMetric(float64(testkit.Median(ours))/float64(m), "x_baseline")
	}
}

// startedStatusClient returns a started client of an in-memory server
// (licence with features "a,b,c", hour-long sessions), for the Status
// benchmarks. The client and the server are closed at cleanup.
func startedStatusClient(b *testing.B) *Client {
	b.Helper()
	srv := licensetest.NewUnstartedServer(nil)
	b.Cleanup(srv.Close)
	_ = srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, Features: "a,b,c", SessionDuration: time.Hour})
	c := benchClient(b, srv, srv.Transport())
	b.Cleanup(func() { _ = c.Close(context.Background()) })
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	return c
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
// and the baseline's ("The lifecycle baseline", below).
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
// ("The lifecycle baseline", below): each request sealed afresh with bare
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
		ms := float64(testkit.Median(sdk))
		if mb := testkit.Median(base); mb > 0 {
			b.ReportMetric(ms/float64(mb), "x_baseline")
		}
		if md := testkit.Median(durable); md > 0 {
			b.ReportMetric(ms/float64(md), "x_durable_baseline")
		}
	})
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

// The lifecycle baseline: the least work any correct client must do for
// register, begin, extend and end in the SDK's default configuration. Per
// call it seals the request afresh, posts it, checks the HTTP status, opens
// the sealed reply (the default), decodes it into a minimal struct and checks
// the verdict; it uses the real token for extend and end, and ends the
// session it began. It logs nothing, has no retry policy, no events and no
// state machine: what the SDK does on top of that is what the ratio
// measures. It keeps no state on disk unless given a stateDir; then, after
// each of the four calls, it writes its state and its anti-rollback record
// durably, as the SDK does with Config.StateDir (two atomic, fsync'd writes
// per state change).

// baseEnvelope is the baseline's whole envelope, and the only place the
// baseline knows the envelope format. It follows envelope/FORMAT.md
// (version 2) with bare crypto/hpke, crypto/hkdf and AES-256-GCM, and asks
// for a sealed reply like the SDK's default. When FORMAT.md changes, change
// this type (and nothing else) to follow it.
type baseEnvelope struct {
	apiKey string
	// Public-key mode (version 0x21): the server's HPKE key and the fixed
	// 16-byte header (version, flags, KEM, KDF, AEAD, key id).
	pk hpke.PublicKey
	// Shared-secret mode (version 0x22): request_secret and the fixed
	// 10-byte header (version, flags, key id).
	reqSecret []byte
	header    []byte
}

const (
	baseFlagSealedReply = 0x01
	baseReplyOverhead   = 1 + 32 + 16 // version, response_nonce, GCM tag
)

// newBaseEnvelope derives what FORMAT.md lets a client derive once: the
// public-key header and key id, or the shared-secret keys. Exactly one of
// pub and secret is set.
func newBaseEnvelope(apiKey string, pub *envelope.PublicKey, secret []byte) (*baseEnvelope, error) {
	e := &baseEnvelope{apiKey: apiKey}
	if pub == nil {
		prk, err := hkdf.Extract(sha256.New, secret, []byte("licensekit-envelope v2 shared secret"))
		if err != nil {
			return nil, err
		}
		keyID, _ := hkdf.Expand(sha256.New, prk, "key id", 8)
		if e.reqSecret, err = hkdf.Expand(sha256.New, prk, "request", 32); err != nil {
			return nil, err
		}
		e.header = append([]byte{0x22, baseFlagSealedReply}, keyID...)
		return e, nil
	}
	if pub.KEM() != envelope.KEMX25519 {
		return nil, errors.New("baseline: only DHKEM(X25519) is implemented")
	}
	raw := pub.Bytes()
	pk, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(raw)
	if err != nil {
		return nil, err
	}
	e.pk = pk
	h := sha256.New()
	h.Write([]byte("licensekit-envelope v2 key id\x00"))
	h.Write([]byte{0x00, 0x20}) // KEM id
	h.Write(raw)
	e.header = []byte{0x21, baseFlagSealedReply, 0x00, 0x20, 0x00, 0x01, 0x00, 0x02}
	e.header = append(e.header, h.Sum(nil)[:8]...)
	return e, nil
}

// tail appends the timestamp, a random request id and the endpoint.
func (e *baseEnvelope) tail(endpoint string) ([]byte, error) {
	raw := bytes.Clone(e.header)
	raw = binary.BigEndian.AppendUint64(raw, uint64(time.Now().Unix()))
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	raw = append(raw, id...)
	raw = append(raw, byte(len(endpoint)))
	return append(raw, endpoint...), nil
}

// seal seals one request for endpoint and returns its data field and a
// function that opens the sealed reply body to exactly this request.
func (e *baseEnvelope) seal(endpoint string, plain []byte) (string, func([]byte) ([]byte, error), error) {
	hdr, err := e.tail(endpoint)
	if err != nil {
		return "", nil, err
	}
	if e.pk != nil {
		info := append([]byte("licensekit-envelope v2 request\x00"), e.apiKey...)
		enc, sender, err := hpke.NewSender(e.pk, hpke.HKDFSHA256(), hpke.AES256GCM(), info)
		if err != nil {
			return "", nil, err
		}
		ct, err := sender.Seal(hdr, plain)
		if err != nil {
			return "", nil, err
		}
		secret, err := sender.Export("licensekit-envelope v2 response", 32)
		if err != nil {
			return "", nil, err
		}
		raw := append(append(hdr, enc...), ct...)
		return base64.StdEncoding.EncodeToString(raw), func(body []byte) ([]byte, error) {
			return baseOpenReply(body, 0xA1, secret, enc)
		}, nil
	}
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return "", nil, err
	}
	hdr = append(hdr, salt...)
	prk, err := hkdf.Extract(sha256.New, e.reqSecret, salt)
	if err != nil {
		return "", nil, err
	}
	key, _ := hkdf.Expand(sha256.New, prk, "key", 32)
	iv, _ := hkdf.Expand(sha256.New, prk, "nonce", 12)
	secret, _ := hkdf.Expand(sha256.New, prk, "response\x00"+e.apiKey, 32)
	a, err := baseGCM(key)
	if err != nil {
		return "", nil, err
	}
	aad := append(bytes.Clone(hdr), e.apiKey...)
	raw := a.Seal(hdr, iv, plain, aad)
	return base64.StdEncoding.EncodeToString(raw), func(body []byte) ([]byte, error) {
		return baseOpenReply(body, 0xA2, secret, salt)
	}, nil
}

// baseOpenReply opens a sealed reply body {"data":"<base64>"} as
// FORMAT.md's client steps 1-4 say: at most 1 MiB, a JSON object with exactly
// the one member "data", canonical base64; then prk_r =
// HKDF-Extract(binding || response_nonce, secret), and AES-256-GCM with the
// derived key and nonce and the version byte as AAD.
func baseOpenReply(body []byte, version byte, secret, binding []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if len(body) > wire.MaxBody || json.Unmarshal(body, &m) != nil || len(m) != 1 {
		return nil, errors.New("baseline: not a sealed reply")
	}
	var data string
	if err := json.Unmarshal(m["data"], &data); err != nil {
		return nil, errors.New("baseline: not a sealed reply")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(data)
	if err != nil || base64.StdEncoding.EncodedLen(len(raw)) != len(data) {
		return nil, errors.New("baseline: reply data is not canonical base64")
	}
	if len(raw) < baseReplyOverhead || raw[0] != version {
		return nil, errors.New("baseline: not a sealed reply")
	}
	prk, err := hkdf.Extract(sha256.New, secret, append(bytes.Clone(binding), raw[1:33]...))
	if err != nil {
		return nil, err
	}
	key, _ := hkdf.Expand(sha256.New, prk, "key", 32)
	iv, _ := hkdf.Expand(sha256.New, prk, "nonce", 12)
	a, err := baseGCM(key)
	if err != nil {
		return nil, err
	}
	return a.Open(nil, iv, raw[33:], raw[:1])
}

func baseGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// baseClient is the baseline client: one envelope, one http.Client.
type baseClient struct {
	url string
	env *baseEnvelope
	hc  *http.Client
	// stateDir and recordDir, when set, make the baseline durable with
	// rollback protection: after every call that changes its state
	// (instance, token, deadline) it writes that state and then its
	// anti-rollback record, each atomically, the least a client that loses
	// nothing and notices a restored state directory must do (see persist).
	stateDir, recordDir string
	// key seals the state and the record (AES-256-GCM), gen is the state's
	// generation.
	key []byte
	gen uint64
}

// persist writes the instance, token and deadline anchor to stateDir, then
// the generation and wall-time high-water mark to recordDir (outside
// stateDir, as the SDK's anti-rollback record), both sealed with AES-GCM and
// each written atomically: a temporary file, fsync, rename, fsync of the
// directory. It does nothing without a stateDir.
func (c *baseClient) persist(guid, token string) error {
	if c.stateDir == "" {
		return nil
	}
	c.gen++
	now := time.Now()
	state, _ := json.Marshal(struct {
		GUID, Token string
		Sent        time.Time
		Generation  uint64
	}{guid, token, now, c.gen})
	if err := baseWriteSealed(c.key, c.stateDir, "state", state); err != nil {
		return err
	}
	record, _ := json.Marshal(struct {
		Generation uint64
		HighWater  time.Time
	}{c.gen, now})
	return baseWriteSealed(c.key, c.recordDir, "record", record)
}

// baseWriteSealed seals plain with AES-256-GCM under key and replaces
// dir/name with it atomically and durably.
func baseWriteSealed(key []byte, dir, name string, plain []byte) error {
	a, err := baseGCM(key)
	if err != nil {
		return err
	}
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	blob := a.Seal(nonce, nonce, plain, []byte(name))
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(blob)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// baseReply is the minimal reply: the verdict and the two values the
// lifecycle needs.
type baseReply struct {
	Success *bool  `json:"success"`
	Status  int64  `json:"status"`
	GUID    string `json:"guid"`
	Token   string `json:"token"`
}

// call seals payload, posts it, checks the status, opens the sealed reply
// and decodes it.
func (c *baseClient) call(ctx context.Context, endpoint string, payload any) (*baseReply, error) {
	plain, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	data, open, err := c.env.seal(endpoint, plain)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(wire.Request{Key: c.env.apiKey, Data: data})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/"+endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	sealed, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxBody))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("baseline: %s: HTTP %d", endpoint, resp.StatusCode)
	}
	pt, err := open(sealed)
	if err != nil {
		return nil, fmt.Errorf("baseline: %s: %w", endpoint, err)
	}
	var r baseReply
	if err := json.Unmarshal(pt, &r); err != nil {
		return nil, err
	}
	if r.Success != nil && !*r.Success {
		return nil, fmt.Errorf("baseline: %s: refused", endpoint)
	}
	return &r, nil
}

// lifecycle registers, begins, extends and ends one session.
func (c *baseClient) lifecycle(ctx context.Context, m wire.Machine) error {
	r, err := c.call(ctx, wire.Register, wire.RegisterRequest{ProductGUID: testProduct, LicenseKey: testLicense, Machine: m})
	if err != nil {
		return err
	}
	guid := r.GUID
	if guid == "" {
		return errors.New("baseline: no guid")
	}
	if err := c.persist(guid, ""); err != nil {
		return err
	}
	r, err = c.call(ctx, wire.Begin, wire.BeginRequest{ProductGUID: testProduct, LicenseKey: testLicense,
		InstanceGUID: guid, Machine: m})
	if err != nil {
		return err
	}
	token := r.Token
	if token == "" {
		return errors.New("baseline: no token")
	}
	if err := c.persist(guid, token); err != nil {
		return err
	}
	if r, err = c.call(ctx, wire.Extend, wire.ExtendRequest{Token: token}); err != nil {
		return err
	}
	if r.Token != "" {
		token = r.Token
	}
	if err := c.persist(guid, token); err != nil {
		return err
	}
	if _, err = c.call(ctx, wire.End, wire.EndRequest{Token: token}); err != nil {
		return err
	}
	return c.persist(guid, "")
}

// BenchmarkStart measures Start against a real loopback mock server with a
// state directory, and reports the median ("median-ms") beside the mean:
//
//   - online-cold: no state; register_instance and begin_session.
//   - online-with-state: the instance is stored, the last run closed
//     cleanly; begin_session only.
//   - offline-live-session/refused: the previous run crashed with a live
//     session and the server refuses connections; goal ≤ 50 ms.
//   - offline-live-session/hanging: the same, the server accepts and never
//     answers; bounded by the offline budget (2 s).
//
// The "default-fingerprint" variants collect this machine's fingerprint as
// a product does; the others use a fixed one, to isolate the client.
//
//	go test ./license -run '^$' -bench BenchmarkStart -benchtime 20x
func BenchmarkStart(b *testing.B) {
	srv := licensetest.NewServer(nil)
	b.Cleanup(srv.Close)
	if err := srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: time.Hour, GracePeriod: time.Hour}); err != nil {
		b.Fatal(err)
	}
	config := func(url, dir string) Config {
		return Config{ServerURL: url, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
			ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}
	}
	fixed := fixedFingerprint(testFingerprint())
	newClient := func(b *testing.B, url, dir string, opts ...Option) *Client {
		c, err := New(config(url, dir), opts...)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	closeQuick := func(c *Client) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = c.Close(ctx)
	}
	// measure times f per iteration and reports the median.
	measure := func(b *testing.B, f func(b *testing.B) time.Duration) {
		var took []time.Duration
		b.ResetTimer()
		for range b.N {
			took = append(took, f(b))
		}
		b.StartTimer()
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
	}
	// start runs one timed Start and returns its duration.
	start := func(b *testing.B, c *Client) time.Duration {
		b.StartTimer()
		begun := time.Now()
		err := c.Start(context.Background())
		took := time.Since(begun)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		return took
	}

	b.Run("online-cold", func(b *testing.B) {
		measure(b, func(b *testing.B) time.Duration {
			b.StopTimer()
			c := newClient(b, srv.URL, b.TempDir(), fixed)
			defer c.Close(context.Background())
			return start(b, c)
		})
	})
	b.Run("online-with-state", func(b *testing.B) {
		dir := b.TempDir()
		c := newClient(b, srv.URL, dir, fixed)
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		_ = c.Close(context.Background())
		measure(b, func(b *testing.B) time.Duration {
			b.StopTimer()
			c := newClient(b, srv.URL, dir, fixed)
			defer c.Close(context.Background())
			return start(b, c)
		})
	})
	offline := func(b *testing.B, url func(b *testing.B) string, opts ...Option) {
		dir := b.TempDir()
		c := newClient(b, srv.URL, dir, opts...)
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		crash(c) // the session stays live in the state file
		u := url(b)
		measure(b, func(b *testing.B) time.Duration {
			b.StopTimer()
			c := newClient(b, u, dir, opts...)
			took := start(b, c)
			if st := c.Status().State; st != Active {
				b.Fatalf("offline Start in %v; want Active", st)
			}
			closeQuick(c)
			return took
		})
	}
	refusing := func(b *testing.B) string {
		down := licensetest.NewServer(nil)
		url := down.URL
		down.Close() // nothing listens there any more: connections are refused
		return url
	}
	hanging := func(b *testing.B) string { return newHangingServerB(b).url() }
	b.Run("offline-live-session/refused", func(b *testing.B) { offline(b, refusing, fixed) })
	b.Run("offline-live-session/refused/default-fingerprint", func(b *testing.B) { offline(b, refusing) })
	b.Run("offline-live-session/hanging", func(b *testing.B) { offline(b, hanging, fixed) })
}

// benchSaveClient returns a loaded client whose state lives in a temporary
// StateDir, with its anti-rollback record in another temporary directory.
func benchSaveClient(b *testing.B) *Client {
	b.Helper()
	priv, err := envelope.GenerateKey(envelope.KEMX25519)
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(Config{
		ServerURL: "http://127.0.0.1:9/api/v2", APIKey: "ak", ServerPublicKey: priv.Public().EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense, StateDir: b.TempDir(),
	}, fixedFingerprint(testFingerprint()), WithRollbackRecordDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	if err := c.loadLocked(context.Background()); err != nil {
		b.Fatal(err)
	}
	if c.store.rb == nil {
		b.Fatal("no anti-rollback record")
	}
	b.Cleanup(func() {
		c.store.release()
		c.events.close()
	})
	return c
}

// BenchmarkStateSave measures one state change as the client persists it:
// "state only" is the baseline (seal, write a temporary file, fsync, rename,
// fsync the directory); "with rollback record" adds the anti-rollback record
// (one more small sealed, fsync'd, renamed file). The difference is the
// record's cost:
//
//	go test ./license -run '^$' -bench BenchmarkStateSave -benchtime 200x -count 5
func BenchmarkStateSave(b *testing.B) {
	for _, withRecord := range []bool{false, true} {
		name := "state only"
		if withRecord {
			name = "with rollback record"
		}
		b.Run(name, func(b *testing.B) {
			c := benchSaveClient(b)
			rb := c.store.rb
			if !withRecord {
				c.store.rb = nil
			}
			b.ReportAllocs()
			for b.Loop() {
				c.saveLocked(context.Background())
			}
			c.store.rb = rb
		})
	}
}

// BenchmarkRollbackRecordCost alternates, in every iteration, one state
// save without the anti-rollback record (seal, temporary file, fsync,
// rename, fsync of the directory) and one with it (the same, then the
// sealed record written the same way outside StateDir), on one client, so
// that a change of load or disk latency hits both alike. It reports the
// median of each ("state-only-ms", "with-record-ms"), the median cost of
// the record per save ("record-ms", the difference of the medians) and
// their ratio ("x_state_only"). One op is one save of each kind.
//
//	go test ./license -run '^$' -bench BenchmarkRollbackRecordCost -benchtime 100x
func BenchmarkRollbackRecordCost(b *testing.B) {
	c := benchSaveClient(b)
	rb := c.store.rb
	defer func() { c.store.rb = rb }()
	ctx := context.Background()
	var plain, with []time.Duration
	for b.Loop() {
		c.store.rb = nil
		t0 := time.Now()
		c.saveLocked(ctx)
		t1 := time.Now()
		c.store.rb = rb
		c.saveLocked(ctx)
		plain, with = append(plain, t1.Sub(t0)), append(with, time.Since(t1))
	}
	mp, mw := testkit.Median(plain), testkit.Median(with)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(mp), "state-only-ms")
	b.ReportMetric(ms(mw), "with-record-ms")
	b.ReportMetric(ms(mw-mp), "record-ms")
	if mp > 0 {
		b.ReportMetric(float64(mw)/float64(mp), "x_state_only")
	}
}

// BenchmarkSharedStart measures Start in shared mode over a real loopback
// server, with the fingerprint fixed (its cost is the same in every mode):
//
//   - follower: another client of this process renews a live shared
//     session (a separate open file, so the OS lock treats it as another
//     process); Start reads the shared state and returns Active.
//   - resume: nobody renews; Start takes the renewer lock and resumes the
//     session a previous run left, as a command-line tool does.
//   - unshared: the baseline, Start in normal mode, which begins a session
//     on the server (register once, then begin_session each time).
//
// Each reports the median Start time (median-ns) and the server requests per
// Start (requests/op); Close runs outside the timer. Run with
//
//	go test ./license -run '^$' -bench BenchmarkSharedStart -benchtime 200x
func BenchmarkSharedStart(b *testing.B) {
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	if err := srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: time.Hour, GracePeriod: time.Hour}); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cfg := Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}
	shared := WithSharedSession(SharedSession{})
	fp := fixedFingerprint(testFingerprint())
	ctx := context.Background()

	renewer, err := New(cfg, shared, fp)
	if err != nil {
		b.Fatal(err)
	}
	if err := renewer.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("follower", func(b *testing.B) {
		benchStart(b, srv, StartFollowed, func() (*Client, error) { return New(cfg, shared, fp) })
	})
	if err := renewer.Close(ctx); err != nil { // leaves the session to lapse
		b.Fatal(err)
	}
	b.Run("resume", func(b *testing.B) {
		benchStart(b, srv, StartResumed, func() (*Client, error) { return New(cfg, shared, fp) })
	})
	plain := cfg
	plain.StateDir = b.TempDir()
	b.Run("unshared", func(b *testing.B) {
		benchStart(b, srv, StartNone, func() (*Client, error) { return New(plain, fp) })
	})
}

// benchStart times Start of fresh clients and checks how each started.
func benchStart(b *testing.B, srv *licensetest.Server, want SharedStart, newClient func() (*Client, error)) {
	ctx := context.Background()
	times := make([]time.Duration, 0, b.N)
	requests := srv.Count("")
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		c, err := newClient()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		err = c.Start(ctx)
		d := time.Since(t0)
		b.StopTimer()
		times = append(times, d)
		if err != nil {
			b.Fatal(err)
		}
		if got := c.Shared().Start; got != want {
			b.Fatalf("Start was %s; want %s", got, want)
		}
		if err := c.Close(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "median-ns")
	b.ReportMetric(float64(srv.Count("")-requests)/float64(b.N), "requests/op")
}
