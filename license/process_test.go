package license

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// The child process: TestMain runs childMain when childEnv is set.
const (
	childEnv   = "LICENSEKIT_TEST_CHILD" // "close" or "crash"
	childURL   = "LICENSEKIT_TEST_CHILD_URL"
	childKey   = "LICENSEKIT_TEST_CHILD_KEY"
	childPub   = "LICENSEKIT_TEST_CHILD_PUB"
	childState = "LICENSEKIT_TEST_CHILD_DIR"
	childLic   = "LICENSEKIT_TEST_CHILD_LICENSE" // default testLicense
)

// childMain starts a client on the state directory it is given, reports
// its slot, waits for its standard input to close, then either closes the
// client or exits at once, as a crashed process would.
func childMain() int {
	lic := os.Getenv(childLic)
	if lic == "" {
		lic = testLicense
	}
	c, err := New(Config{ServerURL: os.Getenv(childURL), APIKey: os.Getenv(childKey),
		ServerPublicKey: os.Getenv(childPub), ProductGUID: testProduct, LicenseKey: lic,
		StateDir: os.Getenv(childState)}, fixedFingerprint(testFingerprint()))
	if err == nil {
		err = c.Start(context.Background())
	}
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("started", filepath.Base(c.store.slot.Path()))
	_, _ = io.Copy(io.Discard, os.Stdin)
	if os.Getenv(childEnv) == "crash" {
		return 0 // no Close: the session stays live, the OS drops the lock
	}
	if err := c.Close(context.Background()); err != nil {
		return 1
	}
	return 0
}

// child starts the test binary as a second process running childMain.
func child(t *testing.T, mode string, srv *licensetest.Server, dir string, env ...string) (slot string, stop func() error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childURL+"="+srv.URL, childKey+"="+srv.Info().APIKey,
		childPub+"="+srv.Info().PublicKey.EncodeBase64(), childState+"="+dir)
	cmd.Env = append(cmd.Env, env...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "started "), "child said %q", line)
	return strings.TrimSpace(strings.TrimPrefix(line, "started ")), func() error {
		stdin.Close()
		return cmd.Wait()
	}
}

// TestTwoProcessesShareStateDir runs a second OS process on the same state
// directory: each gets its own slot and its own session, neither corrupts
// the other's state, and a crashed process's slot and session are taken
// over and cleaned up by the next client.
func TestTwoProcessesShareStateDir(t *testing.T) {
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: time.Hour, GracePeriod: time.Hour}))
	dir := t.TempDir()
	newClient := func() *Client {
		c, err := New(Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
			ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}, fixedFingerprint(testFingerprint()))
		require.NoError(t, err)
		return c
	}

	// A live child holds the first slot; this process gets the second.
	slot, stop := child(t, "close", srv, dir)
	assert.Equal(t, stateBase, slot)
	c := newClient()
	require.NoError(t, c.Start(context.Background()))
	assert.Equal(t, stateBase+"-1", filepath.Base(c.store.slot.Path()))
	assert.Equal(t, 2, srv.SeatsInUse(testProduct, testLicense), "two processes, two sessions")
	require.NoError(t, stop())
	require.NoError(t, c.Close(context.Background()))
	assert.Equal(t, 0, srv.SeatsInUse(testProduct, testLicense))
	for _, name := range []string{stateBase, stateBase + "-1"} {
		_, err := os.Stat(filepath.Join(dir, name))
		assert.NoError(t, err, "both slots keep their state")
	}

	// A child that crashes leaves a live session in the first slot; the next
	// client takes the slot over and ends the orphan.
	_, stop = child(t, "crash", srv, dir)
	require.NoError(t, stop())
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense), "the crashed process's session is still live")
	ends := srv.Count(wire.End)
	c = newClient()
	require.NoError(t, c.Start(context.Background()))
	assert.Equal(t, stateBase, filepath.Base(c.store.slot.Path()), "a dead process's lock is gone")
	assert.Equal(t, ends+1, srv.Count(wire.End), "the orphan was ended")
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense))
	require.NoError(t, c.Close(context.Background()))
}
