package license

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/license/licensetest"
)

// TestLegacyStateIsAdopted upgrades from the first release's naming
// ("state", "state-1", shared by every licence, sealed under the old key):
// this licence's file is adopted and removed, another licence's is left
// alone, and the offline allowance survives the upgrade.
func TestLegacyStateIsAdopted(t *testing.T) {
	srv := licensetest.NewServer()
	defer srv.Close()
	dir := t.TempDir()
	fp := testFingerprint()
	now := time.Now().Round(0)
	write := func(name, licence string, p persisted) {
		cfg := Config{ProductGUID: testProduct, LicenseKey: licence}
		blob, err := sealState(legacyKey(&cfg, fp), &p)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), blob, 0o600))
	}
	write("state", "LK-OTHER", persisted{InstanceGUID: "other", Token: "t-other", Sent: now.Add(-time.Minute),
		SessionSeconds: 3600, GraceSeconds: 3600, HighWater: now})
	write("state-1", testLicense, persisted{InstanceGUID: "mine", Token: "t-mine", Sent: now.Add(-time.Minute),
		SessionSeconds: 3600, GraceSeconds: 3600, HighWater: now})
	other, err := os.ReadFile(filepath.Join(dir, "state"))
	require.NoError(t, err)

	srv.SetDown(true)
	c, err := New(Config{ServerURL: srv.URL, APIKey: srv.APIKey(), ServerPublicKey: srv.PublicKey().EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}, fixedFingerprint(fp))
	require.NoError(t, err)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = c.Close(ctx)
	}()
	require.NoError(t, c.Start(context.Background()), "the upgrade keeps the offline allowance")
	st := c.Status()
	assert.Equal(t, Active, st.State)
	assert.Equal(t, "mine", st.InstanceGUID)
	assert.NoFileExists(t, filepath.Join(dir, "state-1"), "the adopted legacy file is removed")
	assert.FileExists(t, filepath.Join(dir, stateBase))
	still, err := os.ReadFile(filepath.Join(dir, "state"))
	require.NoError(t, err)
	assert.Equal(t, other, still, "another licence's legacy file is not touched")
}
