package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/testhome"
	"github.com/licensekit/licensekit-go/internal/testkit"
	"github.com/licensekit/licensekit-go/license"
)

// childEnv, set to 1, makes the test binary run the command instead of the
// tests, with the arguments after the binary's name (startProcesses).
const childEnv = "VENDORSERVER_TEST_AS_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(testhome.M(m))
}

const (
	apiKey     = "ak_test_vendor"
	adminToken = "test-admin-token-0123456789"
)

var lic = Licence{ProductGUID: "my-product", Key: "ABCD-1234", Features: "pro,export"}

// recorder keeps the raw request and reply bodies, to check what went over
// the wire and to replay requests.
type recorder struct {
	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	path, request, reply string
	status               int
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		r.mu.Lock()
		r.requests = append(r.requests, recorded{req.URL.Path, string(body), rec.Body.String(), rec.Code})
		r.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.requests...)
}

func (r *recorder) replies() []string {
	var out []string
	for _, x := range r.all() {
		out = append(out, x.reply)
	}
	return out
}

// openStore opens a store in path (a new one in a temporary directory when
// path is empty), closed at the end of the test.
func openStore(t *testing.T, path string) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "vendorserver.db")
	}
	st, err := OpenStore(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// serveWith runs a vendor server for opener and store on loopback.
func serveWith(t *testing.T, opener envelope.Opener, st *Store) (*Server, string, *recorder) {
	t.Helper()
	s := NewServer(opener, []string{apiKey}, st)
	rec := &recorder{}
	ts := httptest.NewServer(rec.wrap(s))
	t.Cleanup(ts.Close)
	return s, ts.URL + "/api/v2", rec
}

// serveLic runs a vendor server for opener, with lic issued, on loopback.
func serveLic(t *testing.T, opener envelope.Opener) (*Server, string, *recorder) {
	t.Helper()
	st := openStore(t, "")
	require.NoError(t, st.Issue(context.Background(), lic, time.Now()))
	return serveWith(t, opener, st)
}

// liveSessions returns the number of sessions not ended or lapsed.
func liveSessions(t *testing.T, s *Server) int {
	t.Helper()
	ss, err := s.store.Sessions(context.Background(), time.Now())
	require.NoError(t, err)
	return len(ss)
}

func newKey(t *testing.T, kem envelope.KEM) (*envelope.PrivateKey, envelope.Opener) {
	t.Helper()
	priv, err := envelope.GenerateKey(kem)
	require.NoError(t, err)
	opener, err := envelope.NewOpener(priv)
	require.NoError(t, err)
	return priv, opener
}

func config(url string, pub *envelope.PublicKey, sealed bool) license.Config {
	return license.Config{
		ServerURL:       url,
		APIKey:          apiKey,
		ServerPublicKey: pub.EncodeBase64(),
		ProductGUID:     lic.ProductGUID,
		LicenseKey:      lic.Key,
		// Sealed replies are the default; the plain case opts out loudly.
		InsecureUnsealedReplies: !sealed,
	}
}

// TestSDKClient runs the SDK's client through a whole lifecycle against the
// vendor server, with and without sealed replies, for both KEMs.
func TestSDKClient(t *testing.T) {
	for _, kem := range []envelope.KEM{envelope.KEMX25519, envelope.KEMMLKEM768X25519} {
		for _, sealed := range []bool{true, false} {
			t.Run(kem.String()+map[bool]string{true: " sealed", false: " plain"}[sealed], func(t *testing.T) {
				priv, opener := newKey(t, kem)
				srv, url, rec := serveLic(t, opener)
				c, err := license.New(config(url, priv.Public(), sealed))
				require.NoError(t, err)
				ctx := context.Background()
				require.NoError(t, c.Start(ctx))
				assert.Equal(t, license.Active, c.Status().State)
				assert.True(t, c.HasFeature("pro"))
				assert.True(t, c.HasFeature("export"))
				require.NoError(t, c.ExtendSession(ctx))
				assert.Equal(t, 1, liveSessions(t, srv))
				require.NoError(t, c.Close(ctx))
				assert.Equal(t, 0, liveSessions(t, srv), "Close ended the session on the vendor server")

				bodies := rec.replies()
				require.GreaterOrEqual(t, len(bodies), 4)
				for _, b := range bodies {
					var m map[string]any
					require.NoError(t, json.Unmarshal([]byte(b), &m))
					_, isSealed := m["data"]
					assert.Equal(t, sealed, isSealed && len(m) == 1, "reply %q sealed: want %v", b, sealed)
					if sealed {
						assert.NotContains(t, b, "token", "a sealed reply shows its fields")
					}
				}
			})
		}
	}
}

// TestRefusals: a revoked licence is the server's word (sealed), so the
// client is refused; a request the server cannot open gets a plain refusal,
// which a client that wants sealed replies must not take as the server's
// word.
func TestRefusals(t *testing.T) {
	priv, opener := newKey(t, envelope.KEMX25519)
	srv, url, _ := serveLic(t, opener)
	ctx := context.Background()

	t.Run("wrong public key", func(t *testing.T) {
		other, _ := newKey(t, envelope.KEMX25519)
		c, err := license.New(config(url, other.Public(), true), license.WithRetry(license.Retry{Attempts: 1}))
		require.NoError(t, err)
		err = c.Start(ctx)
		assert.ErrorIs(t, err, license.ErrUnreachable, "a plain 401 is not the licence server's word")
		assert.NotErrorIs(t, err, license.ErrRefused)
		_ = c.Close(ctx)
	})

	t.Run("revoked", func(t *testing.T) {
		yes := true
		require.NoError(t, srv.store.Set(ctx, lic.ProductGUID, lic.Key, Change{Revoked: &yes}))
		c, err := license.New(config(url, priv.Public(), true))
		require.NoError(t, err)
		err = c.Start(ctx)
		assert.ErrorIs(t, err, license.ErrRefused)
		assert.ErrorIs(t, err, license.ErrRevoked)
		assert.NotErrorIs(t, err, license.ErrUnreachable)
		_ = c.Close(ctx)
	})
}

// TestKeyRotation serves clients of the old and the new key at once.
func TestKeyRotation(t *testing.T) {
	oldKey, oldOpener := newKey(t, envelope.KEMX25519)
	newKey, newOpener := newKey(t, envelope.KEMMLKEM768X25519)
	srv, url, _ := serveLic(t, envelope.MultiOpener(newOpener, oldOpener))
	ctx := context.Background()
	for _, k := range []*envelope.PrivateKey{oldKey, newKey} {
		c, err := license.New(config(url, k.Public(), true))
		require.NoError(t, err)
		require.NoError(t, c.Start(ctx), "client of key %s", k.KeyID())
		require.NoError(t, c.Close(ctx))
	}
	assert.Equal(t, 0, liveSessions(t, srv))
}

// TestStopsWithAnUnusedConnection: a connection that never sends a request
// (a client's spare dial, a port scan) is closed at once by a stop.
// net/http's Shutdown closes such a connection only once it is more than
// 5 s old, which would hold every stop that long.
func TestStopsWithAnUnusedConnection(t *testing.T) {
	priv, _ := newKey(t, envelope.KEMX25519)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "server.key")
	require.NoError(t, os.WriteFile(keyFile, priv.EncodePEM(), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut testkit.LockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-admin", "", "-key-file", keyFile,
			"-db", filepath.Join(dir, "vendorserver.db"), "-api-key", apiKey}, &out, &errOut)
	}()
	const prefix = "licence server for API v2 at http://"
	var addr string
	require.Eventually(t, func() bool {
		_, rest, ok := strings.Cut(out.String(), prefix)
		addr, _, _ = strings.Cut(rest, "/")
		return ok && strings.Contains(out.String(), "public key")
	}, time.Minute, 10*time.Millisecond, "the server did not start: %s", errOut.String())
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	// A request on a second connection is answered only after the server
	// accepted the first one (one accept loop, in order).
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/")
	require.NoError(t, err)
	resp.Body.Close()

	cancel()
	// Closed at the stop, not when it is 5 s old.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(3*time.Second)))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	require.Error(t, err)
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the unused connection stayed open after the stop: %v", err)
	require.NoError(t, <-done, errOut.String())
	assert.Contains(t, out.String(), "stopped")
}

