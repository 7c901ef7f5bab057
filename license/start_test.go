package license

import (
	"context"
	"errors"
	"net"
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
			c := e.newClient(e.config())
			defer c.Close(context.Background())
			begun := time.Now()
			require.NoError(t, c.Start(context.Background()))
			assert.Equal(t, startCut(DefaultOfflineStartBudget), time.Since(begun))
			assert.Equal(t, Active, c.Status().State)
		})
	})
	t.Run("grace persisted, hanging server: a shorter configured budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			crash(e.start())
			time.Sleep(20 * time.Minute)
			e.srv.SetLatency("", 24*time.Hour)
			c := e.newClient(e.config(), WithStartBudget(StartBudget{Offline: 300 * time.Millisecond}))
			defer c.Close(context.Background())
			begun := time.Now()
			require.NoError(t, c.Start(context.Background()))
			assert.Equal(t, startCut(300*time.Millisecond), time.Since(begun))
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
			c := e.newClient(e.config())
			defer c.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			begun := time.Now()
			require.NoError(t, c.Start(ctx))
			assert.Equal(t, 500*time.Millisecond, time.Since(begun))
			assert.Equal(t, Active, c.Status().State)
		})
	})
	t.Run("no state, hanging server: the online default", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
			e.srv.SetLatency("", 24*time.Hour)
			c := e.newClient(e.config())
			defer c.Close(context.Background())
			begun := time.Now()
			err := c.Start(context.Background())
			assert.ErrorIs(t, err, ErrUnreachable)
			assert.Equal(t, startCut(DefaultStartTimeout), time.Since(begun))
			assert.Equal(t, Idle, c.Status().State)
		})
	})
	t.Run("no state, Retry-After of a day: at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
			e.srv.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultFail, Count: 1000, Status: 429})
			e.srv.SetRetryAfter("", 24*time.Hour)
			c := e.newClient(e.config())
			defer c.Close(context.Background())
			begun := time.Now()
			err := c.Start(context.Background())
			assert.ErrorIs(t, err, ErrUnreachable)
			assert.LessOrEqual(t, time.Since(begun), DefaultStartTimeout)
			assert.Equal(t, 1, e.srv.Count(wire.Register), "no retry can fit a day's wait into the budget")
		})
	})
	t.Run("then the server answers: orphan ended, fresh session", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour, seats: 1})
			crash(e.start())
			e.srv.SetDown(true)
			c := e.newClient(e.config())
			defer c.Close(context.Background())
			require.NoError(t, c.Start(context.Background()))
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
