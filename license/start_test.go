package license

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/transport"
)

// hangingServer accepts connections on loopback and never answers, as a
// wedged server or a black-holing proxy does. It counts the connections.
type hangingServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newHangingServer(t *testing.T) *hangingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return startHanging(t, ln)
}

// newHangingServerB is newHangingServer for benchmarks.
func newHangingServerB(b *testing.B) *hangingServer {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return startHanging(b, ln)
}

func startHanging(t testing.TB, ln net.Listener) *hangingServer {
	h := &hangingServer{ln: ln}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		h.wg.Wait()
		h.mu.Lock()
		for _, c := range h.conns {
			_ = c.Close()
		}
		h.mu.Unlock()
	})
	return h
}

func (h *hangingServer) url() string { return "http://" + h.ln.Addr().String() + licensetest.BasePath }

func (h *hangingServer) accepted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// attempts is the HTTP attempt count of the transport error in err.
func attempts(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.Attempts
	}
	return -1
}

// TestOfflineStartAfterCrashIsBounded crashes a real process holding a live
// session, then starts this process on the same state directory while the
// server is out in each shape a product meets. Start returns nil at once in
// Active (the old session has not lapsed), after one HTTP attempt, and
// keeps trying in the background; it never waits through retries, a
// Retry-After or a hanging connection.
func TestOfflineStartAfterCrashIsBounded(t *testing.T) {
	cases := []struct {
		name   string
		outage func(t *testing.T, srv *licensetest.Server) (url string, calls func() int)
	}{
		{"connection refused", func(t *testing.T, srv *licensetest.Server) (string, func() int) {
			srv.SetDown(true)
			return srv.URL, nil
		}},
		{"connection reset", func(t *testing.T, srv *licensetest.Server) (string, func() int) {
			srv.SetDownMode(licensetest.DownReset)
			srv.SetDown(true)
			return srv.URL, nil
		}},
		{"503 with Retry-After of a day", func(t *testing.T, srv *licensetest.Server) (string, func() int) {
			srv.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultFail, Count: 1000, Status: 503})
			srv.SetRetryAfter("", 24*time.Hour)
			n := srv.Count("")
			return srv.URL, func() int { return srv.Count("") - n }
		}},
		{"429 with Retry-After of a day", func(t *testing.T, srv *licensetest.Server) (string, func() int) {
			srv.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultFail, Count: 1000, Status: 429})
			srv.SetRetryAfter("", 24*time.Hour)
			n := srv.Count("")
			return srv.URL, func() int { return srv.Count("") - n }
		}},
		{"accepts and never answers", func(t *testing.T, srv *licensetest.Server) (string, func() int) {
			h := newHangingServer(t)
			return h.url(), h.accepted
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := licensetest.NewServer(nil)
			defer srv.Close()
			require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
				SessionDuration: time.Hour, GracePeriod: time.Hour}))
			dir := t.TempDir()
			_, stop := child(t, "crash", srv, dir)
			require.NoError(t, stop())

			url, calls := tc.outage(t, srv)
			c, err := New(Config{ServerURL: url, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
				ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}, fixedFingerprint(testFingerprint()))
			require.NoError(t, err)
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				defer cancel()
				_ = c.Close(ctx) // the server is out: end_session cannot succeed
			}()

			begun := time.Now()
			require.NoError(t, c.Start(context.Background()))
			took := time.Since(begun)
			st := c.Status()
			assert.Equal(t, Active, st.State, "the crashed run's session has not lapsed")
			assert.NoError(t, st.Reason)
			assert.ErrorIs(t, st.LastError, ErrUnreachable)
			if calls != nil {
				assert.Equal(t, 1, calls(), "Start made one attempt, then left the rest to the loop")
			} else {
				assert.Equal(t, 1, attempts(st.LastError), "Start made one attempt: %v", st.LastError)
			}
			// The hanging case is cut by the budget; the others return
			// after one attempt. The attempt timeout (10 s) is the bound
			// that the previous code could never beat with a hanging server.
			assert.Less(t, took, 10*time.Second, "Start took %v", took)
		})
	}
}