// TestCommand runs the command as a user would, briefly.
func TestCommand(t *testing.T) {
	priv, _ := newKey(t, envelope.KEMX25519)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "server.key")
	db := filepath.Join(dir, "vendorserver.db")
	require.NoError(t, os.WriteFile(keyFile, priv.EncodePEM(), 0o600))
	t.Setenv(AdminTokenEnv, adminToken)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-key-file", keyFile,
		"-db", db, "-api-key", apiKey, "-license", "app:K-1:pro", "-for", "300ms"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	assert.Contains(t, out.String(), "at http://127.0.0.1:")
	assert.Contains(t, out.String(), "admin API at http://127.0.0.1:")
	assert.Contains(t, out.String(), "1 licences")
	assert.Contains(t, out.String(), priv.Public().EncodeBase64())
	assert.Contains(t, out.String(), "stopped")
	assert.NotContains(t, out.String(), "PRIVATE")
	assert.NotContains(t, out.String()+errOut.String(), adminToken, "the admin token is never printed")

	for _, args := range [][]string{
		{"-api-key", apiKey, "-db", db, "-key-file", ""},
		{"-key-file", keyFile, "-db", db},
		{"-key-file", keyFile, "-db", db, "-api-key", apiKey, "-license", "nokey"},
		{"-key-file", keyFile, "-db", db, "-api-key", apiKey, "-admin-token", "short"},
		{"nosuchcommand"},
		{"revoke", "-admin", "http://127.0.0.1:1", "-product", "p", "-key", "k", "extra"},
	} {
		err := run(context.Background(), args, &out, &errOut)
		assert.Error(t, err, "run %s", strings.Join(args, " "))
	}

	t.Setenv(AdminTokenEnv, "")
	err = run(context.Background(), []string{"-key-file", keyFile, "-db", db, "-api-key", apiKey}, &out, &errOut)
	assert.ErrorContains(t, err, AdminTokenEnv, "no admin API without a token")
	err = run(context.Background(), []string{"licences", "-admin", "http://127.0.0.1:1"}, &out, &errOut)
	assert.ErrorContains(t, err, AdminTokenEnv)
}

