package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/internal/testhome"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// childEnv makes the test binary run the command itself, as a separate
// process, so that each run is a real process as a user's would be.
const childEnv = "LICENSEKIT_CLI_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(run(context.Background(), nil, os.Stdout, os.Stderr))
	}
	// State files and anti-rollback records stay out of the real user's
	// configuration directory.
	goleak.VerifyTestMain(testhome.M(m))
}

const (
	testProduct = "cli-demo"
	testLicense = "CLI-KEY-1"
)

// cliServer starts a mock server with the example's licence.
func cliServer(t *testing.T, session time.Duration) *licensetest.Server {
	t.Helper()
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: session, GracePeriod: time.Hour, Features: "pro,export"}))
	return srv
}

// runCLI runs the command once as a process, configured the way a user
// would: through LICENSEKIT_* variables.
func runCLI(t *testing.T, srv *licensetest.Server, dir string, env ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1",
		"LICENSEKIT_SERVER="+srv.URL, "LICENSEKIT_API_KEY="+srv.Info().APIKey,
		"LICENSEKIT_PUBLIC_KEY="+srv.Info().PublicKey.EncodeBase64(),
		"LICENSEKIT_PRODUCT="+testProduct, "LICENSEKIT_LICENSE="+testLicense,
		"LICENSEKIT_STATE_DIR="+dir,
		// The race detector otherwise sleeps a second at every exit.
		"GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...) // later entries win
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String() + errOut.String(), code
}

// TestHundredRuns runs the command 100 times (20 with -short) in a row within one session
// duration: one begin_session in total, no more extends than the elapsed
// time requires, and not one request from a run that found the live
// session.
func TestHundredRuns(t *testing.T) {
	const session = 10 * time.Minute
	srv := cliServer(t, session)
	dir := t.TempDir()
	start := time.Now()
	hows := map[string]int{}
	// -short (the Windows stage under Wine, where a process start costs over a second) runs 20.
	runs := 100
	if testing.Short() {
		runs = 20
	}
	for i := range runs {
		before := srv.Count("")
		out, code := runCLI(t, srv, dir)
		require.Equal(t, 0, code, "run %d: %s", i, out)
		assert.Contains(t, out, "licence: Active\n", "run %d", i)
		assert.Contains(t, out, "feature pro: enabled\n", "run %d", i)
		line := out[strings.Index(out, "how: "):]
		h := strings.Fields(line)[1]
		hows[h]++
		if h == "resumed" || h == "follower" {
			assert.Equal(t, before, srv.Count(""), "run %d found a live session but made requests", i)
		}
	}
	elapsed := time.Since(start)
	assert.Equal(t, map[string]int{"fresh": 1, "resumed": runs - 1}, hows)
	assert.Equal(t, 1, srv.Count(wire.Begin), "begin_session calls")
	assert.Equal(t, 1, srv.Count(wire.Register), "register_instance calls")
	// A renewal falls due at half the session at the earliest.
	assert.LessOrEqual(t, srv.Count(wire.Extend), int(elapsed/(session/2)), "extends after %s", elapsed)
	assert.Equal(t, 0, srv.Count(wire.End), "the session is left to lapse")
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense))
	t.Logf("%d runs in %s; server counts: register %d, begin %d, extend %d, end %d", runs, elapsed.Round(time.Millisecond),
		srv.Count(wire.Register), srv.Count(wire.Begin), srv.Count(wire.Extend), srv.Count(wire.End))
}

// TestNeedsServer checks that the command refuses to run without a server.
func TestNeedsServer(t *testing.T) {
	t.Setenv("LICENSEKIT_SERVER", "")
	var out, errOut bytes.Buffer
	assert.Equal(t, exitUsage, run(context.Background(), nil, &out, &errOut))
	assert.Contains(t, errOut.String(), "a licence server is required")
}

// TestWrongAPIKeyIsLoud: after one good run, a run with a wrong API key
// (the vendor's or the product's configuration fault) still may use the
// licence on the saved session, but says so: the server was asked, and the
// fault and its likely causes are printed.
func TestWrongAPIKeyIsLoud(t *testing.T) {
	srv := cliServer(t, 10*time.Minute)
	dir := t.TempDir()
	out, code := runCLI(t, srv, dir)
	require.Equal(t, exitValid, code, out)
	assert.NotContains(t, out, "configuration fault")

	out, code = runCLI(t, srv, dir, "LICENSEKIT_API_KEY=nope")
	assert.Equal(t, exitValid, code, "the customer keeps the saved session: %s", out)
	assert.Contains(t, out, "licence: Active")
	assert.Contains(t, out, "cli: configuration fault:")
	assert.Contains(t, out, "API key")
	assert.NotContains(t, out, "resumed", "a session answered under other credentials is not resumed in silence")
}
