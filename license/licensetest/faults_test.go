package licensetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/wiretest"
)

func TestFailNext(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		endpoint string // target
		hit      []string
		miss     []string
	}{
		{"one endpoint", licensetest.Begin, []string{licensetest.Begin}, []string{licensetest.Register, licensetest.Extend, licensetest.End}},
		{"all endpoints", "", []string{licensetest.Register, licensetest.Begin, licensetest.Extend, licensetest.End}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock, s, c := clocked(t, licensetest.License{}, licensetest.Config{})
			g := c.Register(t, 1).GUID
			tok := c.Begin(t, g, 1).Token
			s.SetRetryAfter(tt.endpoint, 1500*time.Millisecond)
			payloads := map[string]any{
				licensetest.Register: wiretest.RegisterReq(1),
				licensetest.Begin:    beginFor(product, key, g, 1),
				licensetest.Extend:   wire.ExtendRequest{Token: tok},
				licensetest.End:      wire.EndRequest{Token: "nope"},
			}
			for _, ep := range tt.hit {
				s.ClearFaults()
				s.SetRetryAfter(tt.endpoint, 1500*time.Millisecond)
				s.Inject(licensetest.Fault{Endpoint: tt.endpoint, Kind: licensetest.FaultFail, Count: 2, Status: http.StatusServiceUnavailable})
				for i := range 2 {
					r := c.MustPost(t, ep, payloads[ep])
					assert.Equal(t, http.StatusServiceUnavailable, r.Status, "%s #%d", ep, i)
					assert.Equal(t, "2", r.Header.Get("Retry-After"))
					f := wire.DecodeFailure(ep, r.Body)
					require.NotNil(t, f)
					assert.Equal(t, "service unavailable", f.Message)
					assert.Equal(t, clock.Now(), f.Time.Time)
				}
				r := c.MustPost(t, ep, payloads[ep])
				assert.NotEqual(t, http.StatusServiceUnavailable, r.Status, "%s after the faults", ep)
			}
			s.Inject(licensetest.Fault{Endpoint: tt.endpoint, Kind: licensetest.FaultFail, Count: 1, Status: 0})
			for _, ep := range tt.miss {
				r := c.MustPost(t, ep, payloads[ep])
				assert.NotEqual(t, http.StatusServiceUnavailable, r.Status, ep)
			}
			// Injected failures are not processed: the first session and the
			// one begun after the faults.
			assert.Len(t, s.Sessions(), 2)
		})
	}
}

func TestInjectFail(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{})
	c := wiretest.NewClient(t, s, nil, envelope.WithSealedReplies())
	s.SetRetryAfter("", time.Minute)
	s.Inject(licensetest.Fault{Endpoint: licensetest.Register, Kind: licensetest.FaultFail, Count: -1,
		Status: http.StatusForbidden, Message: "license revoked by test", RetryAfter: 3 * time.Second})
	for range 3 {
		r := c.MustPost(t, licensetest.Register, wiretest.RegisterReq(1))
		assert.Equal(t, http.StatusForbidden, r.Status)
		assert.Equal(t, "3", r.Header.Get("Retry-After"))
		assert.Equal(t, []string{"data"}, keysOf(t, r.Raw), "the injected failure is sealed")
		assert.Equal(t, "license revoked by test", failure(r).Message)
	}
	// An injected end_session failure keeps its status.
	s.Inject(licensetest.Fault{Endpoint: licensetest.End, Kind: licensetest.FaultFail, Count: 1, Status: http.StatusBadGateway})
	r := c.MustPost(t, licensetest.End, wire.EndRequest{Token: "x"})
	assert.Equal(t, http.StatusBadGateway, r.Status)
	assert.Equal(t, "1m0s", (time.Duration(mustAtoi(t, r.Header.Get("Retry-After"))) * time.Second).String())

	reqs := s.Requests()
	require.Len(t, reqs, 4)
	assert.Equal(t, licensetest.FaultFail, reqs[0].Fault)
	assert.True(t, reqs[0].Sealed)
	s.ClearFaults()
	c.Register(t, 1)
	s.Inject(licensetest.Fault{Endpoint: licensetest.Begin, Kind: licensetest.FaultFail, Count: 0, Status: 500}) // n <= 0: nothing
	assert.Empty(t, s.Instances()[0].UserHash["missing"])
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	require.NoError(t, json.Unmarshal([]byte(s), &n))
	return n
}