// adminCLI runs vendorserver subcommands against an admin API for st.
func adminCLI(t *testing.T, st *Store) func(args ...string) string {
	t.Helper()
	adm := httptest.NewServer(NewAdmin(st, adminToken, time.Now, nil))
	t.Cleanup(adm.Close)
	t.Setenv(AdminTokenEnv, adminToken)
	return func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		full := append([]string{args[0], "-admin", adm.URL}, args[1:]...)
		require.NoError(t, run(context.Background(), full, &out, &errOut), "vendorserver %s: %s", strings.Join(args, " "), errOut.String())
		return out.String()
	}
}

// TestIssueRevokeReinstate is the vendor's path with the command line and
// the SDK's client: issue, the client is Active; revoke, the running client
// is refused at its next renewal; reinstate, a client is Active again.
func TestIssueRevokeReinstate(t *testing.T) {
	ctx := context.Background()
	priv, opener := newKey(t, envelope.KEMX25519)
	st := openStore(t, "")
	_, url, _ := serveWith(t, opener, st)
	cli := adminCLI(t, st)
	product, key := "my-product", "ABCD-1234"
	flags := []string{"-product", product, "-key", key}

	assert.Contains(t, cli(append([]string{"issue", "-features", "pro", "-seats", "1", "-session", "10m"}, flags...)...),
		"issued: product my-product")
	cfg := config(url, priv.Public(), true)
	// The client asks for a 2-second session, so it renews about every
	// second and sees the revocation within a few seconds; the licence
	// allows up to 10 minutes, and the server honours the shorter request.
	cfg.SessionDuration = 2 * time.Second
	c, err := license.New(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() { _ = c.Close(ctx) })
	assert.Equal(t, license.Active, c.Status().State)
	assert.Equal(t, 2*time.Second, c.Status().SessionDuration, "the server granted the duration asked for")
	assert.True(t, c.HasFeature("pro"))
	assert.Contains(t, cli("licences"), "my-product  ABCD-1234  pro       1      10m0s    active  1")
	assert.Contains(t, cli("sessions"), key)
	assert.Contains(t, cli("instances"), key)

	assert.Contains(t, cli(append([]string{"revoke"}, flags...)...), "revoked: product my-product")
	select {
	case <-c.Done():
	case <-time.After(time.Minute):
		t.Fatal("the running client did not see the revocation")
	}
	assert.Equal(t, license.Refused, c.Status().State)
	assert.ErrorIs(t, c.Err(), license.ErrRevoked)
	assert.Contains(t, cli("licences"), "revoked")

	assert.Contains(t, cli(append([]string{"reinstate"}, flags...)...), "reinstated: product my-product")
	c2, err := license.New(cfg)
	require.NoError(t, err)
	require.NoError(t, c2.Start(ctx))
	assert.Equal(t, license.Active, c2.Status().State)
	require.NoError(t, c2.Close(ctx))
}