// TestStartBoundInBubble checks the start-up bounds exactly, in bubble time,
// against an in-memory server that hangs or says "retry in a day".
func TestStartBoundInBubble(t *testing.T) {
	t.Run("live persisted session, hanging server: the offline budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
			crash(e.start())
			e.srv.SetLatency("", 24*time.Hour)
			c, took, err := e.timedStart(context.Background())
			require.NoError(t, err)
			assert.Equal(t, startCut(DefaultOfflineStartBudget), took)
			assert.Equal(t, Active, c.Status().State)
		})
	})
	t.Run("grace persisted, hanging server: a shorter configured budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			crash(e.start())
			time.Sleep(20 * time.Minute)
			e.srv.SetLatency("", 24*time.Hour)
			c, took, err := e.timedStart(context.Background(), WithStartBudget(StartBudget{Offline: 300 * time.Millisecond}))
			require.NoError(t, err)
			assert.Equal(t, startCut(300*time.Millisecond), took)
			st := c.Status()
			assert.Equal(t, Grace, st.State)
			assert.ErrorIs(t, st.Reason, ErrUnreachable)
		})
	})
	t.Run("caller's deadline shorter than the budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
			crash(e.start())
			e.srv.SetLatency("", 24*time.Hour)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			c, took, err := e.timedStart(ctx)
			require.NoError(t, err)
			assert.Equal(t, 500*time.Millisecond, took)
			assert.Equal(t, Active, c.Status().State)
		})
	})
	t.Run("no state, hanging server: the online default", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
			e.srv.SetLatency("", 24*time.Hour)
			c, took, err := e.timedStart(context.Background())
			assert.ErrorIs(t, err, ErrUnreachable)
			assert.Equal(t, startCut(DefaultStartTimeout), took)
			assert.Equal(t, Idle, c.Status().State)
		})
	})
	t.Run("no state, Retry-After of a day: at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
			e.srv.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultFail, Count: 1000, Status: 429})
			e.srv.SetRetryAfter("", 24*time.Hour)
			_, took, err := e.timedStart(context.Background())
			assert.ErrorIs(t, err, ErrUnreachable)
			assert.LessOrEqual(t, took, DefaultStartTimeout)
			assert.Equal(t, 1, e.srv.Count(wire.Register), "no retry can fit a day's wait into the budget")
		})
	})
	t.Run("then the server answers: orphan ended, fresh session", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour, seats: 1})
			crash(e.start())
			e.srv.SetDown(true)
			c := e.start()
			assert.Equal(t, Active, c.Status().State)
			e.srv.SetDown(false)
			time.Sleep(time.Minute)
			synctest.Wait()
			assert.Equal(t, Active, c.Status().State)
			assert.Nil(t, c.Status().LastError)
			assert.Equal(t, 1, e.srv.Count(wire.End), "the orphan was ended")
			assert.Equal(t, 2, e.srv.Count(wire.Begin), "then a fresh session began")
			assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
			var ended []error
			for _, ev := range e.rec.all() {
				if ev.Type == EventOrphanEnded {
					ended = append(ended, ev.Reason)
				}
			}
			require.Len(t, ended, 2, "one failed try at Start, one success later")
			assert.ErrorIs(t, ended[0], ErrUnreachable)
			assert.NoError(t, ended[1])
		})
	})
}

// The path must not turn a paying customer into a saved refusal by burning
// a seat (issue 21, section 3): a forged end_session answer, a lost begin
// reply, a capacity refusal.

// TestUnsealedEndSessionNotBelieved: in sealed mode the path answers
// end_session at Close with a plain 422. The client does not believe it:
// it keeps the token (the server still holds the seat), the next run ends
// that session and begins, nothing is saved as a refusal, and an offline
// start afterwards still has its grace.
func TestUnsealedEndSessionNotBelieved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
		path := &forger{next: e.srv.Transport(), endpoint: wire.End, answer: func(r *http.Request) *http.Response {
			return plainReply(r, http.StatusUnprocessableEntity, []byte(`{"success":false,"error":"session not found"}`))
		}}
		c := e.newClient(e.config(), WithRoundTripper(path))
		require.NoError(t, c.Start(context.Background()))
		path.armed.Store(1)
		err := c.Close(context.Background())
		assert.ErrorIs(t, err, ErrUnreachable, "a plain 422 was believed")
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
		assert.NotEmpty(t, c.st.Token, "the token was dropped")

		c2 := e.newClient(e.config())
		require.NoError(t, c2.Start(context.Background()), "the next run lost its seat")
		require.NoError(t, c2.Close(context.Background()))
		assert.Nil(t, c2.st.Refusal)

		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		c3 := e.start()
		assert.True(t, c3.Valid())
	})
}

// TestSealedEndSession422Ends: the server's own sealed 422 still means the
// session is over.
func TestSealedEndSession422Ends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start()
		e.srv.Inject(licensetest.Fault{Endpoint: wire.End, Kind: licensetest.FaultFail, Status: 422, Message: "unknown token"})
		require.NoError(t, c.EndSession(context.Background()))
		assert.Empty(t, c.st.Token)
		assert.Equal(t, Idle, c.Status().State)
	})
}

