package license

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/statefile"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// fuzzStates runs a real client against an in-memory mock server and
// returns the key its state is sealed under and the sealed states it
// wrote: one with a live session (as a crash would leave it) and one after
// a clean Close. Both are also opened, so their plaintexts can seed the
// plaintext half of the fuzz targets.
func fuzzStates(tb testing.TB) (key []byte, sealed, plain [][]byte) {
	tb.Helper()
	srv := licensetest.NewUnstartedServer(&licensetest.Config{MaxRequests: -1})
	defer srv.Close()
	if err := srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: 10 * time.Minute, GracePeriod: time.Hour, Features: "export,pro"}); err != nil {
		tb.Fatal(err)
	}
	cfg := Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, SharedSecret: srv.Info().Secret,
		ProductGUID: testProduct, LicenseKey: testLicense, UserName: "Ada", UserEmail: "ada@example.com"}
	store := &MemoryStateStore{}
	c, err := New(cfg, WithRoundTripper(srv.Transport()), WithStateStore(store), fixedFingerprint(testFingerprint()))
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	live := store.Bytes()
	if err := c.Close(context.Background()); err != nil {
		tb.Fatal(err)
	}
	ended := store.Bytes()

	key = sealKeys(&cfg, testFingerprint())[0]
	for _, b := range [][]byte{live, ended} {
		p, err := statefile.Open(key, stateAAD, b)
		if err != nil {
			tb.Fatalf("a state the client wrote does not open: %v", err)
		}
		sealed = append(sealed, b)
		plain = append(plain, p)
	}
	return key, sealed, plain
}