// TestRestartKeepsState: a server restarted on the same database keeps the
// licence, the instance, the session and the replay cache. A running client
// extends its session across the restart, and a request replayed after the
// restart gets its stored reply byte for byte and takes no seat.
func TestRestartKeepsState(t *testing.T) {
	ctx := context.Background()
	priv, opener := newKey(t, envelope.KEMX25519)
	path := filepath.Join(t.TempDir(), "vendorserver.db")
	st, err := OpenStore(path)
	require.NoError(t, err)
	require.NoError(t, st.Issue(ctx, Licence{ProductGUID: lic.ProductGUID, Key: lic.Key, Features: "pro", Seats: 1}, time.Now()))

	// The first server, on a listener the second one takes over.
	rec := &recorder{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	first := httptest.NewUnstartedServer(rec.wrap(NewServer(opener, []string{apiKey}, st)))
	first.Listener = ln
	first.Start()
	c, err := license.New(config("http://"+addr+"/api/v2", priv.Public(), true))
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx))
	first.Close()
	require.NoError(t, st.Close())

	// Restart: a new process would open the same file.
	st = openStore(t, path)
	counts, err := st.Counts(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"licences": 1, "instances": 1, "sessions": 1, "replies": 2}, counts)
	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	second := httptest.NewUnstartedServer(NewServer(opener, []string{apiKey}, st))
	second.Listener = ln
	second.Start()
	t.Cleanup(second.Close)

	var begin recorded
	for _, r := range rec.all() {
		if strings.HasSuffix(r.path, "/begin_session") {
			begin = r
		}
	}
	require.NotEmpty(t, begin.request)
	resp, err := http.Post(second.URL+begin.path, "application/json", strings.NewReader(begin.request))
	require.NoError(t, err)
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, begin.status, resp.StatusCode)
	assert.Equal(t, begin.reply, body.String(), "the replayed request got the stored reply")
	counts, err = st.Counts(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, counts["sessions"], "the replayed begin_session took no seat")

	require.NoError(t, c.ExtendSession(ctx), "the session outlived the restart")
	assert.Equal(t, license.Active, c.Status().State)
	require.NoError(t, c.Close(ctx))
	counts, err = st.Counts(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, counts["sessions"], "Close ended the session on the restarted server")
}

// TestReplayedIDAfterRestart: after a restart the in-memory Guard is empty,
// and the database still rejects a request id reused with other data.
func TestReplayedIDAfterRestart(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	var id [envelope.RequestIDSize]byte
	id[0] = 7
	o := &envelope.Opened{ID: id, Time: time.Now()}
	calls := 0
	process := func(*sql.Tx) (int, []byte, error) { calls++; return 200, []byte(`{"n":1}`), nil }
	status, body, err := st.answer(ctx, sqlReplies{}, o, [32]byte{1}, time.Now().Add(-time.Minute), time.Now().Add(-time.Hour), true, process)
	require.NoError(t, err)
	assert.Equal(t, 200, status)
	status2, body2, err := st.answer(ctx, sqlReplies{}, o, [32]byte{1}, time.Now().Add(-time.Minute), time.Now().Add(-time.Hour), true, process)
	require.NoError(t, err)
	assert.Equal(t, []any{status, body}, []any{status2, body2})
	_, _, err = st.answer(ctx, sqlReplies{}, o, [32]byte{2}, time.Now().Add(-time.Minute), time.Now().Add(-time.Hour), true, process)
	assert.ErrorIs(t, err, envelope.ErrReplayed)
	assert.Equal(t, 1, calls, "processed once")
	// Pruned once its timestamp is out of the window.
	_, _, err = st.answer(ctx, sqlReplies{}, &envelope.Opened{ID: [16]byte{8}, Time: time.Now()}, [32]byte{3},
		time.Now().Add(time.Minute), time.Now().Add(time.Minute), true, process)
	require.NoError(t, err)
	counts, err := st.Counts(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, counts["replies"], "the old reply was pruned")
}

// TestSeatsAndDuration checks the licence logic directly: a seat is a
// machine, a freed seat is usable at once, and the session length is what
// the client asked for within the licence's longest.
func TestSeatsAndDuration(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	s := NewServer(nil, nil, st)
	require.NoError(t, st.Issue(ctx, Licence{ProductGUID: "p", Key: "k", Seats: 1, Session: time.Minute}, time.Now()))
	call := func(endpoint string, payload map[string]any) (int, map[string]any) {
		t.Helper()
		in, err := json.Marshal(payload)
		require.NoError(t, err)
		var status int
		var answer any
		require.NoError(t, st.tx(ctx, func(tx *sql.Tx) (err error) {
			status, answer, err = s.dispatch(ctx, tx, endpoint, in, time.Now())
			return err
		}))
		out, err := json.Marshal(answer)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(out, &m))
		return status, m
	}
	register := func(cpu string) string {
		status, m := call("register_instance", map[string]any{"product_guid": "p", "license_key": "k", "cpu_id": cpu})
		require.Equal(t, http.StatusOK, status, m)
		return m["guid"].(string)
	}
	begin := func(instance string, duration int) (int, map[string]any) {
		return call("begin_session", map[string]any{"product_guid": "p", "license_key": "k",
			"instance_guid": instance, "duration": duration})
	}
	session := func(m map[string]any) float64 {
		return m["control_options"].(map[string]any)["session_duration"].(float64)
	}
	a, b := register("cpu-a"), register("cpu-b")
	assert.Equal(t, a, register("cpu-a"), "the same machine gets the same instance")

	status, m := begin(a, 30)
	require.Equal(t, http.StatusOK, status, m)
	assert.EqualValues(t, 30, session(m), "a shorter duration is honoured")
	status, m = begin(a, 0)
	require.Equal(t, http.StatusOK, status, "a second session of the same machine takes no new seat: %v", m)
	assert.EqualValues(t, 60, session(m), "no duration: the licence's longest")
	status, m = begin(b, 600)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, "no seats available", m["error"])

	n, err := st.FreeSeat(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	status, m = begin(b, 600)
	require.Equal(t, http.StatusOK, status, m)
	assert.EqualValues(t, 60, session(m), "a longer duration is capped at the licence's longest")
	status, m = call("extend_session", map[string]any{"token": m["token"], "duration": 10})
	require.Equal(t, http.StatusOK, status, m)
	assert.EqualValues(t, 10, session(m))

	status, m = begin("nosuch", 0)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "unknown instance", m["error"])
}

