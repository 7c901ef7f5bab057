package license

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/statefile"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

func TestStateFilePersistsAcrossRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c1 := e.mustStartIn(dir)
		guid := c1.Status().InstanceGUID
		time.Sleep(time.Minute)
		deadline := c1.Status().GraceDeadline
		e.srv.SetDown(true)
		require.Error(t, c1.Close(context.Background()), "end_session cannot reach the server")

		raw, err := os.ReadFile(filepath.Join(dir, stateBase))
		require.NoError(t, err)
		for _, secret := range []string{testLicense, e.srv.Info().APIKey, guid} {
			assert.NotContains(t, string(raw), secret, "the state file is sealed")
		}

		time.Sleep(5 * time.Minute)
		c2 := e.mustStartIn(dir)
		st := c2.Status()
		assert.Equal(t, Active, st.State, "the old session has not lapsed yet")
		assert.ErrorIs(t, st.LastError, ErrUnreachable)
		assert.Equal(t, guid, st.InstanceGUID)
		assert.True(t, deadline.Equal(st.GraceDeadline))

		e.srv.SetDown(false)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		assert.Equal(t, Active, c2.Status().State)
		assert.Equal(t, 1, e.srv.Count(wire.Register), "the stored instance is reused")
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense), "the old session was taken over, not leaked")
	})
}

func TestCorruptStateIsMovedAside(t *testing.T) {
	valid := func(t *testing.T, e *env) []byte {
		c := e.newClient(e.config())
		require.NoError(t, c.Start(context.Background()))
		require.NoError(t, c.Close(context.Background()))
		b := e.store.Bytes()
		require.NotEmpty(t, b)
		return b
	}
	cases := []struct {
		name   string
		mangle func(t *testing.T, e *env) []byte
	}{
		{"garbage", func(*testing.T, *env) []byte { return []byte("not a state file at all") }},
		{"truncated", func(t *testing.T, e *env) []byte { b := valid(t, e); return b[:len(b)/2] }},
		{"flipped bit", func(t *testing.T, e *env) []byte { b := valid(t, e); b[len(b)-3] ^= 1; return b }},
		{"empty", func(*testing.T, *env) []byte { return []byte{} }},
		{"from another machine", func(t *testing.T, e *env) []byte {
			other := testFingerprint()
			other.Extra[1].Value = "another-machine-id"
			e2 := *e
			e2.fp = other
			e2.store = &MemoryStateStore{}
			return valid(t, &e2)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{})
				_ = e.store.Save(context.Background(), tc.mangle(t, e))

				// Offline: a typed error, no panic, nothing granted.
				e.srv.SetDown(true)
				c := e.newClient(e.config())
				err := c.Start(context.Background())
				assert.ErrorIs(t, err, ErrStateCorrupt)
				assert.ErrorIs(t, err, ErrUnreachable)
				require.NoError(t, c.Close(context.Background()))
				assert.Equal(t, 1, e.rec.count(EventStateDiscarded))

				// Online: the client needs the server, and gets it.
				e.srv.SetDown(false)
				c = e.start()
				assert.Equal(t, Active, c.Status().State)
			})
		})
	}
}

func TestCorruptStateFileQuarantined(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, stateBase), []byte("LKST\x01garbage"), 0o600))
		e := newEnv(t, envConfig{})
		c := e.mustStartIn(dir)
		assert.Equal(t, Active, c.Status().State)
		aside, _ := filepath.Glob(filepath.Join(dir, stateBase+".corrupt-*"))
		assert.Len(t, aside, 1, "the corrupt file is moved aside, not deleted")
	})
}

func TestCrashBetweenTempWriteAndRename(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c1 := e.mustStartIn(dir)
		deadline := c1.Status().GraceDeadline
		e.srv.SetDown(true)
		_ = c1.Close(context.Background())
		// A crash mid-write leaves a half-written temp file beside the state.
		require.NoError(t, os.WriteFile(filepath.Join(dir, stateBase+".tmp-123"), []byte("LKST\x01half"), 0o600))

		c2, err := e.startIn(dir)
		require.NoError(t, err, "the old state is intact")
		assert.Equal(t, Active, c2.Status().State, "the old session has not lapsed yet")
		assert.True(t, deadline.Equal(c2.Status().GraceDeadline))
		left, _ := filepath.Glob(filepath.Join(dir, stateBase+".tmp-*"))
		assert.Empty(t, left, "stale temp files are removed")
	})
}

func TestUnusableStateDirDoesNotLockOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "not-a-dir")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		e := newEnv(t, envConfig{})
		c, err := e.startIn(filepath.Join(file, "state"))
		require.NoError(t, err, "an unusable state directory must not lock the customer out")
		assert.Equal(t, Active, c.Status().State)
		assert.GreaterOrEqual(t, e.rec.count(EventStateDiscarded), 1)
	})
}

func TestTwoClientsShareStateDir(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		e := newEnv(t, envConfig{})
		a := e.mustStartIn(dir)
		b := e.mustStartIn(dir)
		assert.Equal(t, Active, a.Status().State)
		assert.Equal(t, Active, b.Status().State)
		assert.FileExists(t, filepath.Join(dir, stateBase))
		assert.FileExists(t, filepath.Join(dir, stateBase+"-1"))
		assert.Equal(t, 2, e.srv.SeatsInUse(testProduct, testLicense))

		_, err := e.startIn(dir, WithStateSlots(2))
		assert.ErrorIs(t, err, ErrStateLocked)
		assert.ErrorIs(t, err, ErrClientFault, "a fault on this machine")

		require.NoError(t, a.Close(context.Background()))
		c, err := e.startIn(dir, WithStateSlots(2))
		require.NoError(t, err, "a released slot is reused")
		assert.Equal(t, Active, c.Status().State)
	})
}

