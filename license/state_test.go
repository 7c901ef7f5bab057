package license

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/wire"
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

func TestStateFilePersistsAcrossRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c1, err := e.startIn(dir)
		require.NoError(t, err)
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
		c2, err := e.startIn(dir)
		require.NoError(t, err)
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
		c, err := e.startIn(dir)
		require.NoError(t, err)
		assert.Equal(t, Active, c.Status().State)
		aside, _ := filepath.Glob(filepath.Join(dir, stateBase+".corrupt-*"))
		assert.Len(t, aside, 1, "the corrupt file is moved aside, not deleted")
	})
}

func TestCrashBetweenTempWriteAndRename(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c1, err := e.startIn(dir)
		require.NoError(t, err)
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
		a, err := e.startIn(dir)
		require.NoError(t, err)
		b, err := e.startIn(dir)
		require.NoError(t, err)
		assert.Equal(t, Active, a.Status().State)
		assert.Equal(t, Active, b.Status().State)
		assert.FileExists(t, filepath.Join(dir, stateBase))
		assert.FileExists(t, filepath.Join(dir, stateBase+"-1"))
		assert.Equal(t, 2, e.srv.SeatsInUse(testProduct, testLicense))

		_, err = e.startIn(dir, WithStateSlots(2))
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