// stateVariants are hand-made plaintexts around the edges openState checks.
func stateVariants(tb testing.TB) [][]byte {
	now := time.Now().UTC()
	out := [][]byte{
		[]byte(`{"v":2}`),
		[]byte(`{"v":1}`),
		[]byte(`{"v":3}`),
		[]byte(`{"v":2,"used":-1}`),
		[]byte(`{"v":2,"used":9223372036854775807,"offline_open":true,"unanchored":true}`),
		[]byte(`{"v":0,"token":"t"}`),
		[]byte(`{"v":2,"session_duration":-1}`),
		[]byte(`{"v":2,"validation_grace_period":-1}`),
		[]byte(`{"v":2,"session_duration":1099511627776,"validation_grace_period":1099511627776}`),
		[]byte(`{"v":2,"session_duration":1099511627777}`),
		[]byte(`{"v":2,"sent":"not a time"}`),
		[]byte(`{"v":2,"sent":"9999-12-31T23:59:59.999999999Z","high_water":"0000-01-01T00:00:00Z"}`),
		[]byte(`{"v":2,"sent":"2026-01-01T00:00:00+23:59"}`),
		[]byte(`{"v":1.5}`),
		[]byte(`{"v":"1"}`),
		[]byte(`null`),
		[]byte(`[]`),
		[]byte(``),
		[]byte(`{"v":2,"v":2}`),
		[]byte("{\"v\":1,\"token\":\"\xff\xfe\"}"),
	}
	// Realistic states relative to now: live, in grace, long expired.
	for _, sent := range []time.Duration{-time.Minute, -30 * time.Minute, -48 * time.Hour} {
		b, err := json.Marshal(persisted{Version: stateVersion, InstanceGUID: "inst-1", Token: "tok-1",
			Sent: now.Add(sent), SessionSeconds: 600, GraceSeconds: 3600, Features: "a,b",
			LastContact: now.Add(sent), HighWater: now.Add(sent)})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzLoadState feeds the state loader arbitrary bytes twice: as a sealed
// blob, which must never panic and fail with ErrStateCorrupt unless it is
// authentic, and as a plaintext sealed under the right key, which reaches
// the JSON decoding and validation behind the seal. Any state openState
// accepts must hold its invariants and seal again to the same contents.
func FuzzLoadState(f *testing.F) {
	key, sealed, plain := fuzzStates(f)
	for _, b := range sealed {
		f.Add(b)
		for n := 0; n < len(b); n += max(1, len(b)/40) {
			f.Add(bytes.Clone(b[:n]))
		}
		for _, i := range []int{0, 4, 5, 17, len(b) / 2, len(b) - 17, len(b) - 1} {
			flipped := bytes.Clone(b)
			flipped[i] ^= 0x01
			f.Add(flipped)
		}
		f.Add(append(bytes.Clone(b), 0))
	}
	for _, p := range plain {
		f.Add(p)
		f.Add(bytes.Clone(p[:len(p)/2]))
	}
	for _, p := range stateVariants(f) {
		f.Add(p)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		// As a sealed blob: only the client's own seals open.
		p, err := openState(key, data)
		checkOpened(t, key, p, err)

		// As a plaintext behind a valid seal.
		blob, err := statefile.Seal(key, stateAAD, data)
		if err != nil {
			t.Fatalf("statefile.Seal(%d bytes) = %v", len(data), err)
		}
		p, err = openState(key, blob)
		checkOpened(t, key, p, err)
	})
}

// checkOpened checks the contract of openState for one result.
func checkOpened(t *testing.T, key []byte, p *persisted, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrStateCorrupt) {
			t.Fatalf("openState error %q does not match ErrStateCorrupt", err)
		}
		if p != nil {
			t.Fatalf("openState returned a state with error %q", err)
		}
		return
	}
	if p == nil {
		t.Fatal("openState returned neither a state nor an error")
	}
	if p.Version != stateVersion {
		t.Fatalf("openState accepted version %d; want %d", p.Version, stateVersion)
	}
	if p.SessionSeconds < 0 || p.GraceSeconds < 0 {
		t.Fatalf("openState accepted negative seconds: session %d, grace %d", p.SessionSeconds, p.GraceSeconds)
	}
	// The client saves what it loaded: an accepted state must seal again
	// and open to the same contents.
	want, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("json.Marshal(opened state) = %v", err)
	}
	again, err := sealState(key, p)
	if err != nil {
		t.Fatalf("sealState(opened state) = %v", err)
	}
	back, err := openState(key, again)
	if err != nil {
		t.Fatalf("openState(sealState(opened state)) = %v", err)
	}
	got, _ := json.Marshal(back)
	if !bytes.Equal(got, want) {
		t.Fatalf("state round trip = %s; want %s", got, want)
	}
}

// FuzzStartState starts a client on an arbitrary plaintext state, sealed
// under the right key, with the mock server up or down. Start must never
// panic; it either succeeds in a usable state or fails with a categorised
// error in Idle; Close always ends the client.
func FuzzStartState(f *testing.F) {
	_, _, plain := fuzzStates(f)
	for _, p := range append(plain, stateVariants(f)...) {
		f.Add(p, false)
		f.Add(p, true)
	}
	f.Add([]byte("not json"), true)

	f.Fuzz(func(t *testing.T, data []byte, down bool) {
		srv := licensetest.NewUnstartedServer(&licensetest.Config{MaxRequests: -1})
		defer srv.Close()
		if err := srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
			SessionDuration: 10 * time.Minute, GracePeriod: time.Hour}); err != nil {
			t.Fatal(err)
		}
		cfg := Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, SharedSecret: srv.Info().Secret,
			ProductGUID: testProduct, LicenseKey: testLicense}
		blob, err := statefile.Seal(sealKeys(&cfg, testFingerprint())[0], stateAAD, data)
		if err != nil {
			t.Fatal(err)
		}
		store := &MemoryStateStore{}
		_ = store.Save(context.Background(), blob)
		srv.SetDown(down)
		c, err := New(cfg, WithRoundTripper(srv.Transport()), WithStateStore(store),
			fixedFingerprint(testFingerprint()), WithRetry(Retry{Attempts: 1}))
		if err != nil {
			t.Fatal(err)
		}

		startErr := c.Start(context.Background())
		st := c.Status()
		switch {
		case startErr == nil && down:
			switch st.State {
			case Active:
				if !st.SessionExpiry.After(time.Now()) {
					t.Fatalf("Start stayed Active offline with the session lapsed at %v", st.SessionExpiry)
				}
			case Grace:
				if !st.GraceDeadline.After(time.Now()) {
					t.Fatalf("Start granted Grace with its deadline %v already past", st.GraceDeadline)
				}
			default:
				t.Fatalf("Start with the server down = nil in %v; want Active or Grace", st.State)
			}
		case startErr == nil:
			if st.State != Active {
				t.Fatalf("Start with the server up = nil in %v; want Active", st.State)
			}
		default:
			if !errors.Is(startErr, ErrUnreachable) && !errors.Is(startErr, ErrRefused) {
				t.Fatalf("Start error %q is neither unreachable nor refused", startErr)
			}
			if st.Valid() {
				t.Fatalf("Start failed with %q but the state is %v", startErr, st.State)
			}
		}
		_ = c.Close(context.Background())
		if got := c.Status().State; got != Ended {
			t.Fatalf("state after Close = %v; want Ended", got)
		}
	})
}