// TestAdminAuth: the admin API answers only requests with the token.
func TestAdminAuth(t *testing.T) {
	st := openStore(t, "")
	adm := httptest.NewServer(NewAdmin(st, adminToken, time.Now, nil))
	t.Cleanup(adm.Close)
	for header, want := range map[string]int{
		"":       http.StatusUnauthorized,
		"Bearer": http.StatusUnauthorized,
		"Bearer " + adminToken[:len(adminToken)-1] + "X": http.StatusUnauthorized,
		"Basic " + adminToken:                            http.StatusUnauthorized,
		"Bearer " + adminToken + "X":                     http.StatusUnauthorized,
		"Bearer " + adminToken:                           http.StatusOK,
	} {
		req, err := http.NewRequest(http.MethodGet, adm.URL+"/admin/licences", nil)
		require.NoError(t, err)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, "Authorization %q", header)
		assert.NotContains(t, body.String(), adminToken)
	}

	// Errors name the problem, with the right status.
	t.Setenv(AdminTokenEnv, adminToken)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"revoke", "-admin", adm.URL, "-product", "p", "-key", "nosuch"}, &out, &errOut)
	assert.ErrorContains(t, err, "no such licence (HTTP 404)")
	require.NoError(t, run(context.Background(), []string{"issue", "-admin", adm.URL, "-product", "p", "-key", "k"}, &out, &errOut))
	err = run(context.Background(), []string{"issue", "-admin", adm.URL, "-product", "p", "-key", "k"}, &out, &errOut)
	assert.ErrorContains(t, err, "already issued (HTTP 409)")
	err = run(context.Background(), []string{"set", "-admin", adm.URL, "-product", "p", "-key", "k", "-session", "0s"}, &out, &errOut)
	assert.ErrorContains(t, err, "HTTP 400")
	t.Setenv(AdminTokenEnv, "wrong-token-0123456789")
	err = run(context.Background(), []string{"licences", "-admin", adm.URL}, &out, &errOut)
	assert.ErrorContains(t, err, "HTTP 401")
	assert.NotContains(t, err.Error(), "wrong-token")
}

// TestOfflineActivationThroughAdmin is the vendor's side of the offline
// ceremony: an air-gapped machine's request files are uploaded to the admin
// endpoint, answered by the server's own v2 handler, and the reply files
// activate the machine (register, then begin). The same file uploaded again
// gets the same reply and takes no second seat, also after a restart and
// after the ordinary window: carried requests are remembered in the
// database for the carried window. The page needs no token, the upload
// does.
func TestOfflineActivationThroughAdmin(t *testing.T) {
	ctx := context.Background()
	priv, opener := newKey(t, envelope.KEMX25519)
	path := t.TempDir() + "/vendor.db"
	st := openStore(t, path)
	require.NoError(t, st.Issue(ctx, lic, time.Now()))
	srv, url, _ := serveWith(t, opener, st)
	adm := httptest.NewServer(srv.AdminHandler(adminToken))
	t.Cleanup(adm.Close)

	upload := func(adm *httptest.Server, file []byte, token string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, adm.URL+"/admin/offline/exchange", bytes.NewReader(file))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	cfg := config(url, priv.Public(), true)
	cfg.StateDir = t.TempDir()
	c, err := license.New(cfg, license.WithRoundTripper(testkit.AirGap{}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(ctx) })
	next := func() []byte {
		var b bytes.Buffer
		require.NoError(t, c.OfflineRequest(ctx, &b))
		return b.Bytes()
	}

	page, err := http.Get(adm.URL + "/admin/offline")
	require.NoError(t, err)
	pageBody, _ := io.ReadAll(page.Body)
	page.Body.Close()
	assert.Equal(t, http.StatusOK, page.StatusCode)
	assert.Contains(t, string(pageBody), "Request file")

	registerFile := next()
	code, _ := upload(adm, registerFile, "wrong-token-0123456789")
	assert.Equal(t, http.StatusUnauthorized, code, "the upload needs the admin token")
	code, reply := upload(adm, registerFile, adminToken)
	require.Equal(t, http.StatusOK, code, string(reply))
	more, err := c.ActivateOffline(ctx, bytes.NewReader(reply))
	require.NoError(t, err)
	require.True(t, more, "a new machine registers first")

	beginFile := next()
	code, beginReply := upload(adm, beginFile, adminToken)
	require.Equal(t, http.StatusOK, code, string(beginReply))
	more, err = c.ActivateOffline(ctx, bytes.NewReader(beginReply))
	require.NoError(t, err)
	require.False(t, more)
	require.True(t, c.Valid())
	require.Equal(t, 1, liveSessions(t, srv))

	// Later, after a restart and past the ordinary 5-minute window: the same
	// file is answered from the database, byte for byte, with no new seat.
	body := func(replyFile []byte) string {
		i := bytes.Index(replyFile, []byte("-----BEGIN"))
		require.Positive(t, i)
		return string(replyFile[i:])
	}
	srv2 := NewServer(opener, []string{apiKey}, openStore(t, path))
	srv2.now = func() time.Time { return time.Now().Add(20 * time.Minute) }
	adm2 := httptest.NewServer(srv2.AdminHandler(adminToken))
	t.Cleanup(adm2.Close)
	code, again := upload(adm2, beginFile, adminToken)
	require.Equal(t, http.StatusOK, code, string(again))
	assert.Equal(t, body(beginReply), body(again), "a carried request is answered once; a copy gets the stored reply")
	assert.Equal(t, 1, liveSessions(t, srv2))

	code, msg := upload(adm2, []byte("not a request file"), adminToken)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.True(t, strings.Contains(string(msg), "error"), string(msg))
}

