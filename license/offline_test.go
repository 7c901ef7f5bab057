package license

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/carried"
	"github.com/licensekit/licensekit-go/internal/testkit"
)

// offlineMachine is a client on an air-gapped machine: its own state, its
// own fingerprint, no network.
func (e *env) offlineMachine(fp *fingerprint.Fingerprint, store *MemoryStateStore, extra ...Option) *Client {
	e.t.Helper()
	opts := append([]Option{WithRoundTripper(testkit.AirGap{}), WithStateStore(store), fixedFingerprint(fp), e.wall.option(),
		WithEventHandler(e.rec.handle)}, extra...)
	c, err := New(e.config(), opts...)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// exchange carries a request file to the vendor's server and returns the
// reply file.
func (e *env) exchange(req []byte) []byte {
	e.t.Helper()
	var out bytes.Buffer
	cfg := ExchangeConfig{ServerURL: e.srv.URL, APIKey: e.srv.Info().APIKey, HTTPClient: &http.Client{Transport: e.srv.Transport()}}
	require.NoError(e.t, ExchangeOffline(context.Background(), cfg, bytes.NewReader(req), &out))
	return out.Bytes()
}

func request(t *testing.T, c *Client) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, c.OfflineRequest(context.Background(), &b))
	return b.Bytes()
}

func activate(c *Client, reply []byte) (bool, error) {
	return c.ActivateOffline(context.Background(), bytes.NewReader(reply))
}

// TestOfflineCeremony runs the whole ceremony over weeks: request, exchange,
// activate (register, then begin), run offline, refresh by file, deactivate.
func TestOfflineCeremony(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const day = 24 * time.Hour
		e := newEnv(t, envConfig{session: 30 * day, grace: 7 * day, seats: 1, features: "offline, pro"})
		store := &MemoryStateStore{}
		c := e.offlineMachine(e.fp, store)

		file1 := request(t, c)
		head := string(file1[:bytes.Index(file1, []byte("-----BEGIN"))])
		assert.Contains(t, head, "Product: "+testProduct)
		assert.Contains(t, head, "Licence: LK-T...4242")
		assert.Contains(t, head, "Kind: activation")
		assert.NotContains(t, string(file1), testLicense)
		assert.NotContains(t, string(file1), e.srv.Info().APIKey)
		assert.Equal(t, file1, request(t, c), "a pending request is written again, unchanged")

		time.Sleep(2 * day) // carried for days
		reply1 := e.exchange(file1)
		time.Sleep(day)
		more, err := activate(c, reply1)
		require.NoError(t, err)
		require.True(t, more)
		assert.False(t, c.Valid())

		file2 := request(t, c)
		assert.Contains(t, string(file2), "Endpoint: begin_session")
		time.Sleep(3 * day)
		reply2 := e.exchange(file2)
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
		again := e.exchange(file2) // the same file posted twice
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense), "a replayed carried request takes no second seat")
		r2, _ := carried.ParseReplyFile(reply2)
		ra, _ := carried.ParseReplyFile(again)
		assert.Equal(t, r2.Replies[0].Body, ra.Replies[0].Body, "a copy gets the stored reply")
		time.Sleep(2 * day)
		more, err = activate(c, reply2)
		require.NoError(t, err)
		require.False(t, more)
		assert.True(t, c.Valid())
		assert.True(t, c.HasFeature("pro"))

		// The product code is the same as online: Start runs on the
		// session the server granted, without a network.
		require.NoError(t, c.Start(context.Background()))
		st := c.Status()
		assert.Equal(t, Active, st.State)
		assert.Equal(t, 30*day, st.SessionDuration)
		// The session counts from the server's reply time, 2 days ago.
		assert.WithinDuration(t, time.Now().Add(28*day), st.SessionExpiry, time.Minute)

		_, err = activate(c, reply2)
		assert.ErrorIs(t, err, ErrOfflineMismatch, "a reply applies once")

		// Refresh before the end: extend_session by file.
		time.Sleep(25 * day)
		file3 := request(t, c)
		assert.Contains(t, string(file3), "Kind: refresh")
		assert.Contains(t, string(file3), "Endpoint: extend_session")
		reply3 := e.exchange(file3)
		_, err = activate(c, reply3)
		require.NoError(t, err)
		assert.WithinDuration(t, time.Now().Add(30*day), c.Status().SessionExpiry, time.Minute)
		_, err = activate(c, reply2)
		assert.ErrorIs(t, err, ErrOfflineMismatch, "an old reply after a refresh")

		_ = c.Close(context.Background()) // end_session cannot reach the server: the token is kept

		// Past the session, into grace, still without a network: a new run.
		time.Sleep(29 * day)
		c = e.offlineMachine(e.fp, store)
		require.NoError(t, c.Start(context.Background()))
		time.Sleep(day + time.Hour)
		synctest.Wait()
		assert.Equal(t, Grace, c.Status().State)
		assert.True(t, c.Valid())

		// Deactivate: the licence ends here once the file is written.
		var end bytes.Buffer
		require.NoError(t, c.OfflineDeactivate(context.Background(), &end))
		assert.False(t, c.Valid())
		assert.Contains(t, end.String(), "Endpoint: end_session")
		var lost bytes.Buffer // the file was lost: the same one is written again
		require.NoError(t, c.OfflineDeactivate(context.Background(), &lost))
		assert.Equal(t, end.String(), lost.String())
		e.exchange(end.Bytes())
		assert.Equal(t, 0, e.srv.SeatsInUse(testProduct, testLicense), "the carried end_session frees the seat")
		for _, old := range [][]byte{reply2, reply3} {
			_, err = activate(c, old)
			assert.ErrorIs(t, err, ErrOfflineMismatch, "a reply replayed after deactivation")
		}
		assert.False(t, c.Valid())
		require.NoError(t, c.Close(context.Background()), "nothing left to end")

		// A new run on the same state: nothing to run on.
		c2 := e.offlineMachine(e.fp, store)
		assert.Error(t, c2.Start(context.Background()))
		assert.False(t, c2.Valid())
	})
}