// TestLostBeginReplyResent: the path lets begin_session through and drops
// the reply. The retried Start resends the same sealed request, which the
// server's replay cache answers with the stored reply: one seat, no
// refusal.
func TestLostBeginReplyResent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultDrop})
		c := e.newClient(e.config())
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		err := c.Start(context.Background())
		require.ErrorIs(t, err, ErrUnreachable)
		require.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))

		require.NoError(t, c.Start(context.Background()), "the retried Start burned a seat")
		assert.Equal(t, Active, c.Status().State)
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
		var begins, repeats int
		for _, r := range e.srv.Requests() {
			if r.Endpoint == wire.Begin {
				begins++
				if r.Repeat {
					repeats++
				}
			}
		}
		assert.Equal(t, 2, begins)
		assert.Equal(t, 1, repeats, "the retry was not the same request")
		assert.Nil(t, c.st.Refusal)
	})
}

// TestCapacityRefusalNotPersisted: a refusal about capacity (the server's
// "seat limit", a bare "no seats", a vendor's own wording mapped to
// RefusalSeatLimit) refuses now but is never saved as final: the grace of a
// still-live persisted session stays, and the next start asks again.
func TestCapacityRefusalNotPersisted(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		opts      []Option
	}{
		{"seat-limit", "seat limit", nil},
		{"no-seats", "No seats left on this licence", nil},
		{"vendor-capacity", "Concurrent user maximum reached (5/5)", []Option{WithRefusalRules(append(DefaultRefusalRules(),
			RefusalRule{Kind: RefusalSeatLimit, Phrase: "concurrent user maximum"}))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				c := e.newClient(e.config(), tc.opts...)
				require.NoError(t, c.Start(context.Background()))
				crash(c) // a live session persisted

				e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultFail, Status: 409, Message: tc.msg})
				c2 := e.newClient(e.config(), tc.opts...)
				err := c2.Start(context.Background())
				require.ErrorIs(t, err, ErrRefused, "it refuses now")
				assert.ErrorIs(t, err, ErrSeatLimit)
				assert.False(t, c2.Valid())
				require.NoError(t, c2.Close(context.Background()))

				e.srv.SetDown(true)
				c3 := e.newClient(e.config(), tc.opts...)
				require.NoError(t, c3.Start(context.Background()), "the capacity refusal took the grace away")
				assert.True(t, c3.Valid())
				require.NoError(t, c3.Close(context.Background()))

				e.srv.SetDown(false)
				begins := e.srv.Count(wire.Begin)
				c4 := e.newClient(e.config(), tc.opts...)
				defer c4.Close(context.Background())
				require.NoError(t, c4.Start(context.Background()))
				assert.Equal(t, Active, c4.Status().State)
				assert.Equal(t, begins+1, e.srv.Count(wire.Begin), "the next start asks again")
			})
		})
	}
}

// TestCapacityRefusalWithoutAllowance: with no persisted allowance, the
// server's genuine seat-limit refusal fails Start and saves nothing; once
// the seat is free, the next Start is Active.
func TestCapacityRefusalWithoutAllowance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
		other := e.newClient(e.config(), WithStateStore(&MemoryStateStore{}),
			fixedFingerprint(otherMachine()))
		require.NoError(t, other.Start(context.Background()))

		c := e.newClient(e.config())
		require.ErrorIs(t, c.Start(context.Background()), ErrSeatLimit)
		assert.Nil(t, c.st.Refusal, "a capacity refusal was saved as final")
		require.NoError(t, c.Close(context.Background()))

		require.NoError(t, other.Close(context.Background()))
		e.start()
	})
}

// TestCapacityRefusalInRenewal: in renewal, a refused extend and a fresh
// begin refused for capacity stop this run (Refused, Done closes) but save
// nothing: an offline restart still has the grace the last session granted.
func TestCapacityRefusalInRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start()
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultFail, Status: 404, Message: "unknown token"})
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultFail, Status: 409, Message: "seat limit"})
		time.Sleep(9 * time.Minute)
		synctest.Wait()
		require.Equal(t, Refused, c.Status().State)
		assert.ErrorIs(t, c.Err(), ErrSeatLimit)
		assert.Nil(t, c.st.Refusal)
		crash(c)

		e.srv.SetDown(true)
		c2 := e.start()
		assert.True(t, c2.Valid())
	})
}

// TestLostBeginReplyTooOldToResend: a begin whose reply was lost is resent
// only while the server still remembers it. Later the client seals afresh;
// the lost session still holds the only seat, so the server says "seat
// limit", which is not saved; once that session lapses, Start succeeds.
func TestLostBeginReplyTooOldToResend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultDrop})
		c := e.newClient(e.config())
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		require.ErrorIs(t, c.Start(context.Background()), ErrUnreachable)

		time.Sleep(resendWithin)
		err := c.Start(context.Background())
		require.ErrorIs(t, err, ErrSeatLimit)
		assert.Nil(t, c.st.Refusal)
		assert.Zero(t, countRejected(e.srv, wire.Begin), "an expired request was resent")

		time.Sleep(10 * time.Minute)
		e.start()
	})
}
