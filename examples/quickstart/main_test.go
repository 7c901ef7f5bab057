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

// stateLine matches a state change in the timeline.
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

// TestRunStopsWhenRefused revokes the licence while the quickstart runs:
// the next renewal is refused, Done closes, and run reports why.
func TestRunStopsWhenRefused(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: "p-2", Key: "K-2",
		SessionDuration: time.Second, GracePeriod: time.Hour}))
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
	err := run(context.Background(), []string{"-for", "5s", "-server", srv.URL, "-api-key", srv.Info().APIKey,
		"-shared-secret", base64.StdEncoding.EncodeToString(srv.Info().Secret), "-product", "p-2", "-license", "K-2"}, &out)
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
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: "p-3", Key: "K-3"}))
	require.NoError(t, srv.SetLicenseState("p-3", "K-3", licensetest.Revoked))
	var out bytes.Buffer
	err := run(context.Background(), []string{"-server", srv.URL, "-api-key", srv.Info().APIKey,
		"-shared-secret", base64.StdEncoding.EncodeToString(srv.Info().Secret), "-product", "p-3", "-license", "K-3"}, &out)
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