// TestOfflineNegatives: every wrong reply file is rejected with its typed
// error and changes nothing.
func TestOfflineNegatives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 24 * time.Hour, grace: time.Hour, seats: 5})
		storeA := &MemoryStateStore{}
		a := e.offlineMachine(e.fp, storeA)
		more, err := activate(a, e.exchange(request(t, a)))
		require.NoError(t, err)
		require.True(t, more)
		fileA := request(t, a)
		replyA := e.exchange(fileA)

		fpB := testFingerprint()
		fpB.MBSerial.Value = "board-0002"
		fpB.Extra[0].Value = "board-0002"
		fpB.Extra[1].Value = "77aa00d2"
		b := e.offlineMachine(fpB, &MemoryStateStore{})
		_, err = activate(b, e.exchange(request(t, b)))
		require.NoError(t, err)
		replyB := e.exchange(request(t, b))

		// Reply B with A's request id in its header: names A's request, does
		// not open for it.
		rA, err := carried.ParseReplyFile(replyA)
		require.NoError(t, err)
		rB, err := carried.ParseReplyFile(replyB)
		require.NoError(t, err)
		rB.Replies[0].ID = rA.Replies[0].ID
		relabelled, err := rB.Marshal()
		require.NoError(t, err)

		tampered := bytes.Clone(replyA)
		i := bytes.Index(tampered, []byte("\n\n")) + 2
		i = bytes.Index(tampered[i:], []byte("\n\n")) + i + 2 // the first body line
		if tampered[i+10] == 'A' {
			tampered[i+10] = 'B'
		} else {
			tampered[i+10] = 'A'
		}

		cases := []struct {
			name  string
			reply []byte
			want  error
		}{
			{"reply file for another machine", replyB, ErrOfflineMismatch},
			{"reply of another request relabelled", relabelled, ErrOfflineUnauthentic},
			{"tampered", tampered, ErrOfflineUnauthentic},
			{"truncated", replyA[:len(replyA)/2], ErrOfflineFile},
			{"truncated end line", replyA[:len(replyA)-10], ErrOfflineFile},
			{"request file instead of a reply", fileA, ErrOfflineFile},
			{"empty", nil, ErrOfflineFile},
		}
		for _, tc := range cases {
			before := storeA.Bytes()
			_, err := activate(a, tc.reply)
			require.ErrorIs(t, err, tc.want, tc.name)
			var oe *OfflineError
			require.ErrorAs(t, err, &oe, tc.name)
			assert.Equal(t, before, storeA.Bytes(), "%s changed the state", tc.name)
			assert.False(t, a.Valid(), tc.name)
			assert.NotContains(t, err.Error(), testLicense)
		}
		// The genuine reply still applies afterwards.
		_, err = activate(a, replyA)
		require.NoError(t, err)
		assert.True(t, a.Valid())
	})
}

