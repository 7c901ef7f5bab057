package license

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

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
				c := e.newClient(e.config())
				defer c.Close(context.Background())
				require.NoError(t, c.Start(context.Background()))
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
