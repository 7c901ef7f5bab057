package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/internal/testhome"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// TestMain checks that no test leaves a goroutine behind, and keeps the
// anti-rollback records of the offline side out of the real user's
// configuration directory.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testhome.M(m))
}

// runCmd runs the program with args and returns its exit status and output.
func runCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestDemo runs the one-run ceremony and checks what it reports.
func TestDemo(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCmd(t, "", "-qr")
	require.Equal(t, exitOK, code, out+errOut)
	for _, want := range []string{
		"request: activation",
		"Endpoint: register_instance",
		"registered: the server assigned this machine's instance",
		"Endpoint: begin_session",
		"activate: licence Active",
		"licence: Active, valid true, features [export pro]",
		"seats in use: 1",
		"the begin_session file posted twice more: same reply true, seats in use: 1",
		"start (offline): Active",
		"request: refresh",
		"refreshed: licence Active",
		"the refresh reply loaded again: refused:",
		"deactivate: end_session request file",
		"licence Idle, valid false",
		"seats in use: 0",
		"the old reply file after deactivation: refused:",
		"QR code: version ",
	} {
		assert.Contains(t, out, want)
	}
	assert.Less(t, strings.Index(out, "seats in use: 1"), strings.Index(out, "seats in use: 0"))
}

// offlineSide runs a subcommand of the offline machine, configured by
// flags for srv with state in dir.
func offlineSide(t *testing.T, srv *licensetest.Server, dir string, args ...string) (int, string, string) {
	t.Helper()
	args = append(args, "-product", "offline-product", "-license", "LIC-OFFLINE-42",
		"-api-key", srv.Info().APIKey, "-public-key", srv.Info().PublicKey.EncodeBase64(), "-state-dir", dir)
	return runCmd(t, "", args...)
}

// exchange runs the online half on in and returns the reply file.
func exchange(t *testing.T, srv *licensetest.Server, in, out string) []byte {
	t.Helper()
	code, stdout, stderr := runCmd(t, "", "exchange", "-in", in, "-out", out, "-server", srv.URL, "-api-key", srv.Info().APIKey)
	require.Equal(t, exitOK, code, stdout+stderr)
	assert.Contains(t, stdout, "reply file: "+out)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b
}

