package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/admin"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	secret := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	for _, tt := range []struct {
		name    string
		args    []string
		check   func(t *testing.T, o *options)
		wantErr []string
	}{
		{name: "defaults", args: nil, check: func(t *testing.T, o *options) {
			assert.Equal(t, "127.0.0.1:8080", o.listen)
			assert.Equal(t, "127.0.0.1:8081", o.admin)
			assert.Equal(t, envelope.KEMX25519, o.kem)
			assert.Equal(t, licensetest.Exact, o.match)
			assert.Equal(t, []licensetest.License{{ProductGUID: "demo-product", Key: "DEMO-KEY",
				SessionDuration: licensetest.DefaultSessionDuration, GracePeriod: time.Hour}}, o.licenses)
		}},
		{name: "licences", args: []string{
			"-seats", "3", "-session", "5m", "-grace", "0s",
			"-license", "product=a,key=K1",
			"-license", "product=b,key=K2,seats=1,session=1m,grace=2m,max=3m,state=revoked,features=pro,export=1",
		}, check: func(t *testing.T, o *options) {
			assert.Equal(t, []licensetest.License{
				{ProductGUID: "a", Key: "K1", Seats: 3, SessionDuration: 5 * time.Minute},
				{ProductGUID: "b", Key: "K2", Seats: 1, SessionDuration: time.Minute, GracePeriod: 2 * time.Minute,
					MaxDuration: 3 * time.Minute, State: licensetest.Revoked, Features: "pro,export=1"},
			}, o.licenses)
		}},
		{name: "everything else", args: []string{
			"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-sealed", "-tls", "-kem", "mlkem768x25519",
			"-secret", secret, "-api-key", "ak", "-match", "3", "-rotate-tokens", "-for", "5s", "-json", "-v",
		}, check: func(t *testing.T, o *options) {
			assert.True(t, o.sealed && o.tls && o.rotate && o.jsonOut && o.debug)
			assert.Equal(t, envelope.KEMMLKEM768X25519, o.kem)
			assert.Equal(t, bytes.Repeat([]byte{7}, 32), o.secret)
			assert.Equal(t, "ak", o.apiKey)
			assert.Equal(t, licensetest.KOfN(3), o.match)
			assert.Equal(t, 5*time.Second, o.runFor)
		}},
		{name: "bad values", args: []string{
			"-kem", "rsa", "-secret", "!!", "-match", "9", "-for", "-1s",
			"-license", "product=a", "-license", "product=a,key=b,seats=x", "-license", "product=a,key=b,color=red",
			"-license", "product=a,key=b,state=gone", "-license", "nonsense", "extra",
		}, wantErr: []string{
			`unexpected arguments: ["extra"]`, `-kem: unknown KEM "rsa"`, "-secret: not standard base64",
			`-match: want exact or 1..5, got "9"`, "-for: negative duration",
			`-license "product=a": product and key are required`,
			`-license "product=a,key=b,seats=x": seats:`,
			`unknown field "color"`, `unknown state "gone"`, `"nonsense" is not name=value`,
		}},
		{name: "short secret", args: []string{"-secret", base64.StdEncoding.EncodeToString([]byte("short"))},
			wantErr: []string{"-secret: 5 bytes, need at least 32"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			o, err := parseFlags(tt.args, &stderr)
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, o)
		})
	}
	_, err := parseFlags([]string{"-h"}, io.Discard)
	assert.ErrorIs(t, err, flag.ErrHelp)
}

// lineWriter is an io.Writer safe for the test and run to share.
type lineWriter struct{ ch chan []byte }

func (w lineWriter) Write(p []byte) (int, error) {
	w.ch <- bytes.Clone(p)
	return len(p), nil
}

// startRun runs the command with -json until stop is called, and returns
// the information it printed; stop returns run's result.
func startRun(t *testing.T, args ...string) (in info, stop func() error) {
	t.Helper()
	out := lineWriter{make(chan []byte, 8)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"-json"}, args...), out, io.Discard) }()
	stop = func() error {
		cancel()
		return <-done
	}
	select {
	case b := <-out.ch:
		require.NoError(t, json.Unmarshal(b, &in))
	case err := <-done:
		cancel()
		t.Fatalf("run ended early: %v", err)
	}
	return in, stop
}

func TestRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "server.key")
	certFile := filepath.Join(dir, "cert.pem")
	in, stop := startRun(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-tls",
		"-cert-out", certFile, "-key-file", keyFile, "-sealed", "-admin-token", "tok-123",
		"-license", "product=app,key=K,seats=1,session=1m,grace=1h,features=pro")
	assert.True(t, strings.HasPrefix(in.URL, "https://127.0.0.1:"))
	assert.Equal(t, "required", in.SealedReplies)
	assert.Contains(t, in.TLSCertificate, "BEGIN CERTIFICATE")
	cert, err := os.ReadFile(certFile)
	require.NoError(t, err)
	assert.Equal(t, in.TLSCertificate, string(cert))

	// The key file was created and holds the printed key.
	text, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	priv, err := envelope.ParsePrivateKey(text)
	require.NoError(t, err)
	assert.Equal(t, in.KeyID, priv.KeyID())
	pub, err := envelope.ParsePublicKey([]byte(in.PublicKey))
	require.NoError(t, err)
	assert.True(t, pub.Equal(priv.Public()))
	pubPEM, err := envelope.ParsePublicKey([]byte(in.PublicKeyPEM))
	require.NoError(t, err)
	assert.True(t, pubPEM.Equal(pub))
	secret, err := base64.StdEncoding.DecodeString(in.SharedSecret)
	require.NoError(t, err)
	assert.Len(t, secret, 32)

	// The admin API needs the token, answers with it and can take the API
	// down.
	assert.Equal(t, "tok-123", in.AdminToken)
	assert.Equal(t, in.AdminURL+"?token=tok-123", in.ConsoleURL)
	resp, err := http.Post(in.AdminURL+"down?on=1", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, err = http.Post(in.AdminURL+"down?on=1&token=tok-123", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	req, err := http.NewRequest(http.MethodGet, in.AdminURL+"state", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer tok-123")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	var st struct {
		Down     bool                `json:"down"`
		Licenses []admin.LicenseInfo `json:"licenses"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	resp.Body.Close()
	assert.True(t, st.Down)
	assert.Equal(t, []admin.LicenseInfo{{ProductGUID: "app", Key: "K", Seats: 1, Session: "1m0s", Grace: "1h0m0s", State: "active", Features: "pro"}}, st.Licenses)

	require.NoError(t, stop())
	http.DefaultClient.CloseIdleConnections()

	// A second run reuses the key file and exits by itself with -for.
	out2 := lineWriter{make(chan []byte, 1)}
	err = run(context.Background(), []string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-key-file", keyFile, "-for", "1ms"}, out2, io.Discard)
	require.NoError(t, err)
	text2 := string(<-out2.ch)
	assert.Contains(t, text2, "key id:         "+in.KeyID)
	assert.Contains(t, text2, "license:        product=demo-product key=DEMO-KEY")
	assert.Regexp(t, `console:        http://127\.0\.0\.1:\d+/admin/\?token=[A-Za-z0-9_-]{32}\n`, text2)
}

// TestRunScenario plays a scenario in real time: the server goes down at
// once and comes back up 50 ms later.
func TestRunScenario(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "s.txt")
	require.NoError(t, os.WriteFile(file, []byte("at 0s license product=app key=K\nat 0s down 503 for=50ms\n"), 0o600))
	in, stop := startRun(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-scenario", file)
	state := func() (bool, *admin.ScenarioProgress) {
		req, _ := http.NewRequest(http.MethodGet, in.AdminURL+"state", nil)
		req.Header.Set("Authorization", "Bearer "+in.AdminToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var st struct {
			Down     bool                    `json:"down"`
			Scenario *admin.ScenarioProgress `json:"scenario"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
		return st.Down, st.Scenario
	}
	require.Eventually(t, func() bool {
		down, sc := state()
		return !down && sc != nil && !sc.Running && sc.Next == 3
	}, 10*time.Second, 10*time.Millisecond)
	_, sc := state()
	assert.Equal(t, file, sc.Name)
	assert.Empty(t, sc.Error)
	require.NoError(t, stop())
	http.DefaultClient.CloseIdleConnections()

	bad := filepath.Join(t.TempDir(), "bad.txt")
	require.NoError(t, os.WriteFile(bad, []byte("at 0s up\nat 1m dwn\n"), 0o600))
	err := run(context.Background(), []string{"-scenario", bad}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "line 2: unknown command \"dwn\"")
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"-kem", "nope"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "unknown KEM")

	s := licensetest.NewServer(nil)
	defer s.Close()
	err = run(context.Background(), []string{"-listen", s.Info().Addr, "-admin", "127.0.0.1:0"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "failed to listen")
	err = run(context.Background(), []string{"-listen", "127.0.0.1:0", "-admin", s.Info().Addr}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "admin listener")

	bad := filepath.Join(t.TempDir(), "bad.key")
	require.NoError(t, os.WriteFile(bad, []byte("not a key"), 0o600))
	err = run(context.Background(), []string{"-listen", "127.0.0.1:0", "-key-file", bad}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "-key-file")
	assert.False(t, errors.Is(err, flag.ErrHelp))
}

// TestAdminTokenFromEnvironment: the admin token can come from the
// environment, out of the process list; the flag wins when both are given.
func TestAdminTokenFromEnvironment(t *testing.T) {
	t.Setenv(adminTokenEnv, "env-token")
	o, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "env-token", o.adminToken)
	o, err = parseFlags([]string{"-admin-token", "flag-token"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "flag-token", o.adminToken)
	t.Setenv(adminTokenEnv, "")
	o, err = parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Empty(t, o.adminToken, "random at start-up")
}

// TestStopsWithAnUnusedAdminConnection: a connection to the admin listener
// that never sends a request (a browser's preconnect to the console) is
// closed as soon as the server stops; net/http alone would keep it until it
// is 5 s old and hold the stop that long.
func TestStopsWithAnUnusedAdminConnection(t *testing.T) {
	t.Parallel()
	in, stop := startRun(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	u, err := url.Parse(in.AdminURL)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	// A request on a second connection is answered only after the server
	// accepted the first one (one accept loop, in order).
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(in.AdminURL + "state")
	require.NoError(t, err)
	resp.Body.Close()

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(3*time.Second)))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	require.Error(t, err)
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the unused connection stayed open after the stop: %v", err)
	require.NoError(t, <-stopped)
}
