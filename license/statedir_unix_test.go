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

	"github.com/licensekit/licensekit-go/internal/statefile"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// TestFIFOAtStatePath puts a FIFO where the state file belongs and starts
// with a 2 s context. Start neither blocks on it nor ignores its context:
// the FIFO is moved aside as corrupt state, the session begins, and Close
// returns.
func TestFIFOAtStatePath(t *testing.T) {
	srv := hourServer(t)
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
	c, err := New(Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
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

// hourServer is a real mock server with the test licence: one-hour
// sessions and an hour of grace.
func hourServer(t *testing.T) *licensetest.Server {
	t.Helper()
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: time.Hour, GracePeriod: time.Hour}))
	return srv
}

// TestSharedFIFOs puts a FIFO where a shared-mode file belongs: the shared
// state, its lock files, and the anti-rollback record. Start never blocks
// on one and honours its 2 s context: a FIFO in place of the state is moved
// aside as corrupt, one in place of a lock file makes the client run
// unshared on memory (and say so), one in place of the record leaves the
// client without the record (and says so). Every Start succeeds.
func TestSharedFIFOs(t *testing.T) {
	srv := hourServer(t)
	name := statefile.SharedName(testProduct, testLicense)
	for _, which := range []string{"state", ".lock", ".members", "record"} {
		t.Run(which, func(t *testing.T) {
			dir, records := t.TempDir(), t.TempDir()
			cfg := Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
				ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}
			var discarded []string
			c, err := New(cfg, fixedFingerprint(testFingerprint()), WithSharedSession(SharedSession{}),
				WithRollbackRecordDir(records), WithEventHandler(func(e Event) {
					if e.Type == EventStateDiscarded {
						discarded = append(discarded, e.Detail)
					}
				}))
			require.NoError(t, err)
			var path string
			switch which {
			case "state":
				path = filepath.Join(dir, name)
			case "record":
				abs, err := filepath.Abs(dir)
				require.NoError(t, err)
				path = filepath.Join(records, recordName(&c.cfg, filepath.Join(abs, name), 0))
			default:
				path = filepath.Join(dir, name+which)
			}
			require.NoError(t, syscall.Mkfifo(path, 0o600))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			started := make(chan error, 1)
			go func() { started <- c.Start(ctx) }()
			select {
			case err = <-started:
			case <-time.After(10 * time.Second):
				if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					_ = w.Close()
				}
				<-started
				t.Fatalf("Start blocked on a FIFO at %s", which)
			}
			require.NoError(t, err)
			assert.Equal(t, Active, c.Status().State)
			require.NoError(t, c.Close(context.Background()))
			switch which {
			case "state":
				st, err := os.Lstat(path)
				require.NoError(t, err)
				assert.True(t, st.Mode().IsRegular(), "the FIFO was replaced by the shared state")
				assert.Equal(t, Renewer, c.Shared().Role)
			case ".lock", ".members":
				assert.Equal(t, NotShared, c.Shared().Role, "unshared")
				assert.Contains(t, discarded, "shared state unusable; unshared, in memory only")
			}
		})
	}
}
