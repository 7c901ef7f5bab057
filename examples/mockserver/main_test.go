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
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
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

// post sends an admin request and decodes the reply.
func post(t *testing.T, h http.Handler, path string, q url.Values) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/admin/"+path+"?"+q.Encode(), nil))
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
	return rec.Code, body
}

// v2 makes one sealed v2 call.
func v2(t *testing.T, s *licensetest.Server, endpoint string, payload any) (int, []byte, error) {
	t.Helper()
	sealer, err := envelope.NewSealer(s.PublicKey())
	require.NoError(t, err)
	pt, _ := json.Marshal(payload)
	sd, err := sealer.Seal(envelope.Request{APIKey: s.APIKey(), Endpoint: endpoint, Time: s.Now()}, pt)
	require.NoError(t, err)
	body, _ := json.Marshal(wire.Request{Key: sd.Key, Data: sd.Data})
	resp, err := s.Client().Post(s.URL+"/"+endpoint, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func TestAdmin(t *testing.T) {
	t.Parallel()
	s := licensetest.NewServer()
	defer s.Close()
	require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: "p", Key: "k", Seats: 2}))
	a := newAdmin(s, info{URL: s.URL})
	defer a.Close()
	reg := wire.RegisterRequest{ProductGUID: "p", LicenseKey: "k"}

	for _, tt := range []struct {
		path   string
		q      url.Values
		status int
		errMsg string
	}{
		{"fail", url.Values{"endpoint": {"nope"}}, 400, `unknown endpoint "nope"`},
		{"fail", url.Values{"n": {"x"}}, 400, "n: not an integer"},
		{"fail", url.Values{"status": {"42"}}, 400, "status: want 100..599"},
		{"fault", url.Values{"kind": {"nope"}}, 400, "kind: want"},
		{"latency", url.Values{"d": {"soon"}}, 400, "d: time: invalid duration"},
		{"latency", url.Values{}, 400, "d is required"},
		{"latency", url.Values{"d": {"-1s"}}, 400, "d: negative"},
		{"down", url.Values{"on": {"maybe"}}, 400, "on: want 1 or 0"},
		{"down", url.Values{"mode": {"explode"}}, 400, "mode: want refuse or reset"},
		{"revoke", url.Values{"product": {"p"}, "key": {"nope"}}, 404, "unknown license"},
		{"license", url.Values{"product": {"p"}}, 400, "key is empty"},
		{"license", url.Values{"product": {"p"}, "key": {"x"}, "state": {"zombie"}}, 400, "unknown state"},
		{"control", url.Values{"product": {"p"}, "key": {"k"}}, 400, "session is required"},
	} {
		code, body := post(t, a, tt.path, tt.q)
		assert.Equal(t, tt.status, code, "%s %v", tt.path, tt.q)
		assert.Equal(t, false, body["ok"])
		assert.Contains(t, body["error"], tt.errMsg)
	}

	// fail: the next register gets 503 with Retry-After.
	code, body := post(t, a, "fail", url.Values{"endpoint": {"register"}, "n": {"1"}, "status": {"503"}, "retry_after": {"7s"}})
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, true, body["ok"])
	status, _, err := v2(t, s, licensetest.Register, reg)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	status, b, err := v2(t, s, licensetest.Register, reg)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	guid, err := wire.DecodeRegister(b)
	require.NoError(t, err)

	// fault: garbage.
	post(t, a, "fault", url.Values{"endpoint": {licensetest.Register}, "kind": {"garbage"}})
	_, b, err = v2(t, s, licensetest.Register, reg)
	require.NoError(t, err)
	assert.False(t, json.Valid(b))

	// down and up.
	code, _ = post(t, a, "down", url.Values{"on": {"1"}})
	require.Equal(t, http.StatusOK, code)
	_, _, err = v2(t, s, licensetest.Register, reg)
	assert.True(t, isRefused(err), "err = %v", err)
	post(t, a, "down", url.Values{"on": {"0"}})
	status, _, err = v2(t, s, licensetest.Register, reg)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)

	// A timed outage ends by itself.
	post(t, a, "down", url.Values{"on": {"1"}, "mode": {"reset"}, "for": {"10ms"}})
	require.Eventually(t, func() bool {
		status, _, err := v2(t, s, licensetest.Register, reg)
		return err == nil && status == http.StatusOK
	}, 10*time.Second, 5*time.Millisecond)

	// Sessions and stats.
	status, _, err = v2(t, s, licensetest.Begin, wire.BeginRequest{ProductGUID: "p", LicenseKey: "k", InstanceGUID: guid.GUID})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/stats", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var st stats
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &st))
	assert.False(t, st.Down)
	assert.Equal(t, 1, st.Instances)
	assert.Len(t, st.Sessions, 1)
	assert.Equal(t, 1, st.Requests[licensetest.Begin])
	assert.Equal(t, []licenseStatus{{ProductGUID: "p", Key: "k", Seats: 2, SeatsInUse: 1, Session: "10m0s", Grace: "0s", State: "active"}}, st.Licenses)
	assert.NotContains(t, rec.Body.String(), s.Sessions()[0].Token, "stats never show tokens")

	// Licences.
	code, _ = post(t, a, "control", url.Values{"product": {"p"}, "key": {"k"}, "session": {"30s"}, "grace": {"1m"}})
	require.Equal(t, http.StatusOK, code)
	l, _ := s.License("p", "k")
	assert.Equal(t, 30*time.Second, l.SessionDuration)
	post(t, a, "revoke", url.Values{"product": {"p"}, "key": {"k"}})
	l, _ = s.License("p", "k")
	assert.Equal(t, licensetest.Revoked, l.State)
	post(t, a, "reinstate", url.Values{"product": {"p"}, "key": {"k"}})
	post(t, a, "expire", url.Values{"product": {"p"}, "key": {"k"}})
	l, _ = s.License("p", "k")
	assert.Equal(t, licensetest.Expired, l.State)
	code, _ = post(t, a, "license", url.Values{"product": {"q"}, "key": {"k2"}, "seats": {"4"}, "session": {"2m"}, "features": {"x"}})
	require.Equal(t, http.StatusOK, code)
	l, ok := s.License("q", "k2")
	require.True(t, ok)
	assert.Equal(t, 4, l.Seats)

	// Persistent faults and clear.
	for _, c := range []struct {
		path string
		q    url.Values
	}{
		{"latency", url.Values{"endpoint": {"end"}, "d": {"1ms"}}},
		{"retry_after", url.Values{"endpoint": {"all"}, "d": {"3s"}}},
		{"content_type", url.Values{"endpoint": {"extend"}, "ct": {"text/plain"}}},
		{"skew", url.Values{"d": {"-1h"}}},
		{"clear", nil},
	} {
		code, body := post(t, a, c.path, c.q)
		assert.Equal(t, http.StatusOK, code, "%s: %v", c.path, body)
	}
	rec = httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/config", nil))
	var in info
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &in))
	assert.Equal(t, s.URL, in.URL)
	assert.Len(t, in.Licenses, 2)

	rec = httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/down", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