func TestReplyFaults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		apply func(s *licensetest.Server)
		check func(t *testing.T, r *wiretest.Reply, err error)
	}{
		{"truncate", func(s *licensetest.Server) {
			s.Inject(licensetest.Fault{Endpoint: licensetest.Begin, Kind: licensetest.FaultTruncate, Count: 1})
		}, func(t *testing.T, r *wiretest.Reply, err error) {
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, r.Status)
			assert.False(t, json.Valid(r.Body))
			assert.True(t, bytes.HasPrefix(r.Body, []byte(`{"status":1,`)), "%s", r.Body)
			_, derr := wire.DecodeBegin(r.Body)
			assert.ErrorIs(t, derr, wire.ErrProtocol)
		}},
		{"garbage", func(s *licensetest.Server) {
			s.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultGarbage, Count: 1})
		}, func(t *testing.T, r *wiretest.Reply, err error) {
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, r.Status)
			assert.False(t, json.Valid(r.Body))
			_, derr := wire.DecodeBegin(r.Body)
			assert.ErrorIs(t, derr, wire.ErrProtocol)
		}},
		{"drop", func(s *licensetest.Server) {
			s.Inject(licensetest.Fault{Endpoint: licensetest.Begin, Kind: licensetest.FaultDrop, Count: 1})
		}, func(t *testing.T, r *wiretest.Reply, err error) {
			require.Error(t, err)
			assert.True(t, isReset(err), "err = %v", err)
		}},
		{"cut body", func(s *licensetest.Server) { s.Inject(licensetest.Fault{Kind: licensetest.FaultCutBody}) }, func(t *testing.T, r *wiretest.Reply, err error) {
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		}},
		{"content type", func(s *licensetest.Server) { s.SetContentType(licensetest.Begin, "text/html") }, func(t *testing.T, r *wiretest.Reply, err error) {
			require.NoError(t, err)
			assert.Equal(t, "text/html", r.Header.Get("Content-Type"))
			_, derr := wire.DecodeBegin(r.Body)
			assert.NoError(t, derr)
		}},
		{"bad seal on a plain reply", func(s *licensetest.Server) {
			s.Inject(licensetest.Fault{Endpoint: licensetest.Begin, Kind: licensetest.FaultBadSeal})
		}, func(t *testing.T, r *wiretest.Reply, err error) {
			require.NoError(t, err)
			assert.Equal(t, []string{"data"}, keysOf(t, r.Body))
			_, derr := wire.DecodeBegin(r.Body)
			assert.ErrorIs(t, derr, wire.ErrProtocol)
		}},
	} {
		for _, transport := range []string{"loopback", "memory"} {
			t.Run(tt.name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				s := wiretest.NewServer(t, licensetest.License{})
				var hc *http.Client
				if transport == "memory" {
					hc = &http.Client{Transport: s.Transport()}
				}
				c := wiretest.NewClient(t, s, hc)
				g := c.Register(t, 1).GUID
				tt.apply(s)
				r, err := c.Post(licensetest.Begin, beginFor(product, key, g, 1))
				tt.check(t, r, err)
				// Every one of these faults spoils a processed request.
				assert.Equal(t, 1, s.SeatsInUse(product, key))
				reqs := s.Requests()
				assert.Equal(t, http.StatusOK, reqs[len(reqs)-1].Status)
				// The fault is spent, except the persistent Content-Type.
				s.SetContentType(licensetest.Begin, "")
				c.Begin(t, g, 1)
			})
		}
	}
}