// TestOfflineRestoreAfterDeactivation: a copy of the state from before the
// deactivation, restored afterwards, neither runs nor takes the old reply
// again (the anti-rollback record knows it is old).
func TestOfflineRestoreAfterDeactivation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 24 * time.Hour, grace: time.Hour, seats: 1})
		store := &MemoryStateStore{}
		recDir := t.TempDir()
		c := e.offlineMachine(e.fp, store, WithRollbackRecordDir(recDir))
		more, err := activate(c, e.exchange(request(t, c)))
		require.NoError(t, err)
		require.True(t, more)
		beginFile := request(t, c)
		beforeActivation := store.Bytes() // pending begin, reply keys inside
		beginReply := e.exchange(beginFile)
		_, err = activate(c, beginReply)
		require.NoError(t, err)
		active := store.Bytes()
		var end bytes.Buffer
		require.NoError(t, c.OfflineDeactivate(context.Background(), &end))
		require.NoError(t, c.Close(context.Background()), "nothing left to end")

		for name, old := range map[string][]byte{"active": active, "pending": beforeActivation} {
			_ = store.Save(context.Background(), old)
			c2 := e.offlineMachine(e.fp, store, WithRollbackRecordDir(recDir))
			err := c2.Start(context.Background())
			require.Error(t, err, name)
			assert.False(t, c2.Valid(), name)
			_, err = activate(c2, beginReply)
			require.ErrorIs(t, err, ErrStateRollback, "%s: an old reply on a restored state", name)
			assert.False(t, c2.Valid(), name)
			require.NoError(t, c2.Close(context.Background()))
		}
	})
}

// TestOfflineUnsupported: without sealed replies or a persisted state there
// is no offline activation, and the error says why.
func TestOfflineUnsupported(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.insecure = true
	c, err := New(e.config(), WithRoundTripper(testkit.AirGap{}), WithStateStore(&MemoryStateStore{}), fixedFingerprint(e.fp))
	require.NoError(t, err)
	defer c.Close(context.Background())
	err = c.OfflineRequest(context.Background(), &bytes.Buffer{})
	require.ErrorIs(t, err, ErrOfflineUnsupported)
	assert.True(t, strings.HasPrefix(err.Error(), "license: offline"))

	e.insecure = false
	c2, err := New(e.config(), WithRoundTripper(testkit.AirGap{}), fixedFingerprint(e.fp))
	require.NoError(t, err)
	defer c2.Close(context.Background())
	require.ErrorIs(t, c2.OfflineRequest(context.Background(), &bytes.Buffer{}), ErrOfflineUnsupported)
}

