package main

import (
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
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/license"
)

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

// airGap is the network of a machine that never reaches the server.
type airGap struct{}

func (airGap) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("network is unreachable")
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
	c, err := license.New(cfg, license.WithRoundTripper(airGap{}))
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
