package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// TestMain checks that no test leaves a goroutine behind.
func TestMain(m *testing.M) {
	// The tests choose the server themselves.
	os.Unsetenv("LICENSEKIT_SERVER")
	goleak.VerifyTestMain(m)
}

// TestRelative: offsets read as durations, never as thousands of seconds.
func TestRelative(t *testing.T) {
	for d, want := range map[time.Duration]string{
		4050 * time.Millisecond:                  "+4.05s",
		-1500 * time.Millisecond:                 "-1.50s",
		600*time.Second + 120*time.Millisecond:   "+10m0s",
		87000*time.Second + 120*time.Millisecond: "+24h10m0s",
	} {
		assert.Equal(t, want, relative(d), "%v", d)
	}
}

// stateLine matches a state change in the timeline.
var stateLine = regexp.MustCompile(`(?m)^\S+\s+state\s+(\w+) → (\w+)`)

// transitions returns the state changes printed in out, as "From → To".
func transitions(out string) []string {
	var got []string
	for _, m := range stateLine.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1]+" → "+m[2])
	}
	return got
}

// TestRunAgainstMock runs the default demo and checks its timeline.
func TestRunAgainstMock(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-for", "3s"}, &out))
	s := out.String()
	assert.Equal(t, []string{"Idle → Active", "Active → Ended"}, transitions(s), s)
	assert.Contains(t, s, "in-process mock server at http://127.0.0.1:")
	assert.Regexp(t, `(?m)^\+\d+\.\d\ds\s+renewed\s+session until \+\d+\.\d\ds`, s)
	assert.Contains(t, s, `HasFeature("export")=true  HasFeature("pro")=true  HasFeature("enterprise")=false  Valid()=true`)
	assert.Contains(t, s, `"export,pro", parsed as [export pro]`)
	assert.Contains(t, s, "-for 3s has passed")
	assert.Contains(t, s, "client closed; session ended")
	stop := strings.Index(s, "closing the client")
	require.Positive(t, stop)
	assert.NotContains(t, s[stop:], "renewed", "no renewal is reported after closing began")
	assert.Contains(t, s, "0 live sessions after Close")
	assert.Regexp(t, `final state Ended\n$`, s)
}

// TestRunStopsOnInterrupt cancels ctx, as Ctrl-C does, and expects a
// clean close.
func TestRunStopsOnInterrupt(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"-for", "0"}, &out))
	s := out.String()
	assert.Equal(t, []string{"Idle → Active", "Active → Ended"}, transitions(s), s)
	assert.Contains(t, s, "interrupted; closing the client")
}

// TestRunAgainstServerFlags points the quickstart at a server through the
// real-server flags, in both envelope modes, with the key given as @file.
func TestRunAgainstServerFlags(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: "p-1", Key: "K-1", Features: "sso"}))
	keyFile := filepath.Join(t.TempDir(), "server.pem")
	require.NoError(t, os.WriteFile(keyFile, srv.Info().PublicKey.EncodePEM(), 0o600))
	stateDir := t.TempDir()

	for name, key := range map[string][]string{
		"public key file": {"-public-key", "@" + keyFile, "-state-dir", stateDir},
		"shared secret":   {"-shared-secret", base64.StdEncoding.EncodeToString(srv.Info().Secret)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"-for", "300ms", "-server", srv.URL, "-api-key", srv.Info().APIKey,
				"-product", "p-1", "-license", "K-1"}, key...)
			var out bytes.Buffer
			require.NoError(t, run(context.Background(), args, &out))
			s := out.String()
			assert.Equal(t, []string{"Idle → Active", "Active → Ended"}, transitions(s), s)
			assert.Contains(t, s, "licence server "+srv.URL+", product p-1")
			assert.NotContains(t, s, "in-process mock")
			assert.Contains(t, s, `"sso", parsed as [sso]`)
			assert.NotContains(t, s, srv.Info().APIKey)
		})
	}
}

// startServer starts a mock holding lic and returns it with the flags that
// point the quickstart at it in shared-secret mode.
func startServer(t *testing.T, lic licensetest.License) (*licensetest.Server, []string) {
	t.Helper()
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(lic))
	return srv, []string{"-server", srv.URL, "-api-key", srv.Info().APIKey,
		"-shared-secret", base64.StdEncoding.EncodeToString(srv.Info().Secret), "-product", lic.ProductGUID, "-license", lic.Key}
}

// TestRunStopsWhenRefused revokes the licence while the quickstart runs:
// the next renewal is refused, Done closes, and run reports why.
func TestRunStopsWhenRefused(t *testing.T) {
	t.Parallel()
	srv, args := startServer(t, licensetest.License{ProductGUID: "p-2", Key: "K-2",
		SessionDuration: time.Second, GracePeriod: time.Hour})
	stop := make(chan struct{})
	revoked := make(chan struct{})
	go func() { // revoke once the session has begun
		defer close(revoked)
		for srv.SeatsInUse("p-2", "K-2") == 0 {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		_ = srv.SetLicenseState("p-2", "K-2", licensetest.Revoked)
	}()
	t.Cleanup(func() { close(stop); <-revoked })
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"-for", "5s"}, args...), &out)
	require.ErrorIs(t, err, license.ErrRevoked)
	s := out.String()
	assert.Equal(t, []string{"Idle → Active", "Active → Refused"}, transitions(s), s, "Close keeps Refused")
	assert.Contains(t, s, "the licence can no longer be used")
	assert.NotContains(t, s, "session ended", "the refused session was not ended by Close")
}