func TestSealFaults(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{})
	c := wiretest.NewClient(t, s, nil, envelope.WithSealedReplies())
	g := c.Register(t, 1).GUID

	// Nothing sealed was sent for begin_session yet: the replay uses the
	// register reply.
	s.Inject(licensetest.Fault{Endpoint: licensetest.Begin, Kind: licensetest.FaultReplay})
	r, err := c.Post(licensetest.Begin, beginFor(product, key, g, 1))
	require.NoError(t, err)
	assert.ErrorIs(t, r.Err, envelope.ErrUnauthentic)
	assert.Zero(t, s.SeatsInUse(product, key), "a replayed reply means the request was not processed")

	tok := c.Begin(t, g, 1).Token
	first, err := c.Post(licensetest.Extend, wire.ExtendRequest{Token: tok})
	require.NoError(t, err)
	require.NoError(t, first.Err)
	s.Inject(licensetest.Fault{Endpoint: licensetest.Extend, Kind: licensetest.FaultReplay})
	r, err = c.Post(licensetest.Extend, wire.ExtendRequest{Token: tok})
	require.NoError(t, err)
	assert.Equal(t, first.Raw, r.Raw, "the earlier sealed reply, byte for byte")
	assert.ErrorIs(t, r.Err, envelope.ErrUnauthentic)
	assert.Equal(t, 1, s.Sessions()[0].Extensions)

	s.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultBadSeal})
	r, err = c.Post(licensetest.Extend, wire.ExtendRequest{Token: tok})
	require.NoError(t, err)
	assert.ErrorIs(t, r.Err, envelope.ErrUnauthentic)
	assert.Equal(t, 2, s.Sessions()[0].Extensions, "a bad seal spoils a processed request")
	reqs := s.Requests()
	assert.Equal(t, licensetest.FaultBadSeal, reqs[len(reqs)-1].Fault)
	assert.Equal(t, licensetest.FaultReplay, reqs[len(reqs)-2].Fault)

	// A replay with nothing sealed to replay waits.
	plain := wiretest.NewServer(t, licensetest.License{})
	pc := wiretest.NewClient(t, plain, nil)
	plain.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultReplay})
	pc.Register(t, 1)
	sc := wiretest.NewClient(t, plain, nil, envelope.WithSealedReplies())
	sc.Register(t, 1) // sealed reply, remembered
	r, err = sc.Post(licensetest.Register, wiretest.RegisterReq(1))
	require.NoError(t, err)
	assert.ErrorIs(t, r.Err, envelope.ErrUnauthentic)
}

func TestClockSkew(t *testing.T) {
	t.Parallel()
	clock, s, c := clocked(t, licensetest.License{}, licensetest.Config{})
	first := c.Register(t, 1)
	s.SetClockSkew(-2 * time.Hour)
	again := c.Register(t, 1)
	assert.Equal(t, clock.Now().Add(-2*time.Hour), again.Time.Time)
	assert.Equal(t, first.FirstRegisteredAt.Time.Add(-2*time.Hour), again.FirstRegisteredAt.Time)
	r := c.MustPost(t, licensetest.Extend, wire.ExtendRequest{Token: "nope"})
	assert.Equal(t, clock.Now().Add(-2*time.Hour), failure(r).Time.Time)
	assert.Equal(t, clock.Now(), s.Requests()[1].Time, "Requests records the true time")
	s.ClearFaults()
	assert.Equal(t, clock.Now(), c.Register(t, 1).Time.Time)
}

func TestLatency(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := licensetest.NewUnstartedServer(nil)
		defer s.Close()
		require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: product, Key: key}))
		c := wiretest.NewClient(t, s, &http.Client{Transport: s.Transport()})
		s.SetLatency("", 3*time.Second)
		s.SetLatency(licensetest.Register, 10*time.Second)
		start := time.Now()
		g := c.Register(t, 1).GUID
		assert.Equal(t, 10*time.Second, time.Since(start))
		start = time.Now()
		c.Begin(t, g, 1)
		assert.Equal(t, 3*time.Second, time.Since(start))

		// A client that gives up during the latency: not processed.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		sd, err := c.Seal(licensetest.Begin, []byte(`{}`))
		require.NoError(t, err)
		body, _ := json.Marshal(wire.Request{Key: sd.Key, Data: sd.Data})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/"+licensetest.Begin, bytes.NewReader(body))
		_, err = c.HC.Do(req)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 1, s.Count(licensetest.Begin))
		assert.Equal(t, 1, s.SeatsInUse(product, key))
	})
}

func TestLatencyLoopback(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{})
	c := wiretest.NewClient(t, s, nil)
	s.SetLatency(licensetest.Register, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	sd, err := c.Seal(licensetest.Register, []byte(`{}`))
	require.NoError(t, err)
	body, _ := json.Marshal(wire.Request{Key: sd.Key, Data: sd.Data})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/"+licensetest.Register, bytes.NewReader(body))
	errc := make(chan error, 1)
	go func() {
		resp, err := c.HC.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)
	assert.Zero(t, s.Count(""))
}

// isRefused reports whether err is a refused dial: a *net.OpError with Op
// "dial" and, where the errno is portable, ECONNREFUSED.
func isRefused(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return false
	}
	return runtime.GOOS == "windows" || errors.Is(err, syscall.ECONNREFUSED)
}

// isReset reports whether err is a connection dropped by the server: a reset,
// a broken pipe or an early EOF.
func isReset(err error) bool {
	if err == nil || isRefused(err) {
		return false
	}
	return runtime.GOOS == "windows" || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF)
}