// TestFloodLocksOutNoCustomer: envelopes sealed by anyone holding a copy of
// the product (the public key and the API key ship in it), four times the
// replay cache's capacity and stamped at the future edge of the window, do
// not stop an SDK client from starting, renewing and closing, and the cache
// stays within its bound.
func TestFloodLocksOutNoCustomer(t *testing.T) {
	const capacity = 64
	priv, opener := newKey(t, envelope.KEMX25519)
	srv, url, _ := serveLic(t, opener)
	srv.guard = envelope.NewGuard(envelope.GuardConfig{MaxEntries: capacity})
	sealer, err := envelope.NewSealer(priv.Public(), envelope.WithSealedReplies())
	require.NoError(t, err)
	flood := func(n int) {
		for i := range n {
			ep := []string{"begin_session", "extend_session", "register_instance"}[i%3]
			pt := fmt.Sprintf(`{"product_guid":%q,"license_key":"JUNK-%d","token":"junk-%d","instance_guid":"x"}`, lic.ProductGUID, i, i)
			sd, err := sealer.Seal(envelope.Request{APIKey: apiKey, Endpoint: ep, Time: time.Now().Add(envelope.DefaultFuture)}, []byte(pt))
			require.NoError(t, err)
			body, _ := json.Marshal(map[string]string{"key": sd.Key, "data": sd.Data})
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v2/"+ep, strings.NewReader(string(body))))
			require.NotEqual(t, http.StatusOK, rec.Code, "junk was granted")
			require.LessOrEqual(t, srv.guard.Len(), capacity)
		}
	}
	flood(4 * capacity)
	c, err := license.New(config(url, priv.Public(), true), license.WithStateStore(&license.MemoryStateStore{}))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	flood(capacity)
	require.NoError(t, c.ExtendSession(ctx))
	flood(capacity)
	require.NoError(t, c.Close(ctx))
	assert.Equal(t, 0, liveSessions(t, srv))
	assert.LessOrEqual(t, srv.guard.Len(), capacity)
	// The durable replay cache keeps only the customer's own requests
	// (register, begin, extend, end), none of the junk.
	var rows int
	require.NoError(t, srv.store.db.QueryRow(`SELECT COUNT(*) FROM replies`).Scan(&rows))
	assert.LessOrEqual(t, rows, 4)
}

// process is a vendorserver command running as its own process.
type process struct {
	api, admin string // host:port of the licence API and the admin API
}