func TestInstallIDWhenFewStrongComponents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		e.fp = testFingerprint()
		e.fp.Extra = nil
		e.fp.MBSerial = fingerprint.Component{Name: fingerprint.NameMBSerial, Missing: &fingerprint.MissingError{}}
		e.start()
		var sent []string
		for _, r := range e.srv.Requests() {
			if r.Endpoint == wire.Register || r.Endpoint == wire.Begin {
				var m wire.Machine
				require.NoError(t, json.Unmarshal(r.Payload, &m))
				sent = append(sent, m.MBSerial)
			}
		}
		require.Len(t, sent, 2)
		assert.Regexp(t, `^install-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, sent[0])
		assert.Equal(t, sent[0], sent[1])

		// The install ID survives a restart.
		e.start(WithStateStore(e.store))
		last := e.srv.Requests()
		var m wire.Machine
		require.NoError(t, json.Unmarshal(last[len(last)-1].Payload, &m))
		assert.Equal(t, sent[0], m.MBSerial)
	})
}

// TestTwoLicencesShareStateDirAcrossOfflineRestart runs two OS processes,
// each holding a different licence of one product in one state directory,
// and crashes both. Restarted offline, in the opposite order, each client
// finds its own state: both keep their live sessions and nothing is moved
// aside as corrupt.
func TestTwoLicencesShareStateDirAcrossOfflineRestart(t *testing.T) {
	const otherLicense = "LK-TEST-9999"
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	for _, key := range []string{testLicense, otherLicense} {
		require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: key,
			SessionDuration: time.Hour, GracePeriod: time.Hour}))
	}
	dir := t.TempDir()
	_, stopA := child(t, "crash", srv, dir)
	_, stopB := child(t, "crash", srv, dir, childLic+"="+otherLicense)
	require.NoError(t, stopA())
	require.NoError(t, stopB())
	srv.SetDown(true)

	start := func(key string) *Client {
		c, err := New(Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
			ProductGUID: testProduct, LicenseKey: key, StateDir: dir}, fixedFingerprint(testFingerprint()))
		require.NoError(t, err)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_ = c.Close(ctx)
		})
		require.NoError(t, c.Start(context.Background()), "licence %s starts offline from its own state", key)
		assert.Equal(t, Active, c.Status().State, "licence %s keeps its live session", key)
		return c
	}
	b := start(otherLicense) // the second licence first: it must not take the first's file
	a := start(testLicense)
	assert.NotEqual(t, a.Status().InstanceGUID, b.Status().InstanceGUID)
	corrupt, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*"))
	assert.Empty(t, corrupt, "no state was moved aside")
}

// TestStateKeyIgnoresPrivilegedComponents saves state in a run that can
// read every component (root) and restarts offline in one that cannot
// read the root-only ones (a user): the state still opens.
func TestStateKeyIgnoresPrivilegedComponents(t *testing.T) {
	root := testFingerprint()
	root.Extra = append(root.Extra, fingerprint.Component{Name: fingerprint.NameProductUUID,
		Value: "4c4c4544-0042-3510-8052-b4c04f383232", Strength: fingerprint.Strong})
	user := testFingerprint()
	denied := &fingerprint.MissingError{Reason: fingerprint.NeedsPrivilege}
	user.MBSerial = fingerprint.Component{Name: fingerprint.NameMBSerial, Strength: fingerprint.Strong, Missing: denied}
	user.Extra = []fingerprint.Component{
		{Name: fingerprint.NameBoardSerial, Strength: fingerprint.Strong, Missing: denied},
		{Name: fingerprint.NameMachineID, Value: "5e1f00d1", Strength: fingerprint.Strong},
		{Name: fingerprint.NameProductUUID, Strength: fingerprint.Strong, Missing: denied},
	}
	for _, tc := range []struct {
		name        string
		first, then *fingerprint.Fingerprint
	}{{"root, then user", root, user}, {"user, then root", user, root}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
				e.fp = tc.first
				crash(e.start())
				e.srv.SetDown(true)
				e.fp = tc.then
				c := e.start()
				assert.Equal(t, Active, c.Status().State)
				assert.Zero(t, e.rec.count(EventStateDiscarded), "the state opened")
			})
		})
	}
}

// TestStateIOHonoursContext checks the helper every state file operation
// goes through: it returns when ctx ends, whatever the disk does.
func TestStateIOHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		begun := time.Now()
		_, err := withContext(ctx, func() (int, error) { <-release; return 1, nil }, nil)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 2*time.Second, time.Since(begun))
		close(release)
		v, err := withContext(context.Background(), func() (int, error) { return 7, nil }, nil)
		assert.NoError(t, err)
		assert.Equal(t, 7, v)
	})
}

// stateFiles lists the state directory, for failure messages.
func stateFiles(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name()+" "+e.Type().String())
	}
	return names
}

// countingStore is a MemoryStateStore that counts its saves.
type countingStore struct {
	MemoryStateStore
	saves atomic.Int64
}

func (s *countingStore) Save(ctx context.Context, data []byte) error {
	s.saves.Add(1)
	return s.MemoryStateStore.Save(ctx, data)
}

// TestOneSavePerStateChange checks that the client writes its state once
// per change the server made (each write is a state file and an
// anti-rollback record, both fsync'd, with a state directory), and that
// every change is saved before the call that made it returns.
func TestOneSavePerStateChange(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	if err := srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, SessionDuration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	newClient := func(store *countingStore) *Client {
		t.Helper()
		c, err := New(Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
			ProductGUID: testProduct, LicenseKey: testLicense}, fixedFingerprint(testFingerprint()),
			WithStateStore(store), WithRollbackRecordDir(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// saved runs step and checks that it saved exactly want times, and that
	// the saved state then holds what check expects.
	saved := func(store *countingStore, name string, want int64, step func() error, check func(p *persisted) bool) {
		t.Helper()
		before := store.saves.Load()
		if err := step(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := store.saves.Load() - before; got != want {
			t.Errorf("%s saved the state %d times; want %d", name, got, want)
		}
		blob, err := store.Load(ctx)
		if err != nil {
			t.Fatalf("%s: nothing saved: %v", name, err)
		}
		p, err := openState(sealKeys(&Config{ProductGUID: testProduct, LicenseKey: testLicense}, testFingerprint())[0], blob)
		if err != nil {
			t.Fatalf("%s: saved state does not open: %v", name, err)
		}
		if !check(p) {
			t.Errorf("%s: saved state %+v lacks the change", name, p)
		}
	}

	t.Run("manual lifecycle", func(t *testing.T) {
		store := &countingStore{}
		c := newClient(store)
		defer c.Close(ctx)
		var token string
		saved(store, "Register", 1, func() error { _, err := c.Register(ctx); return err },
			func(p *persisted) bool { return p.InstanceGUID != "" })
		saved(store, "BeginSession", 1, func() error { return c.BeginSession(ctx) },
			func(p *persisted) bool { token = p.Token; return p.Token != "" && !p.Sent.IsZero() })
		saved(store, "ExtendSession", 1, func() error { return c.ExtendSession(ctx) },
			func(p *persisted) bool { return p.Token != "" })
		saved(store, "EndSession", 1, func() error { return c.EndSession(ctx) },
			func(p *persisted) bool { return p.Token == "" })
		if token == "" {
			t.Fatal("no token was saved")
		}
	})
	t.Run("Start and Close", func(t *testing.T) {
		store := &countingStore{}
		c := newClient(store)
		saved(store, "Start", 1, func() error { return c.Start(ctx) },
			func(p *persisted) bool { return p.InstanceGUID != "" && p.Token != "" })
		saved(store, "Close", 1, func() error { return c.Close(ctx) },
			func(p *persisted) bool { return p.Token == "" })
		if n := len(srv.Sessions()); n != 0 {
			t.Errorf("%d sessions live after Close; want 0", n)
		}
	})
}

// TestInspectStateStore reads a custom store without changing it, and
// names the component that changed since registration.
func TestInspectStateStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{session: time.Hour, grace: 2 * time.Hour})
	c := e.newClient(e.config())
	insp, err := diagnostics{c}.InspectState(context.Background(), e.fp)
	require.NoError(t, err)
	assert.True(t, insp.Store)
	require.Len(t, insp.Slots, 1)
	assert.False(t, insp.Slots[0].Saved)

	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	saved := e.store.Bytes()

	d := e.newClient(e.config())
	insp, err = diagnostics{d}.InspectState(context.Background(), e.fp)
	require.NoError(t, err)
	s := insp.Slots[0]
	require.NoError(t, s.Err)
	assert.True(t, s.Saved)
	assert.True(t, s.SessionLive)
	assert.Equal(t, c.Status().InstanceGUID, s.InstanceGUID)
	assert.Equal(t, time.Hour, s.SessionDuration)
	assert.Equal(t, s.Sent.Add(3*time.Hour), s.GraceDeadline)
	assert.False(t, s.HardwareChanged)
	assert.Equal(t, saved, e.store.Bytes(), "InspectState changed the store")

	moved := *e.fp
	moved.MACAddresses.Values = []string{"00:1b:21:ff:ff:ff"}
	moved.HostName.Value = "renamed-box"
	insp, err = diagnostics{d}.InspectState(context.Background(), &moved)
	require.NoError(t, err)
	assert.True(t, insp.Slots[0].HardwareChanged)
	assert.Equal(t, []string{fingerprint.NameMACAddresses, fingerprint.NameHostName}, insp.Slots[0].Changed)

	// Other strong components: the state is sealed for other hardware.
	other := *e.fp
	other.Extra = []fingerprint.Component{{Name: fingerprint.NameMachineID, Value: "another", Strength: fingerprint.Strong}}
	insp, err = diagnostics{d}.InspectState(context.Background(), &other)
	require.NoError(t, err)
	assert.ErrorIs(t, insp.Slots[0].Err, ErrStateCorrupt)
}

// TestProbeTakesNoSeat: the probe is refused as an unknown token, carries
// the server's time, and leaves the server untouched.
func TestProbeTakesNoSeat(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	e.srv.SetClockSkew(time.Hour)
	c := e.newClient(e.config())
	res := diagnostics{c}.Probe(context.Background())
	assert.ErrorIs(t, res.Err, ErrRefused)
	assert.InDelta(t, time.Hour.Seconds(), res.Skew.Seconds(), 2)
	assert.False(t, res.ServerTime.IsZero())
	assert.Zero(t, e.srv.SeatsInUse(testProduct, testLicense))
	assert.Empty(t, e.srv.Instances())
	assert.Nil(t, e.store.Bytes(), "Probe saved state")
	require.NoError(t, c.Close(context.Background()))
}

// TestEverySaveBumpsGenerationAndWritesRecord is a property test over
// random sequences of operations (start online or offline, renew, run
// offline, refuse, crash, close, back up and restore an old copy, switch
// between shared and normal mode). After every operation, each state file
// the client wrote since the last look has a generation above every
// generation written before it (a restored copy included), and its
// anti-rollback record holds that same generation and offline budget: no
// save path writes the state without bumping the generation and writing
// the record.
func TestEverySaveBumpsGenerationAndWritesRecord(t *testing.T) {
	for seed := range uint64(24) {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { saveProperty(t, seed) })
		})
	}
}

// propFile is one state file the property watches, with its record.
type propFile struct {
	name, record string
	last         []byte // the bytes at the last look
	restored     []byte // bytes a restore put back, not written by the client
	maxGen       uint64
}

func saveProperty(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 20))
	dir, records, backups := t.TempDir(), t.TempDir(), t.TempDir()
	e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	cfg := Config{ProductGUID: testProduct, LicenseKey: testLicense}
	shName := statefile.SharedName(testProduct, testLicense)
	files := []*propFile{
		{name: stateBase, record: recordName(&cfg, abs, 0)},
		{name: shName, record: recordName(&cfg, filepath.Join(abs, shName), 0)},
	}
	var (
		c       *Client
		shared  bool
		backup  bool
		history []string
	)
	opts := func() []Option {
		o := []Option{WithRollbackRecordDir(records)}
		if shared {
			o = append(o, WithSharedSession(SharedSession{}))
		}
		return o
	}
	stop := func(crashIt bool) {
		if c == nil {
			return
		}
		if crashIt {
			crash(c)
		} else {
			_ = c.Close(ctx)
		}
		c = nil
	}
	ops := []struct {
		name string
		do   func()
	}{
		{"start-online", func() { stop(false); e.srv.SetDown(false); c, _ = e.startIn(dir, opts()...) }},
		{"start-offline", func() { stop(false); e.srv.SetDown(true); c, _ = e.startIn(dir, opts()...) }},
		{"renew", func() { e.srv.SetDown(false); time.Sleep(6 * time.Minute) }},
		{"offline", func() { e.srv.SetDown(true); time.Sleep(150 * time.Second) }},
		{"refuse", func() {
			e.srv.SetDown(false)
			require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
			if c == nil {
				c, _ = e.startIn(dir, opts()...)
			} else {
				time.Sleep(11 * time.Minute)
			}
			require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Active))
		}},
		{"crash", func() { stop(true) }},
		{"close", func() { stop(false) }},
		{"backup", func() { copyDir(t, dir, backups); backup = true }},
		{"restore", func() {
			if !backup {
				return
			}
			stop(false)
			copyDir(t, backups, dir)
			for _, f := range files {
				f.restored, _ = os.ReadFile(filepath.Join(dir, f.name))
			}
		}},
		{"toggle-shared", func() { stop(false); shared = !shared }},
	}
	for range 14 {
		op := ops[rng.IntN(len(ops))]
		history = append(history, op.name)
		op.do()
		synctest.Wait() // every goroutine has finished its writes
		for _, f := range files {
			checkSaved(t, dir, records, f, strings.Join(history, " "))
		}
	}
	stop(false)
}

// checkSaved checks one state file against the property.
func checkSaved(t *testing.T, dir, records string, f *propFile, history string) {
	t.Helper()
	blob, err := os.ReadFile(filepath.Join(dir, f.name))
	if err != nil || bytes.Equal(blob, f.last) || bytes.Equal(blob, f.restored) {
		f.last = blob
		return
	}
	f.last = blob
	var st persisted
	require.NoError(t, json.Unmarshal(readSealed(t, dir, f.name, stateAAD), &st), history)
	require.Greater(t, st.Generation, f.maxGen, "%s: a save did not move the generation past every earlier one (after: %s)", f.name, history)
	f.maxGen = st.Generation
	plain := readSealed(t, records, f.record, rollbackAAD)
	require.NotNil(t, plain, "%s: saved without its record (after: %s)", f.name, history)
	var rec rollbackRecord
	require.NoError(t, json.Unmarshal(plain, &rec))
	require.Equal(t, st.Generation, rec.Generation, "%s: the record does not hold the saved generation (after: %s)", f.name, history)
	require.Equal(t, st.Used, rec.Used, "%s: the record does not hold the saved offline budget (after: %s)", f.name, history)
}

// Tests of the store (store.go, record.go): the offline budget, the record
// location, refusals per licence, and the save path's invariants.

// sawtoothSession and sawtoothGrace are the control options of the clock
// sawtooth of issue 20: 4 s of session and 4 s of grace.
const (
	sawtoothSession = 4 * time.Second
	sawtoothGrace   = 4 * time.Second
)

// TestOfflineClockSawtoothWithinRun: a run started offline (on a live
// persisted session) whose wall clock is set back by a little, again and
// again (less than the rollback slack each time, 10 times), leaves Valid
// once the session and grace the server granted are used up, measured on
// the monotonic clock. Before the offline budget, such a run stayed Active
// for ever.
func TestOfflineClockSawtoothWithinRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, dir, opt := newDirEnv(t, envConfig{session: sawtoothSession, grace: sawtoothGrace})
		c := e.mustStartIn(dir, opt)
		word := time.Now() // the server's last word
		e.srv.SetDown(true)
		crash(c) // keep the live session in the state

		c = e.mustStartIn(dir, opt)
		require.True(t, c.Valid(), "the persisted session is live")
		for range 10 {
			time.Sleep(time.Second)
			e.wall.jump(-time.Second) // well within rollbackSlack
			used := time.Since(word)
			if used >= sawtoothSession+sawtoothGrace {
				assert.False(t, c.Valid(), "valid after %v of offline use; the server granted %v",
					used, sawtoothSession+sawtoothGrace)
			}
		}
		require.Greater(t, time.Since(word), sawtoothSession+sawtoothGrace, "the test ran past the allowance")
		assert.Equal(t, Expired, c.Status().State)
		assert.ErrorIs(t, c.Status().Reason, ErrGraceExpired)
	})
}

// TestOfflineClockSawtoothAcrossRestarts: the same sawtooth with a restart
// at every step, after a Close or after a crash: the budget used is saved
// at every state change and every minute offline (and a restart after a
// crash charges one save interval), so no restart gains anything. Total
// offline use never exceeds the session and grace the server granted.
func TestOfflineClockSawtoothAcrossRestarts(t *testing.T) {
	for _, crashes := range []bool{false, true} {
		name := "close"
		if crashes {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, dir, opt := newDirEnv(t, envConfig{session: sawtoothSession, grace: sawtoothGrace})
				c := e.mustStartIn(dir, opt)
				word := time.Now()
				e.srv.SetDown(true)
				crash(c)

				valid := 0
				for i := range 10 {
					c, err := e.startIn(dir, opt)
					if c.Valid() {
						valid++
						assert.NoError(t, err)
					}
					time.Sleep(time.Second)
					used := time.Since(word)
					if used >= sawtoothSession+sawtoothGrace {
						assert.False(t, c.Valid(), "restart %d: valid after %v of offline use; the server granted %v",
							i, used, sawtoothSession+sawtoothGrace)
					}
					if crashes {
						crash(c)
					} else {
						_ = c.Close(context.Background())
					}
					e.wall.jump(-time.Second) // well within rollbackSlack
				}
				require.Greater(t, time.Since(word), sawtoothSession+sawtoothGrace, "the test ran past the allowance")
				assert.Positive(t, valid, "the first offline restart is valid")
			})
		})
	}
}

// TestSuspendResume simulates a suspend: the monotonic clock stops and the
// wall clock jumps. The documented outcome (docs/security.md): suspended
// time counts as offline time, as time with the machine off does; a client
// that can reach the server renews at once on resume, so a suspend costs it
// nothing; an offline one is in Grace or Expired by the time that passed.
func TestSuspendResume(t *testing.T) {
	t.Run("online", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			c := e.start()
			begins := e.srv.Count("begin_session") + e.srv.Count("extend_session")
			e.wall.jump(3 * time.Hour) // suspended for longer than session and grace
			time.Sleep(maxSleep + time.Second)
			assert.Equal(t, Active, c.Status().State, "renewed on resume")
			assert.Greater(t, e.srv.Count("begin_session")+e.srv.Count("extend_session"), begins)
			assert.GreaterOrEqual(t, c.Status().GraceDeadline.Sub(e.wall.now()), time.Hour, "the whole grace is left")
		})
	})
	t.Run("offline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e, dir, opt := newDirEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			c := e.mustStartIn(dir, opt)
			e.srv.SetDown(true)
			e.wall.jump(30 * time.Minute) // suspended offline
			assert.Equal(t, Grace, c.Status().State, "the suspend counts as offline time")
			left := c.Status().GraceDeadline.Sub(e.wall.now())
			assert.InDelta(t, float64(40*time.Minute), float64(left), float64(time.Second))
			// The budget survives a restart.
			_ = c.Close(context.Background())
			c = e.mustStartIn(dir, opt)
			assert.Equal(t, Grace, c.Status().State)
			e.wall.jump(time.Hour) // suspended past the grace
			assert.Equal(t, Expired, c.Status().State)
		})
	})
}

// breakRecord makes the record location unusable in one of three ways and
// returns a function that undoes it (nil when the client repairs it).
func breakRecord(t *testing.T, how, records string) (restore func()) {
	t.Helper()
	switch how {
	case "file-for-dir":
		aside := records + ".aside"
		require.NoError(t, os.Rename(records, aside))
		require.NoError(t, os.WriteFile(records, []byte("not a directory"), 0o600))
		return func() {
			require.NoError(t, os.Remove(records))
			require.NoError(t, os.Rename(aside, records))
		}
	case "unreadable":
		require.NoError(t, os.Chmod(records, 0))
		return func() { require.NoError(t, os.Chmod(records, 0o700)) }
	case "record-is-dir":
		// Unreadable even for root: a directory where the record belongs.
		files, _ := filepath.Glob(filepath.Join(records, "rb-*[0-9a-f]"))
		require.NotEmpty(t, files)
		for _, f := range files {
			require.NoError(t, os.Remove(f))
			require.NoError(t, os.Mkdir(f, 0o700))
		}
		return nil
	case "corrupt":
		files, _ := filepath.Glob(filepath.Join(records, "rb-*[0-9a-f]"))
		require.NotEmpty(t, files)
		for _, f := range files {
			require.NoError(t, os.WriteFile(f, []byte("LKST\x01garbage that does not open at all......."), 0o600))
		}
		return nil
	}
	t.Fatalf("unknown way %q", how)
	return nil
}

// TestRecordLocationUnusable: a record location that exists but cannot be
// used is not "no record": an offline start from the persisted state is
// not Valid and says why (ErrRollbackRecordUnusable); an online start is
// Active; once the location works again, offline grace comes back only
// after the next online success. (The doctor's finding is tested in
// license/doctor: TestRecordLocationUnusable there.)
func TestRecordLocationUnusable(t *testing.T) {
	for _, how := range []string{"file-for-dir", "unreadable", "record-is-dir", "corrupt"} {
		t.Run(how, func(t *testing.T) {
			if how == "unreadable" && os.Geteuid() == 0 {
				t.Skip("root reads a directory without permission")
			}
			if how == "unreadable" && runtime.GOOS == "windows" {
				t.Skip("Windows has no POSIX permissions: chmod 0 only sets the read-only attribute (record-is-dir covers an unreadable record)")
			}
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				dir, records := t.TempDir(), filepath.Join(t.TempDir(), "records")
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				opt := WithRollbackRecordDir(records)
				c := e.mustStartIn(dir, opt)
				e.srv.SetDown(true)
				_ = c.Close(ctx)

				restore := breakRecord(t, how, records)
				c, err := e.startIn(dir, opt)
				require.Error(t, err, "offline start from persisted state without a usable record")
				assert.ErrorIs(t, err, ErrRollbackRecordUnusable)
				assert.False(t, c.Valid())
				_ = c.Close(ctx)

				if restore != nil {
					// Online start works while the location refuses.
					e.srv.SetDown(false)
					c = e.mustStartIn(dir, opt)
					assert.Equal(t, Active, c.Status().State)
					e.srv.SetDown(true)
					_ = c.Close(ctx)
					restore()
				}

				// The location works again; the state saved meanwhile still
				// grants nothing offline.
				c, err = e.startIn(dir, opt)
				require.Error(t, err, "offline grace came back before the server answered")
				assert.ErrorIs(t, err, ErrRollbackRecordUnusable)
				assert.False(t, c.Valid())
				_ = c.Close(ctx)

				// The next online success brings it back.
				e.srv.SetDown(false)
				c = e.mustStartIn(dir, opt)
				e.srv.SetDown(true)
				_ = c.Close(ctx)
				c = e.mustStartIn(dir, opt)
				assert.True(t, c.Valid(), "offline grace after an online success")
			})
		})
	}
}

// TestRefusalSeenByEverySlot: after a revocation, a client holding slot 0
// makes the next start use slot 1, whose own state still holds a live
// session: it is refused all the same, offline.
func TestRefusalSeenByEverySlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		dir, records := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opts := []Option{WithRollbackRecordDir(records), WithStateSlots(2)}
		a := e.mustStartIn(dir, opts...)
		b := e.mustStartIn(dir, opts...)
		require.NotEqual(t, a.store.slot.Slot(), b.store.slot.Slot())
		e.srv.SetDown(true)
		_ = a.Close(ctx)
		_ = b.Close(ctx) // both slots keep a live session and grace

		e.srv.SetDown(false)
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		held, err := e.startIn(dir, opts...)
		require.ErrorIs(t, err, ErrRevoked)
		require.Equal(t, 0, held.store.slot.Slot())

		e.srv.SetDown(true)
		c, err := e.startIn(dir, opts...)
		require.Equal(t, 1, c.store.slot.Slot())
		require.Error(t, err, "slot 1 granted offline use after the licence was refused")
		assert.ErrorIs(t, err, ErrRefused)
		assert.False(t, c.Valid())
		_ = c.Close(ctx)
		_ = held.Close(ctx)

		// A sealed success in slot 0 clears it for every slot: slot 1's own
		// copy of the refusal is older than the success.
		e.srv.SetDown(false)
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Active))
		c = e.mustStartIn(dir, opts...)
		require.Equal(t, 0, c.store.slot.Slot())
		e.srv.SetDown(true)
		c1, err := e.startIn(dir, opts...)
		require.Equal(t, 1, c1.store.slot.Slot())
		require.NoError(t, err, "slot 1 after the licence was cleared")
		assert.True(t, c1.Valid())
	})
}

// TestRefusalSeenBySharedFollower: a refusal saved by one client of the
// licence (here in normal mode) reaches a shared-mode process restarted
// offline while the renewer still runs on the shared session the refusal
// did not touch: the follower is refused, not Active.
func TestRefusalSeenBySharedFollower(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		dir, records := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		r := e.mustStartIn(dir, sharedIn(records)...)
		f := e.mustStartIn(dir, sharedIn(records)...)
		require.Equal(t, Follower, f.Shared().Role)

		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		other, err := e.startIn(dir, WithRollbackRecordDir(records))
		require.ErrorIs(t, err, ErrRevoked)
		_ = other.Close(ctx)

		e.srv.SetDown(true)
		_ = f.Close(ctx)
		f, err = e.startIn(dir, sharedIn(records)...)
		require.Error(t, err, "a follower restarted offline used a refused licence")
		assert.ErrorIs(t, err, ErrRefused)
		assert.False(t, f.Valid())
		_ = f.Close(ctx)
		_ = r.Close(ctx)
	})
}

// TestCorruptStateIsNotRestored: an offline restart with a corrupt state
// file says that the state was corrupt, not that it was restored from a
// copy.
func TestCorruptStateIsNotRestored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, dir, opt := newDirEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.mustStartIn(dir, opt)
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		require.NoError(t, os.WriteFile(filepath.Join(dir, stateBase), []byte("LKST\x01 damaged beyond use ........"), 0o600))

		_, err := e.startIn(dir, opt)
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrStateCorrupt)
		assert.NotErrorIs(t, err, ErrStateRollback)
		assert.NotContains(t, err.Error(), "restored from a copy")
	})
}

// TestStartWithEndedContext: Start given a context that has already ended
// sends nothing and says so, with the context's own error.
func TestStartWithEndedContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		c := e.newClient(e.config())
		defer c.Close(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := c.Start(ctx)
		require.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "nothing was sent")
		assert.NotContains(t, err.Error(), "unreachable")
		assert.NotContains(t, err.Error(), "fingerprint")
		assert.Zero(t, len(e.srv.Requests()), "nothing was sent")
		require.NoError(t, c.Start(context.Background()), "Start may be retried")
	})
}

// readSealed opens the sealed file dir/name with the test machine's key.
func readSealed(t *testing.T, dir, name string, aad []byte) []byte {
	t.Helper()
	blob, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	plain, err := statefile.Open(sealKeys(&Config{ProductGUID: testProduct, LicenseKey: testLicense}, testFingerprint())[0], aad, blob)
	require.NoError(t, err)
	return plain
}

// TestSnapshotRestoreGainsTimeLeft documents the limit of everything kept
// on the machine: a VM snapshot restore brings back the state, the record
// and the clock together, and with them the offline time left at the
// snapshot, every time. Only contact with the server bounds it.
func TestSnapshotRestoreGainsTimeLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, records := t.TempDir(), t.TempDir()
		snapDir, snapRecords := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opt := WithRollbackRecordDir(records)
		c := e.mustStartIn(dir, opt)
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		copyDir(t, dir, snapDir) // the snapshot
		copyDir(t, records, snapRecords)
		snapAt := time.Now()

		for range 2 {
			time.Sleep(2 * time.Hour)
			c, err := e.startIn(dir, opt)
			require.ErrorIs(t, err, ErrGraceExpired)
			_ = c.Close(context.Background())

			// Restore the snapshot: files and clock.
			copyDir(t, snapDir, dir)
			copyDir(t, snapRecords, records)
			e.wall.jump(-time.Since(snapAt))
			snapAt = time.Now()
			c = e.mustStartIn(dir, opt)
			assert.True(t, c.Valid(), "the snapshot's offline time is back")
			_ = c.Close(context.Background())
			copyDir(t, snapDir, dir) // as the snapshot had it, for the next round
			copyDir(t, snapRecords, records)
		}
	})
}

// copyDir copies the regular files of src into dst (a backup or a restore).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dst, 0o700))
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600))
	}
}

// TestRestoredStateAndClockSetBackGrantNoGrace: with grace used up,
// restoring yesterday's copy of the whole state directory and setting the
// clock back grants no grace, because the anti-rollback record outside the
// directory is ahead of the restored state. Online start still works.
func TestRestoredStateAndClockSetBackGrantNoGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, backup, records := t.TempDir(), t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		opt := WithRollbackRecordDir(records)

		c := e.mustStartIn(dir, opt)
		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		copyDir(t, dir, backup) // "yesterday's copy"

		// Offline until grace is used up.
		time.Sleep(2 * time.Hour)
		c, err := e.startIn(dir, opt)
		require.ErrorIs(t, err, ErrGraceExpired)
		_ = c.Close(context.Background())

		// The attack: restore the copy and set the clock back.
		copyDir(t, backup, dir)
		e.wall.jump(-2 * time.Hour)
		c, err = e.startIn(dir, opt)
		require.Error(t, err, "a restored state plus a clock set back granted grace")
		assert.ErrorIs(t, err, ErrStateRollback)
		assert.False(t, c.Valid())
		assert.NotEqual(t, Grace, c.Status().State)
		_ = c.Close(context.Background())

		// Repeatable: still nothing on the next try.
		copyDir(t, backup, dir)
		c, err = e.startIn(dir, opt)
		require.ErrorIs(t, err, ErrStateRollback)
		_ = c.Close(context.Background())

		// Online start still works, and re-syncs the record.
		e.wall.jump(2 * time.Hour)
		e.srv.SetDown(false)
		c = e.mustStartIn(dir, opt)
		assert.Equal(t, Active, c.Status().State)
		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		c, err = e.startIn(dir, opt)
		require.NoError(t, err, "after an online start the state is current again")
		assert.True(t, c.Valid(), "offline time granted")
	})
}

// TestRollbackRecordRecreated: a missing record is re-created from the state
// (and logged). A location that exists but refuses is not "no record":
// see TestRecordLocationUnusable.
func TestRollbackRecordRecreated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, records := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.mustStartIn(dir, WithRollbackRecordDir(records))
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		files, _ := filepath.Glob(filepath.Join(records, "rb-*"))
		require.NotEmpty(t, files, "one record per state file")
		for _, f := range files {
			require.NoError(t, os.Remove(f))
		}
		c = e.mustStartIn(dir, WithRollbackRecordDir(records))
		assert.True(t, c.Valid(), "offline time granted")
		_ = c.Close(context.Background())
		files, _ = filepath.Glob(filepath.Join(records, "rb-*"))
		assert.NotEmpty(t, files, "re-created")
	})
}

// TestRollbackRecordWithStore: the record also guards a custom store when
// its directory is given.
func TestRollbackRecordWithStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		records := t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start(WithRollbackRecordDir(records))
		old := e.store.Bytes()
		time.Sleep(2 * time.Minute)
		e.srv.SetDown(true)
		_ = c.Close(context.Background())
		_ = e.store.Save(context.Background(), old)
		c2 := e.newClient(e.config(), WithRollbackRecordDir(records))
		defer c2.Close(context.Background())
		assert.ErrorIs(t, c2.Start(context.Background()), ErrStateRollback)
	})
}

// TestRefusalSurvivesOfflineRestart: after a revocation (the refused extend,
// then the refused fresh begin), Close and an offline restart give no grace:
// the refusal was saved at once with the offline allowance zeroed.
func TestRefusalSurvivesOfflineRestart(t *testing.T) {
	for _, crashInstead := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			c := e.newClient(sealedConfig(e))
			require.NoError(t, c.Start(context.Background()))
			require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
			_, err := lapse(e, c)
			require.Equal(t, Refused, c.Status().State)
			require.ErrorIs(t, c.Err(), ErrRevoked)
			_ = err
			if crashInstead {
				crash(c)
			} else {
				_ = c.Close(context.Background())
			}

			e.srv.SetDown(true)
			c2 := e.newClient(sealedConfig(e))
			defer c2.Close(context.Background())
			err = c2.Start(context.Background())
			require.Error(t, err, "an offline restart after a refusal must not be usable")
			assert.ErrorIs(t, err, ErrRefused, "the error says why")
			assert.False(t, c2.Valid())
			assert.NotEqual(t, Grace, c2.Status().State)
			assert.Contains(t, err.Error(), "refused this licence")
		})
	}
}

// TestRefusedStartPersists: a refused begin at Start is final too.
func TestRefusedStartPersists(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start()
		require.NoError(t, c.Close(context.Background()))
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		c2 := e.newClient(e.config())
		require.ErrorIs(t, c2.Start(context.Background()), ErrRevoked)
		require.NoError(t, c2.Close(context.Background()))
		e.srv.SetDown(true)
		c3, err := e.tryStart()
		require.ErrorIs(t, err, ErrRefused)
		assert.False(t, c3.Valid())
	})
}

// TestIntermediateRefusalPersistsNothing: a refused extend followed by a
// successful fresh begin keeps the offline allowance; so does end_session's
// 422.
func TestIntermediateRefusalPersistsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.newClient(sealedConfig(e))
		require.NoError(t, c.Start(context.Background()))
		e.srv.Inject(licensetest.Fault{Endpoint: "extend_session", Kind: licensetest.FaultFail, Count: 1, Status: 404, Message: "unknown token"})
		time.Sleep(9 * time.Minute)
		synctest.Wait()
		require.Equal(t, Active, c.Status().State)
		require.Nil(t, c.st.Refusal)
		crash(c)
		e.srv.SetDown(true)
		c2 := e.newClient(sealedConfig(e))
		defer c2.Close(context.Background())
		require.NoError(t, c2.Start(context.Background()))
		assert.True(t, c2.Valid())
	})
}

// TestOnlyAuthenticatedSuccessRestores: after a persisted refusal, a success
// over unsealed replies serves this run but does not restore the offline
// allowance; a sealed success does.
func TestOnlyAuthenticatedSuccessRestores(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		c := e.newClient(sealedConfig(e))
		require.ErrorIs(t, c.Start(context.Background()), ErrRefused)
		require.NoError(t, c.Close(context.Background()))
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Active))

		restart := func(cfg Config) (*Client, error) {
			cl := e.newClient(cfg)
			return cl, cl.Start(context.Background())
		}
		insecure := e.config()
		insecure.InsecureUnsealedReplies = true
		unsealed, err := restart(insecure)
		require.NoError(t, err)
		require.Equal(t, Active, unsealed.Status().State)
		require.NoError(t, unsealed.Close(context.Background()))
		e.srv.SetDown(true)
		offline, err := restart(insecure)
		assert.ErrorIs(t, err, ErrRefused, "an unauthenticated success restored the allowance")
		_ = offline.Close(context.Background())

		e.srv.SetDown(false)
		sealed, err := restart(sealedConfig(e))
		require.NoError(t, err)
		require.NoError(t, sealed.Close(context.Background()))
		e.srv.SetDown(true)
		offline, err = restart(sealedConfig(e))
		require.NoError(t, err)
		assert.True(t, offline.Valid(), "offline time granted")
		_ = offline.Close(context.Background())
	})
}
