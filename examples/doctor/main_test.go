package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/license/doctor"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

func TestMain(m *testing.M) {
	for _, v := range []string{"LICENSEKIT_SERVER", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		os.Unsetenv(v)
	}
	goleak.VerifyTestMain(m)
}

// checkLine matches one check line of the text output.
var checkLine = regexp.MustCompile(`(?m)^(\w+)\s+(ok|warn|fail|skipped)\s+\S`)

// TestMockReport runs the doctor with no flags: a full report against the
// embedded mock, every check present, none failed, exit code 0.
func TestMockReport(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	bundle := filepath.Join(t.TempDir(), "bundle.json")
	code := run(context.Background(), []string{"-bundle", bundle}, &out, &errOut)
	s := out.String()
	require.Equal(t, 0, code, s+errOut.String())
	var ids []string
	for _, m := range checkLine.FindAllStringSubmatch(s, -1) {
		ids = append(ids, m[1])
		assert.NotEqual(t, "fail", m[2], m[0])
	}
	assert.Equal(t, []string{"config", "dns", "proxy", "tcp", "tls", "http", "clock", "state", "fingerprint", "license", "roundtrip"}, ids)
	assert.Contains(t, s, "diagnosing a run against the in-process mock server")
	assert.Regexp(t, `(?m)^http\s+ok\s+the licence server answered in `, s)
	assert.Regexp(t, `(?m)^state\s+ok\s+the state directory is usable and the saved state opens`, s)
	assert.Contains(t, s, "support bundle written to "+bundle)

	f, err := os.Open(bundle)
	require.NoError(t, err)
	defer f.Close()
	b, err := doctor.ReadBundle(f)
	require.NoError(t, err)
	assert.Len(t, b.Report.Checks, 11)
	assert.NotContains(t, mustRead(t, bundle), "DEMO-KEY")
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return string(b)
}

// TestJSONAndFull: -json prints the report as JSON; -full adds the round
// trip.
func TestJSONAndFull(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	code := run(context.Background(), []string{"-json", "-full"}, &out, &bytes.Buffer{})
	require.Equal(t, 0, code, out.String())
	var rep doctor.Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	rt, ok := rep.Check(doctor.CheckRoundTrip)
	require.True(t, ok)
	assert.Equal(t, doctor.OK, rt.Verdict, rt.Finding)
}

// TestExitCodeOnFailure: a real server whose clock is an hour off; the
// exit code says a check failed.
func TestExitCodeOnFailure(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: "p-1", Key: "K-1"}))
	srv.SetClockSkew(-time.Hour)
	var out bytes.Buffer
	code := run(context.Background(), []string{"-server", srv.URL, "-api-key", srv.Info().APIKey,
		"-shared-secret", base64.StdEncoding.EncodeToString(srv.Info().Secret), "-product", "p-1", "-license", "K-1",
		"-state-dir", t.TempDir()}, &out, &bytes.Buffer{})
	assert.Equal(t, 1, code, out.String())
	assert.Regexp(t, `(?m)^clock\s+fail\s+this machine's clock is 1h0m0s ahead of the server's`, out.String())
	assert.NotContains(t, out.String(), srv.Info().APIKey)
}

// TestBadFlags: exit code 2 and a message.
func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-compare", "/nonexistent/bundle.json"}} {
		var errOut bytes.Buffer
		code := run(context.Background(), args, &bytes.Buffer{}, &errOut)
		assert.Equal(t, 2, code, strings.Join(args, " "))
	}
}