// startProcesses runs n copies of the vendorserver command with args, as
// processes of the test binary (childEnv) started at once, and returns
// once each serves. At the end of the test each is interrupted and must
// stop cleanly, having printed no error.
func startProcesses(t *testing.T, n int, args ...string) []process {
	t.Helper()
	cmds := make([]*exec.Cmd, n)
	stdout := make([]io.Reader, n)
	stderr := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], args...)
		cmds[i].Env = append(os.Environ(), childEnv+"=1")
		stderr[i] = &bytes.Buffer{}
		cmds[i].Stderr = stderr[i]
		var err error
		stdout[i], err = cmds[i].StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmds[i].Start())
	}
	procs := make([]process, n)
	for i, cmd := range cmds {
		p := &procs[i]
		lines := bufio.NewScanner(stdout[i])
		for p.api == "" || p.admin == "" {
			if !lines.Scan() {
				_ = cmd.Wait()
				t.Fatalf("vendorserver stopped before serving: %s", stderr[i])
			}
			if _, rest, ok := strings.Cut(lines.Text(), "licence server for API v2 at http://"); ok {
				p.api = strings.TrimSuffix(rest, "/api/v2")
			}
			if _, rest, ok := strings.Cut(lines.Text(), "admin API at http://"); ok {
				p.admin, _, _ = strings.Cut(rest, "/")
			}
		}
		var rest strings.Builder
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for lines.Scan() {
				rest.WriteString(lines.Text() + "\n")
			}
		}()
		t.Cleanup(func() {
			require.NoError(t, cmd.Process.Signal(os.Interrupt))
			<-drained
			assert.NoError(t, cmd.Wait(), "vendorserver on %s: %s", p.api, stderr[i])
			assert.Contains(t, rest.String(), "stopped")
			assert.Empty(t, stderr[i].String())
		})
	}
	return procs
}

// spread is a client's network that sends each request to the next of
// several server processes, as a load balancer would, and keeps every
// failure: a transport error or a 5xx answer.
type spread struct {
	hosts    []string
	next     atomic.Uint64
	mu       sync.Mutex
	failures []string
}

func (s *spread) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Host = s.hosts[s.next.Add(1)%uint64(len(s.hosts))]
	r.Host = ""
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || resp.StatusCode >= 500 {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.failures = append(s.failures, fmt.Sprintf("%s %s: %v", r.URL.Host, r.URL.Path, err))
		} else {
			s.failures = append(s.failures, fmt.Sprintf("%s %s: HTTP %d", r.URL.Host, r.URL.Path, resp.StatusCode))
		}
	}
	return resp, err
}

