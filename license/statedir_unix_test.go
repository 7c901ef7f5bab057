//go:build unix

package license

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/license/licensetest"
)

// TestFIFOAtStatePath puts a FIFO where the state file belongs and starts
// with a 2 s context. Start neither blocks on it nor ignores its context:
// the FIFO is moved aside as corrupt state, the session begins, and Close
// returns.
func TestFIFOAtStatePath(t *testing.T) {
	srv := licensetest.NewServer()
	defer srv.Close()
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: time.Hour, GracePeriod: time.Hour}))
	dir := t.TempDir()
	var fifos []string
	for _, name := range []string{stateBase, "state"} { // "state": the name before per-licence naming
		path := filepath.Join(dir, name)
		if _, err := os.Lstat(path); err == nil {
			continue
		}
		require.NoError(t, syscall.Mkfifo(path, 0o600))
		fifos = append(fifos, path)
	}
	c, err := New(Config{ServerURL: srv.URL, APIKey: srv.APIKey(), ServerPublicKey: srv.PublicKey().EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}, fixedFingerprint(testFingerprint()))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- c.Start(ctx) }()
	var startErr error
	select {
	case startErr = <-started:
	case <-time.After(10 * time.Second):
		// Unblock the reader, so that the test can fail rather than hang.
		for _, path := range fifos {
			if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				_ = w.Close()
			}
		}
		<-started
		t.Fatalf("Start ignored its 2 s context on a FIFO state path; files: %v", stateFiles(dir))
	}
	require.NoError(t, startErr)
	assert.Equal(t, Active, c.Status().State)
	require.NoError(t, c.Close(context.Background()))
	st, err := os.Lstat(filepath.Join(dir, stateBase))
	require.NoError(t, err)
	assert.True(t, st.Mode().IsRegular(), "the FIFO was replaced by the state file")
}