// TestOpenStateSecondsFitDuration checks that openState only accepts
// control options the client can turn into a time.Duration: a session plus
// its grace period must not overflow. openState once accepted up to 2^40
// seconds each, beyond time.Duration's 2^63-1 ns (about 9.2e9 s), so
// session() and grace() overflowed (to a negative or a wrong positive
// duration) for a state that opened. The wire decoder bounds the same
// values to a century; so does openState now.
func TestOpenStateSecondsFitDuration(t *testing.T) {
	key := make([]byte, statefile.KeySize)
	const maxSeconds = int64(1<<63-1) / int64(time.Second)
	for _, s := range []int64{maxSeconds/2 + 1, maxSeconds + 1, 19_000_000_000, 1 << 40} {
		plain := fmt.Appendf(nil, `{"v":1,"session_duration":%d,"validation_grace_period":%d}`, s, s)
		blob, err := statefile.Seal(key, stateAAD, plain)
		require.NoError(t, err)
		if p, err := openState(key, blob); err == nil {
			t.Errorf("openState(session=grace=%d s) accepted it; session+grace = %v overflows time.Duration",
				s, time.Duration(p.SessionSeconds)*time.Second+time.Duration(p.GraceSeconds)*time.Second)
		}
	}
}

// FuzzOpenRecord feeds the anti-rollback record's and the licence refusal
// file's readers plaintexts behind a valid seal, and raw blobs: they never
// panic, and a record they accept has the current version.
func FuzzOpenRecord(f *testing.F) {
	key := sealKeys(&Config{ProductGUID: testProduct, LicenseKey: testLicense}, testFingerprint())[0]
	for _, p := range []string{
		`{"v":2,"generation":3,"high_water":"2026-01-01T00:00:00Z","sent":"2026-01-01T00:00:00Z","used":1000}`,
		`{"v":1,"generation":3}`, `{"v":2,"used":-5}`, `{"v":1,"refusal":{"at":"2026-01-01T00:00:00Z"}}`,
		`{"v":1,"cleared_at":"2026-01-01T00:00:00Z"}`, `{}`, `null`, `[`,
	} {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, aad := range [][]byte{rollbackAAD, refusalAAD} {
			blob, err := statefile.Seal(key, aad, data)
			if err != nil {
				t.Fatal(err)
			}
			if r := openRecord([][]byte{key}, blob); r != nil && r.Version != rollbackRecordVersion {
				t.Fatalf("openRecord accepted version %d", r.Version)
			}
			_ = openRecord([][]byte{key}, data)
			if rf := openRefusal([][]byte{key}, blob); rf != nil && rf.Version != refusalFileVersion {
				t.Fatalf("openRefusal accepted version %d", rf.Version)
			}
			_ = openRefusal([][]byte{key}, data)
		}
	})
}