// TestHalves runs the two halves as separate commands, each run a new
// process's worth of client on the same state directory, against a mock
// server over loopback: request, exchange, activate (twice for a new
// machine), status, refresh, deactivate.
func TestHalves(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: "offline-product", Key: "LIC-OFFLINE-42", Seats: 1,
		SessionDuration: 30 * 24 * time.Hour, GracePeriod: 7 * 24 * time.Hour, Features: "pro"}))
	state, files := t.TempDir(), t.TempDir()
	f := func(name string) string { return filepath.Join(files, name) }

	// Before any activation the licence is not usable.
	code, _, stderr := offlineSide(t, srv, state, "status")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "licence not usable")

	// First trip: register_instance.
	code, out, stderr := offlineSide(t, srv, state, "request", "-out", f("req1.txt"))
	require.Equal(t, exitOK, code, out+stderr)
	assert.Contains(t, out, "Endpoint: register_instance")
	assert.Contains(t, out, "Licence: LIC-...E-42")
	exchange(t, srv, f("req1.txt"), f("reply1.txt"))
	code, out, stderr = offlineSide(t, srv, state, "activate", "-in", f("reply1.txt"))
	require.Equal(t, exitOK, code, out+stderr)
	assert.Contains(t, out, "registered")
	assert.Zero(t, srv.SeatsInUse("offline-product", "LIC-OFFLINE-42"))

	// Second trip: begin_session; the same file exchanged twice gets the
	// same reply and takes one seat.
	code, out, stderr = offlineSide(t, srv, state, "request", "-out", f("req2.txt"), "-qr")
	require.Equal(t, exitOK, code, out+stderr)
	assert.Contains(t, out, "Endpoint: begin_session")
	assert.Contains(t, out, "QR code: version ")
	assert.Contains(t, out, "▀", "the QR code is drawn with half blocks")
	reply2 := exchange(t, srv, f("req2.txt"), f("reply2.txt"))
	again := exchange(t, srv, f("req2.txt"), f("reply2-again.txt"))
	assert.Equal(t, string(replyBodies(reply2)), string(replyBodies(again)), "a copy of a request file gets the same reply")
	assert.Equal(t, 1, srv.SeatsInUse("offline-product", "LIC-OFFLINE-42"), "a copy of a request file takes no second seat")
	code, out, stderr = offlineSide(t, srv, state, "activate", "-in", f("reply2-again.txt"))
	require.Equal(t, exitOK, code, out+stderr)
	assert.Contains(t, out, "licence: Active")
	assert.Contains(t, out, "features: pro")

	// A later run, offline: Active from the state.
	code, out, stderr = offlineSide(t, srv, state, "status")
	require.Equal(t, exitOK, code, out+stderr)
	assert.Contains(t, out, "licence: Active")

	// The reply applied once is not applied again.
	code, _, stderr = offlineSide(t, srv, state, "activate", "-in", f("reply2.txt"))
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "no request file is pending")

	// Refresh: extend_session.
	code, out, stderr = offlineSide(t, srv, state, "request", "-out", f("req3.txt"))
	require.Equal(t, exitOK, code, out+stderr)
	assert.Contains(t, out, "Kind: refresh")
	exchange(t, srv, f("req3.txt"), f("reply3.txt"))
	code, out, stderr = offlineSide(t, srv, state, "activate", "-in", f("reply3.txt"))
	require.Equal(t, exitOK, code, out+stderr)
	assert.Contains(t, out, "licence: Active")

	// Deactivate: not usable here any more; the seat is freed once the
	// file reaches the server.
	code, out, stderr = offlineSide(t, srv, state, "deactivate", "-out", f("end.txt"))
	require.Equal(t, exitOK, code, out+stderr)
	assert.Contains(t, out, "valid: false")
	code, _, stderr = offlineSide(t, srv, state, "status")
	assert.Equal(t, exitError, code, "not usable after deactivation")
	assert.Contains(t, stderr, "licence not usable")
	assert.Equal(t, 1, srv.SeatsInUse("offline-product", "LIC-OFFLINE-42"))
	exchange(t, srv, f("end.txt"), f("end-reply.txt"))
	assert.Zero(t, srv.SeatsInUse("offline-product", "LIC-OFFLINE-42"))
	code, _, _ = offlineSide(t, srv, state, "activate", "-in", f("reply3.txt"))
	assert.Equal(t, exitError, code, "an old reply file after deactivation")
}

// TestDeactivateUnwritable: when the deactivation file cannot be written,
// nothing changes: the licence stays usable.
func TestDeactivateUnwritable(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewServer(nil)
	defer srv.Close()
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: "offline-product", Key: "LIC-OFFLINE-42", Seats: 1,
		SessionDuration: 24 * time.Hour, GracePeriod: time.Hour}))
	state, files := t.TempDir(), t.TempDir()
	for i := 1; ; i++ {
		req, reply := filepath.Join(files, "req"), filepath.Join(files, "reply")
		code, out, stderr := offlineSide(t, srv, state, "request", "-out", req)
		require.Equal(t, exitOK, code, out+stderr)
		exchange(t, srv, req, reply)
		code, out, stderr = offlineSide(t, srv, state, "activate", "-in", reply)
		require.Equal(t, exitOK, code, out+stderr)
		if strings.Contains(out, "licence: Active") {
			break
		}
		require.Less(t, i, 2)
	}
	code, _, _ := offlineSide(t, srv, state, "deactivate", "-out", filepath.Join(files, "no-such-dir", "end.txt"))
	assert.Equal(t, exitError, code)
	code, out, stderr := offlineSide(t, srv, state, "status")
	assert.Equal(t, exitOK, code, out+stderr)
	assert.Contains(t, out, "licence: Active")
}

// TestUsage checks the command line's errors.
func TestUsage(t *testing.T) {
	t.Parallel()
	code, _, stderr := runCmd(t, "", "frobnicate")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, `unknown command "frobnicate"`)
	code, _, stderr = runCmd(t, "", "request")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "-out is required")
	code, _, stderr = runCmd(t, "", "exchange", "-in", "x")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "required")
	code, _, _ = runCmd(t, "", "demo", "stray")
	assert.Equal(t, exitUsage, code)
	code, _, stderr = runCmd(t, "not a request file", "exchange", "-in", "-", "-out", "-", "-server", "http://127.0.0.1:1/api/v2")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "offline exchange")
}