// isRefused reports whether err is a refused dial.
func isRefused(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return false
	}
	return runtime.GOOS == "windows" || errors.Is(err, syscall.ECONNREFUSED)
}

// lineWriter is an io.Writer safe for the test and run to share.
type lineWriter struct{ ch chan []byte }

func (w lineWriter) Write(p []byte) (int, error) {
	w.ch <- bytes.Clone(p)
	return len(p), nil
}

func TestRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "server.key")
	certFile := filepath.Join(dir, "cert.pem")
	out := lineWriter{make(chan []byte, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-json", "-tls",
			"-cert-out", certFile, "-key-file", keyFile, "-sealed",
			"-license", "product=app,key=K,seats=1,session=1m,grace=1h,features=pro"}, out, io.Discard)
	}()
	var in info
	select {
	case b := <-out.ch:
		require.NoError(t, json.Unmarshal(b, &in))
	case err := <-done:
		t.Fatalf("run ended early: %v", err)
	}
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

	// The admin API answers and can take the API down.
	resp, err := http.Post(in.AdminURL+"down?on=1", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get(in.AdminURL + "stats")
	require.NoError(t, err)
	var st stats
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	resp.Body.Close()
	assert.True(t, st.Down)
	assert.Equal(t, []licenseStatus{{ProductGUID: "app", Key: "K", Seats: 1, Session: "1m0s", Grace: "1h0m0s", State: "active", Features: "pro"}}, st.Licenses)

	cancel()
	require.NoError(t, <-done)
	http.DefaultClient.CloseIdleConnections()

	// A second run reuses the key file and exits by itself with -for.
	out2 := lineWriter{make(chan []byte, 1)}
	err = run(context.Background(), []string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-key-file", keyFile, "-for", "1ms"}, out2, io.Discard)
	require.NoError(t, err)
	text2 := string(<-out2.ch)
	assert.Contains(t, text2, "key id:         "+in.KeyID)
	assert.Contains(t, text2, "license:        product=demo-product key=DEMO-KEY")
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"-kem", "nope"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "unknown KEM")

	s := licensetest.NewServer()
	defer s.Close()
	err = run(context.Background(), []string{"-listen", s.Addr(), "-admin", "127.0.0.1:0"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "failed to listen")
	err = run(context.Background(), []string{"-listen", "127.0.0.1:0", "-admin", s.Addr()}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "admin listener")

	bad := filepath.Join(t.TempDir(), "bad.key")
	require.NoError(t, os.WriteFile(bad, []byte("not a key"), 0o600))
	err = run(context.Background(), []string{"-listen", "127.0.0.1:0", "-key-file", bad}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "-key-file")
	assert.False(t, errors.Is(err, flag.ErrHelp))
}
