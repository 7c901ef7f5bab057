package license

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// withDir returns a config using a real state directory.
func (e *env) withDir(dir string) Config {
	cfg := e.config()
	cfg.StateDir = dir
	return cfg
}

// startIn starts a client on a state directory (no memory store).
func (e *env) startIn(dir string, extra ...Option) (*Client, error) {
	c, err := New(e.withDir(dir), append(e.options(), append([]Option{WithStateStore(nil)}, extra...)...)...)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, c.Start(context.Background())
}

// newDirEnv returns an env, a new state directory and the option that
// keeps anti-rollback records in another new directory.
func newDirEnv(t *testing.T, ec envConfig) (*env, string, Option) {
	return newEnv(t, ec), t.TempDir(), WithRollbackRecordDir(t.TempDir())
}

// mustStartIn is startIn for a start that must succeed.
func (e *env) mustStartIn(dir string, extra ...Option) *Client {
	e.t.Helper()
	c, err := e.startIn(dir, extra...)
	require.NoError(e.t, err)
	return c
}

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
		_, err := withContext(ctx, func() (int, error) { <-release; return 1, nil })
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 2*time.Second, time.Since(begun))
		close(release)
		v, err := withContext(context.Background(), func() (int, error) { return 7, nil })
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
		p, err := openState(sealKey(&Config{ProductGUID: testProduct, LicenseKey: testLicense}, testFingerprint()), blob)
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
	insp, err := c.inspectState(context.Background(), e.fp)
	require.NoError(t, err)
	assert.True(t, insp.Store)
	require.Len(t, insp.Slots, 1)
	assert.False(t, insp.Slots[0].Saved)

	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	saved := e.store.Bytes()

	d := e.newClient(e.config())
	insp, err = d.inspectState(context.Background(), e.fp)
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
	insp, err = d.inspectState(context.Background(), &moved)
	require.NoError(t, err)
	assert.True(t, insp.Slots[0].HardwareChanged)
	assert.Equal(t, []string{fingerprint.NameMACAddresses, fingerprint.NameHostName}, insp.Slots[0].Changed)

	// Other strong components: the state is sealed for other hardware.
	other := *e.fp
	other.Extra = []fingerprint.Component{{Name: fingerprint.NameMachineID, Value: "another", Strength: fingerprint.Strong}}
	insp, err = d.inspectState(context.Background(), &other)
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
	res := c.probe(context.Background())
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