func TestDownLoopback(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, licensetest.License{})
	c := wiretest.NewClient(t, s, nil)
	g := c.Register(t, 1).GUID // leaves a keep-alive connection in the pool

	s.SetDown(true)
	_, err := c.Post(licensetest.Begin, beginFor(product, key, g, 1))
	require.Error(t, err)
	assert.True(t, isRefused(err), "pooled client: err = %v", err)
	fresh := wiretest.NewClient(t, s, &http.Client{Transport: &http.Transport{}})
	_, err = fresh.Post(licensetest.Begin, beginFor(product, key, g, 1))
	assert.True(t, isRefused(err), "fresh client: err = %v", err)
	conn, err := net.Dial("tcp", s.Info().Addr)
	if err == nil {
		conn.Close()
	}
	assert.True(t, isRefused(err), "err = %v", err)

	s.SetDown(false)
	c.Begin(t, g, 1) // same URL
	s.SetDownMode(licensetest.DownReset)
	s.SetDown(true)
	_, err = c.Post(licensetest.Begin, beginFor(product, key, g, 1))
	require.Error(t, err)
	assert.False(t, isRefused(err), "reset, not refused: err = %v", err)
	assert.True(t, isReset(err), "err = %v", err)
	s.SetDownMode(licensetest.DownRefuse) // switches while down
	_, err = c.Post(licensetest.Begin, beginFor(product, key, g, 1))
	assert.True(t, isRefused(err), "err = %v", err)
	s.ClearFaults() // brings it up
	c.Begin(t, g, 1)
	assert.Equal(t, 2, s.Count(licensetest.Begin), "requests refused while down are not counted")
}

func TestDownMemory(t *testing.T) {
	t.Parallel()
	s := licensetest.NewUnstartedServer(nil)
	defer s.Close()
	require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: product, Key: key}))
	c := wiretest.NewClient(t, s, &http.Client{Transport: s.Transport()})
	s.SetDown(true)
	_, err := c.Post(licensetest.Register, wiretest.RegisterReq(1))
	var op *net.OpError
	require.ErrorAs(t, err, &op)
	assert.Equal(t, "dial", op.Op)
	assert.True(t, isRefused(err), "err = %v", err)

	s.SetDownMode(licensetest.DownReset)
	_, err = c.Post(licensetest.Register, wiretest.RegisterReq(1))
	require.ErrorAs(t, err, &op)
	assert.Equal(t, "read", op.Op)
	assert.True(t, isReset(err), "err = %v", err)
	s.SetDown(false)
	c.Register(t, 1)
	assert.Equal(t, 1, s.Count(""))
}

func TestDownBeforeStart(t *testing.T) {
	t.Parallel()
	s := licensetest.NewUnstartedServer(nil)
	defer s.Close()
	s.SetDown(true)
	s.Start()
	_, err := net.Dial("tcp", s.Info().Addr)
	assert.True(t, isRefused(err), "err = %v", err)
	s.SetDown(false)
	conn, err := net.Dial("tcp", s.Info().Addr)
	require.NoError(t, err)
	conn.Close()
}

func TestHandlerMounted(t *testing.T) {
	t.Parallel()
	s := licensetest.NewUnstartedServer(nil)
	defer s.Close()
	require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: product, Key: key}))
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	c := wiretest.NewClient(t, s, hs.Client())
	c.URL = hs.URL + licensetest.BasePath
	require.NoError(t, lifecycle(c, 1))
	s.SetDown(true)
	_, err := c.Post(licensetest.Register, wiretest.RegisterReq(1))
	assert.Error(t, err)
	s.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultDrop, Count: 1})
	s.SetDown(false)
	_, err = c.Post(licensetest.Register, wiretest.RegisterReq(1))
	assert.Error(t, err)
}

func TestInvalidFaultsPanic(t *testing.T) {
	t.Parallel()
	s := licensetest.NewUnstartedServer(nil)
	defer s.Close()
	assert.PanicsWithValue(t, `licensetest: unknown endpoint "begin" (want "register_instance", "begin_session", "extend_session", "end_session" or "")`,
		func() {
			s.Inject(licensetest.Fault{Endpoint: "begin", Kind: licensetest.FaultFail, Count: 1, Status: 500})
		})
	assert.Panics(t, func() { s.Inject(licensetest.Fault{}) })
	assert.Panics(t, func() { s.SetLatency("nope", time.Second) })
	assert.Panics(t, func() { s.SetDownMode(7) })
	assert.Equal(t, "reset", licensetest.DownReset.String())
}