// TestOfflineActivationClockSetBack: a licence activated by file counts its
// time as every offline session does (docs/security.md, "Offline time is a
// budget"): the wall clock set back again and again, within one run and
// across restarts, never lengthens it. With a 2-day session and a day of
// grace, the licence is over 3 days after the server began the session,
// however the clock was moved.
func TestOfflineActivationClockSetBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const day = 24 * time.Hour
		e := newEnv(t, envConfig{session: 2 * day, grace: day, seats: 1})
		store := &MemoryStateStore{}
		c := e.offlineMachine(e.fp, store)
		more, err := activate(c, e.exchange(request(t, c)))
		require.NoError(t, err)
		require.True(t, more)
		reply := e.exchange(request(t, c))
		time.Sleep(time.Hour) // carried back
		_, err = activate(c, reply)
		require.NoError(t, err)
		require.NoError(t, c.Start(context.Background()))
		require.Equal(t, Active, c.Status().State)

		// Within the run: set the clock back by 4.5 minutes (under the
		// rollback slack) every half hour, for 2 days: 7.2 hours of wall
		// time "regained", were the wall clock believed.
		for range 96 {
			time.Sleep(30 * time.Minute)
			e.wall.jump(-270 * time.Second)
		}
		synctest.Wait()
		assert.Equal(t, Grace, c.Status().State, "the 2-day session is spent after 2 days and an hour of real time")
		require.NoError(t, c.Close(context.Background()))

		// Across restarts: each restart with the clock set back by a day.
		for range 3 {
			e.wall.jump(-day)
			c = e.offlineMachine(e.fp, store)
			_ = c.Start(context.Background())
			time.Sleep(6 * time.Hour)
			require.NoError(t, c.Close(context.Background()))
		}
		// 2 days and 19 hours have passed since the server began the
		// session: its 3 days of session and grace end within the next 6
		// hours, whatever the clock says.
		c = e.offlineMachine(e.fp, store)
		_ = c.Start(context.Background())
		time.Sleep(6*time.Hour + time.Minute)
		synctest.Wait()
		assert.False(t, c.Valid(), "the licence outlived its budget: %v", c.Status().State)
		require.NoError(t, c.Close(context.Background()))
	})
}

// TestOfflineEachStepANewProcess runs each step of the ceremony in a new
// client on the same state, as a product's "request" and "activate"
// commands do: the register reply applied by a client that did not write
// the request must leave the machine registered, so that the next request
// file begins the session.
func TestOfflineEachStepANewProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 24 * time.Hour, grace: time.Hour, seats: 1, features: "pro"})
		store := &MemoryStateStore{}
		step := func() *Client {
			c := e.offlineMachine(e.fp, store)
			return c
		}
		reply1 := e.exchange(request(t, step()))
		more, err := activate(step(), reply1)
		require.NoError(t, err)
		require.True(t, more)

		file2 := request(t, step())
		assert.Contains(t, string(file2), "Endpoint: begin_session", "the machine registered in another process begins its session")
		more, err = activate(step(), e.exchange(file2))
		require.NoError(t, err)
		require.False(t, more)
		c := step()
		require.NoError(t, c.Start(context.Background()))
		assert.Equal(t, Active, c.Status().State)
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
	})
}

var updateOffline = flag.Bool("update-offline", false, "regenerate testdata/offline/*.txt")

// TestOfflineVectorFiles writes (with -update-offline) and then applies the
// carried-file vectors in testdata/offline: every kind of file the ceremony
// produces. internal/carried opens them with the standard library alone.
func TestOfflineVectorFiles(t *testing.T) {
	dir := filepath.Join("..", "testdata", "offline")
	if *updateOffline {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 90 * 24 * time.Hour, grace: 14 * 24 * time.Hour, seats: 1, features: "pro"})
			c := e.offlineMachine(e.fp, &MemoryStateStore{})
			write := func(name string, b []byte) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
			}
			reg := request(t, c)
			regReply := e.exchange(reg)
			_, err := activate(c, regReply)
			require.NoError(t, err)
			begin := request(t, c)
			beginReply := e.exchange(begin)
			_, err = activate(c, beginReply)
			require.NoError(t, err)
			time.Sleep(80 * 24 * time.Hour)
			refresh := request(t, c)
			refreshReply := e.exchange(refresh)
			_, err = activate(c, refreshReply)
			require.NoError(t, err)
			var end bytes.Buffer
			require.NoError(t, c.OfflineDeactivate(context.Background(), &end))
			write("register-request.txt", reg)
			write("register-reply.txt", regReply)
			write("begin-request.txt", begin)
			write("begin-reply.txt", beginReply)
			write("refresh-request.txt", refresh)
			write("refresh-reply.txt", refreshReply)
			write("deactivation-request.txt", end.Bytes())
			write("begin-reply-truncated.txt", beginReply[:len(beginReply)*2/3])
		})
	}
	for _, name := range []string{"register-request.txt", "begin-request.txt", "refresh-request.txt", "deactivation-request.txt"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		_, err = activate(&Client{}, b) // a request file is never a reply file
		require.ErrorIs(t, err, ErrOfflineFile, name)
	}
}