// TestRunRefusedAtStart starts with a revoked licence: the quickstart says
// so and does not claim to have ended a session.
func TestRunRefusedAtStart(t *testing.T) {
	t.Parallel()
	srv, args := startServer(t, licensetest.License{ProductGUID: "p-3", Key: "K-3"})
	require.NoError(t, srv.SetLicenseState("p-3", "K-3", licensetest.Revoked))
	var out bytes.Buffer
	err := run(context.Background(), args, &out)
	require.ErrorIs(t, err, license.ErrRevoked)
	s := out.String()
	assert.NotContains(t, s, "session ended", s)
	assert.Contains(t, s, "client closed; no live session to end", s)
}

// TestRunRejectsBadInput checks that bad flags fail before any I/O.
func TestRunRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-nope"}, "flag provided but not defined"},
		{"extra argument", []string{"extra"}, `unexpected arguments: ["extra"]`},
		{"incomplete server config", []string{"-server", "https://licensing.example.com/api/v2"}, "APIKey"},
		{"bad secret", []string{"-server", "https://h/api/v2", "-shared-secret", "!!"}, "-shared-secret: not standard base64"},
		{"missing key file", []string{"-server", "https://h/api/v2", "-public-key", "@/nonexistent/key.pem"}, "-public-key:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tc.args, &bytes.Buffer{})
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	err := run(context.Background(), []string{"-server", "https://h/api/v2"}, &bytes.Buffer{})
	assert.ErrorIs(t, err, license.ErrInvalidConfig)
}

// taggedLine matches a state change of the outage demo, tagged with its process.
var taggedLine = regexp.MustCompile(`(?m)^\S+\s+\[(\d)\]\s+state\s+(\w+) → (\w+)`)

// transitions returns the state changes printed in out, as "[n] From → To".
func taggedTransitions(out string) []string {
	var got []string
	for _, m := range taggedLine.FindAllStringSubmatch(out, -1) {
		got = append(got, "["+m[1]+"] "+m[2]+" → "+m[3])
	}
	return got
}

// twoOutages are the state changes of the outage demo up to the second
// outage's Grace.
var twoOutages = []string{"[1] Idle → Active", "[1] Active → Grace", "[1] Grace → Active", "[1] Active → Grace"}

// TestRunWithRestart runs the whole script at speed 4 and checks the
// state sequence, the restart and the feature gate.
func TestRunWithRestart(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-outage", "-speed", "4"}, &out))
	s := out.String()
	assert.Equal(t, append(twoOutages,
		"[1] Grace → Ended", // the process stops while offline
		"[2] Idle → Grace",  // and starts again, in Grace
		"[2] Grace → Expired",
		"[2] Expired → Ended",
	), taggedTransitions(s), s)

	// The restarted process resumes the old grace deadline.
	deadlines := regexp.MustCompile(`grace deadline (?:before|after) the restart:\s+(\S+)\s+\((\S+)\)`).FindAllStringSubmatch(s, -1)
	require.Len(t, deadlines, 2, s)
	assert.Equal(t, deadlines[0][1:], deadlines[1][1:])
	assert.Contains(t, s, "same grace deadline: yes")

	// The feature gate is open until Expired, then closed.
	expired := strings.Index(s, "Grace → Expired")
	require.Positive(t, expired)
	assert.NotContains(t, s[:expired], "CLOSED")
	assert.Contains(t, s[expired:], `HasFeature("pro")=false Valid()=false: CLOSED`)
	assert.Contains(t, s[expired:], "Done() stays open (Expired can recover); Status().Reason = "+license.ErrGraceExpired.Error())

	// Piped output is plain: no carriage returns.
	assert.NotContains(t, s, "\r")
}

// TestRunWithoutRestart keeps one client through the second outage.
func TestRunWithoutRestart(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-outage", "-speed", "4", "-restart=false"}, &out))
	s := out.String()
	assert.Equal(t, append(twoOutages, "[1] Grace → Expired", "[1] Expired → Ended"), taggedTransitions(s), s)
	assert.NotContains(t, s, "[2]")
}

// TestRunRejectsBadFlags checks flag validation.
func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-outage", "-speed", "3"}, {"-outage", "-nope"}, {"-outage", "extra"}, {"-outage", "-server", "https://h/api/v2"}} {
		assert.Error(t, run(context.Background(), args, &bytes.Buffer{}), "run(%q)", args)
	}
}

// TestRunStopsWhenInterrupted ends ctx mid-script and expects its error.
func TestRunStopsWhenInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := run(ctx, []string{"-outage", "-speed", "4"}, &bytes.Buffer{})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestIsTerminal checks that buffers and regular files are not terminals.
func TestIsTerminal(t *testing.T) {
	t.Parallel()
	assert.False(t, isTerminal(&bytes.Buffer{}))
	f, err := os.CreateTemp(t.TempDir(), "out")
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, isTerminal(f), "a regular file is not a terminal")
}

// TestTimelineRedrawsOnTerminal checks the terminal mode: the status line is
// redrawn in place and erased before the next full line.
func TestTimelineRedrawsOnTerminal(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	tl := newTimeline(&out)
	tl.tty = true
	tl.status("Grace: 7.9s left")
	tl.status("Grace: 7.8s left")
	tl.line(0, "server", "up again")
	s := out.String()
	assert.Equal(t, 2, strings.Count(s, "status   Grace:"), s)
	assert.Regexp(t, `\r\+\S+\s+status\s+Grace: 7\.8s left\r {10,}\r\+\S+\s+server\s+up again\n$`, s)
	assert.Equal(t, 1, strings.Count(s, "\n"))
}