// TestProcessesShareOneDatabase runs three vendorserver processes on one
// SQLite file, started at once on a file none of them created, and clients
// whose requests go to each process in turn (register to one, begin to
// the next, extend to the next): licences issued through different
// processes at once, the same licence issued through all three at once
// (one wins, two are told it exists), twelve clients starting at once on
// seven licences, one of them three seats for six machines (exactly three
// begin), extensions through every process, and a revocation through one
// process seen by a client renewing through another. No request fails (no
// "database is locked", no 5xx), and the database holds the right counts.
func TestProcessesShareOneDatabase(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the test stops its server processes with os.Interrupt, which Windows cannot send to another process")
	}
	ctx := context.Background()
	priv, _ := newKey(t, envelope.KEMX25519)
	dir := t.TempDir()
	keyFile, db := filepath.Join(dir, "server.key"), filepath.Join(dir, "vendorserver.db")
	require.NoError(t, os.WriteFile(keyFile, priv.EncodePEM(), 0o600))
	t.Setenv(AdminTokenEnv, adminToken)

	procs := startProcesses(t, 3, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-key-file", keyFile,
		"-db", db, "-api-key", apiKey)
	var wg sync.WaitGroup
	hosts := []string{procs[0].api, procs[1].api, procs[2].api}
	issue := func(p process, key string, seats int) error {
		_, err := call(ctx, http.MethodPost, "http://"+p.admin+"/admin/licences", adminToken,
			licenceJSON{Product: lic.ProductGUID, Key: key, Seats: &seats})
		return err
	}

	// Licences issued through every process at once; the same licence
	// through all three.
	keys := []string{"K-0", "K-1", "K-2", "K-3", "K-4", "K-5", "SEATS"}
	issued := make([]error, len(keys))
	dup := make([]error, len(procs))
	for i, k := range keys {
		wg.Go(func() { issued[i] = issue(procs[i%len(procs)], k, map[bool]int{true: 3}[k == "SEATS"]) })
	}
	for i, p := range procs {
		wg.Go(func() { dup[i] = issue(p, "DUP", 0) })
	}
	wg.Wait()
	for i, err := range issued {
		require.NoError(t, err, keys[i])
	}
	var won int
	for _, err := range dup {
		if err == nil {
			won++
		} else {
			assert.ErrorContains(t, err, "HTTP 409")
		}
	}
	assert.Equal(t, 1, won, "the same licence issued through three processes at once")

	// Twelve machines start at once: one on each K-, six on SEATS.
	lb := &spread{hosts: hosts}
	newClient := func(key string, machine int) *license.Client {
		cfg := config("http://"+hosts[0]+"/api/v2", priv.Public(), true)
		cfg.LicenseKey, cfg.StateDir = key, t.TempDir()
		c, err := license.New(cfg, license.WithRoundTripper(lb), license.WithRetry(license.Retry{Attempts: 1}),
			license.WithFingerprintSource(machineFingerprint(machine)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close(ctx) })
		return c
	}
	var clients []*license.Client
	for i, k := range keys[:6] {
		clients = append(clients, newClient(k, i))
	}
	for i := range 6 {
		clients = append(clients, newClient("SEATS", 100+i))
	}
	started := make([]error, len(clients))
	for i, c := range clients {
		wg.Go(func() { started[i] = c.Start(ctx) })
	}
	wg.Wait()
	var active []*license.Client
	for i, err := range started {
		if err == nil {
			active = append(active, clients[i])
			continue
		}
		require.GreaterOrEqual(t, i, 6, "a client of a licence without a seat limit: %v", err)
		assert.ErrorIs(t, err, license.ErrRefused, "client %d", i)
	}
	assert.Len(t, active, 9, "six K- machines and three of the six SEATS machines")

	// Every active client extends three times, each time through another
	// process.
	const rounds = 3
	extended := make([]error, len(active))
	for i, c := range active {
		wg.Go(func() {
			for range rounds {
				if extended[i] = c.ExtendSession(ctx); extended[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for i, err := range extended {
		assert.NoError(t, err, "client %d", i)
	}

	// Revoked through process 0, seen by a client renewing through process 2.
	require.NoError(t, issue(procs[1], "REVOKE", 0))
	cfg := config("http://"+procs[2].api+"/api/v2", priv.Public(), true)
	cfg.LicenseKey, cfg.StateDir = "REVOKE", t.TempDir()
	c, err := license.New(cfg, license.WithRetry(license.Retry{Attempts: 1}), license.WithFingerprintSource(machineFingerprint(200)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(ctx) })
	require.NoError(t, c.Start(ctx))
	_, err = call(ctx, http.MethodPost, "http://"+procs[0].admin+"/admin/licences/revoke", adminToken,
		licenceJSON{Product: lic.ProductGUID, Key: "REVOKE"})
	require.NoError(t, err)
	err = c.ExtendSession(ctx)
	assert.ErrorIs(t, err, license.ErrRevoked)
	assert.Equal(t, license.Refused, c.Status().State)

	lb.mu.Lock()
	assert.Empty(t, lb.failures, "requests that failed")
	lb.mu.Unlock()

	// What every process sees: nine licences, thirteen machines registered,
	// three live sessions on SEATS.
	for _, p := range procs {
		out, err := call(ctx, http.MethodGet, "http://"+p.admin+"/admin/licences", adminToken, nil)
		require.NoError(t, err)
		var ls []licenceJSON
		require.NoError(t, json.Unmarshal(out, &ls))
		live := map[string]int{}
		for _, l := range ls {
			live[l.Key] = l.LiveSessions
			assert.Equal(t, l.Key == "REVOKE", l.Revoked, l.Key)
		}
		assert.Equal(t, 9, len(ls), p.admin)
		assert.Equal(t, 3, live["SEATS"], p.admin)
		out, err = call(ctx, http.MethodGet, "http://"+p.admin+"/admin/instances", adminToken, nil)
		require.NoError(t, err)
		var in []Instance
		require.NoError(t, json.Unmarshal(out, &in))
		assert.Equal(t, 13, len(in), p.admin)
	}
}

// machineFingerprint is the fixed fingerprint of machine n.
func machineFingerprint(n int) license.FingerprintSource {
	return func(context.Context) (*fingerprint.Fingerprint, error) {
		return &fingerprint.Fingerprint{
			MBSerial: fingerprint.Component{Name: fingerprint.NameMBSerial, Value: fmt.Sprint("board-", n), Strength: fingerprint.Strong},
			HostName: fingerprint.Component{Name: fingerprint.NameHostName, Value: fmt.Sprint("host-", n), Strength: fingerprint.Weak},
			Extra:    []fingerprint.Component{{Name: fingerprint.NameMachineID, Value: fmt.Sprint("machine-", n), Strength: fingerprint.Strong}},
		}, nil
	}
}

// TestOpenNewFileAtOnce opens one new database file from three stores at
// once, sixty times: every open succeeds, although SQLite does not wait
// for the lock when a new file switches to WAL (OpenStore retries). It is
// the start of TestProcessesShareOneDatabase in one process, repeated
// often enough to fail without the retry (one new file in twenty failed).
func TestOpenNewFileAtOnce(t *testing.T) {
	dir := t.TempDir()
	for i := range 60 {
		path := filepath.Join(dir, fmt.Sprint(i, ".db"))
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for j := range errs {
			wg.Go(func() {
				st, err := OpenStore(path)
				if err == nil {
					err = st.Close()
				}
				errs[j] = err
			})
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...), "file %d", i)
	}
}
