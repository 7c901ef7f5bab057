package licensetest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/testkit"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/wiretest"
)

func TestURLAndKeys(t *testing.T) {
	t.Parallel()
	u := licensetest.NewUnstartedServer(nil)
	defer u.Close()
	assert.Equal(t, "http://[::1%25unstarted-licensetest.Server-use-its-Transport]:9/api/v2", u.URL)
	assert.Empty(t, u.Info().Addr)
	assert.Regexp(t, `^lt_`, u.Info().APIKey)
	assert.Len(t, u.Info().Secret, 32)
	assert.Len(t, u.Info().PublicKey.KeyID(), 16)
	assert.Equal(t, u.Info().PublicKey.KeyID(), u.Info().PublicKey.KeyID())
	u.Info().Secret[0] ^= 0xff // a copy
	assert.NotEqual(t, u.Info().Secret, make([]byte, 32))

	s := licensetest.NewServer(nil)
	defer s.Close()
	assert.Equal(t, "http://"+s.Info().Addr+"/api/v2", s.URL)
	assert.True(t, strings.HasPrefix(s.Info().Addr, "127.0.0.1:"))
	assert.Nil(t, s.Info().Certificate)
	assert.Same(t, s.Client(), s.Client())
	assert.Panics(t, s.Start, "a second Start")
}

func TestTLS(t *testing.T) {
	t.Parallel()
	s := licensetest.NewUnstartedServer(nil)
	defer s.Close()
	_ = s.Client() // before StartTLS: it must still trust the certificate
	s.StartTLS()
	require.NoError(t, s.AddLicense(wiretest.License()))
	assert.True(t, strings.HasPrefix(s.URL, "https://127.0.0.1:"))
	require.NoError(t, lifecycle(wiretest.NewClient(t, s, nil), 1))

	_, err := wiretest.NewClient(t, s, &http.Client{Transport: &http.Transport{}}).Post(licensetest.Register, wiretest.RegisterReq(1))
	var unknown x509.UnknownAuthorityError
	assert.ErrorAs(t, err, &unknown, "an untrusting client")

	pool := x509.NewCertPool()
	pool.AddCert(s.Info().Certificate)
	other := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer other.CloseIdleConnections()
	require.NoError(t, lifecycle(wiretest.NewClient(t, s, other), 2))

	s.SetDownMode(licensetest.DownReset)
	s.SetDown(true)
	_, err = wiretest.NewClient(t, s, nil).Post(licensetest.Register, wiretest.RegisterReq(1))
	assert.Error(t, err)
	s.SetDown(false)
	s.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultDrop, Count: 1})
	_, err = wiretest.NewClient(t, s, nil).Post(licensetest.Register, wiretest.RegisterReq(1))
	assert.Error(t, err)
	s.Inject(licensetest.Fault{Kind: licensetest.FaultCutBody})
	_, err = wiretest.NewClient(t, s, nil).Post(licensetest.Register, wiretest.RegisterReq(1))
	assert.Error(t, err)

	n := licensetest.NewTLSServer(nil)
	defer n.Close()
	require.NoError(t, n.AddLicense(wiretest.License()))
	require.NoError(t, lifecycle(wiretest.NewClient(t, n, nil), 1))
}

func TestCloseIdempotent(t *testing.T) {
	t.Parallel()
	s := licensetest.NewServer(nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(s.Close)
	}
	wg.Wait()
	s.Close()
	_, err := net.Dial("tcp", s.Info().Addr)
	assert.True(t, isRefused(err), "err = %v", err)
	_, err = (&http.Client{Transport: s.Transport()}).Get(s.URL + "/register_instance")
	assert.True(t, isRefused(err), "err = %v", err)
	// Fault setters and observation still work on a closed server.
	s.SetDown(true)
	s.SetDown(false)
	assert.Zero(t, s.Count(""))

	u := licensetest.NewUnstartedServer(nil)
	u.Close()
	u.Close()
	assert.Panics(t, u.Start, "Start after Close")
}

// blockingClock blocks the server's first clock read inside a handler until
// released, so a test can hold a request in flight.
type blockingClock struct {
	armed    atomic.Bool
	entered  chan struct{}
	released chan struct{}
}

func (c *blockingClock) Now() time.Time {
	if c.armed.CompareAndSwap(true, false) {
		close(c.entered)
		<-c.released
	}
	return time.Now()
}

func TestCloseWaitsForInFlight(t *testing.T) {
	t.Parallel()
	clock := &blockingClock{entered: make(chan struct{}), released: make(chan struct{})}
	s := licensetest.NewServer(&licensetest.Config{Clock: clock.Now})
	require.NoError(t, s.AddLicense(wiretest.License()))
	c := wiretest.NewClient(t, s, nil)
	c.Now = time.Now // the server's clock blocks: do not read it here
	clock.armed.Store(true)
	type result struct {
		r   *wiretest.Reply
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := c.Post(licensetest.Register, wiretest.RegisterReq(1))
		done <- result{r, err}
	}()
	<-clock.entered
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a request was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(clock.released)
	res := <-done
	<-closed
	require.NoError(t, res.err)
	assert.Equal(t, http.StatusOK, res.r.Status)
	assert.Equal(t, 1, s.Count(licensetest.Register))
	_, err := net.Dial("tcp", s.Info().Addr)
	assert.True(t, isRefused(err), "err = %v", err)
}

func TestCloseCutsLatency(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := licensetest.NewUnstartedServer(nil)
		require.NoError(t, s.AddLicense(wiretest.License()))
		c := wiretest.NewClient(t, s, &http.Client{Transport: s.Transport()})
		s.SetLatency("", 24*time.Hour)
		var res *wiretest.Reply
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			res, err = c.Post(licensetest.Register, wiretest.RegisterReq(1))
		}()
		synctest.Wait() // the request is waiting out its latency
		start := time.Now()
		s.Close()
		<-done
		assert.Zero(t, time.Since(start), "Close did not wait for the latency")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, res.Status)
		assert.Equal(t, 1, s.Count(licensetest.Register))
	})
}

func TestCloseCutsLatencyLoopback(t *testing.T) {
	t.Parallel()
	s := licensetest.NewServer(nil)
	require.NoError(t, s.AddLicense(wiretest.License()))
	c := wiretest.NewClient(t, s, nil)
	s.SetLatency("", 24*time.Hour)
	done := make(chan error, 1)
	go func() {
		r, err := c.Post(licensetest.Register, wiretest.RegisterReq(1))
		if err == nil && r.Status != http.StatusOK {
			err = errors.New(string(r.Body))
		}
		done <- err
	}()
	// Wait until the request is in flight: Close must then answer it.
	require.Eventually(t, func() bool { return s.InFlight() == 1 }, 10*time.Second, time.Millisecond)
	s.Close()
	require.NoError(t, <-done)
}

func TestReapingSynctest(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := licensetest.NewUnstartedServer(nil)
		defer s.Close()
		require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: product, Key: key, Seats: 1, SessionDuration: 10 * time.Minute}))
		c := wiretest.NewClient(t, s, &http.Client{Transport: s.Transport()})
		g := c.Register(t, 1).GUID
		tok := c.Begin(t, g, 1).Token
		for range 6 { // an hour of renewals
			time.Sleep(9 * time.Minute)
			mustExtend(t, c, tok)
		}
		assert.Equal(t, 1, s.SeatsInUse(product, key))
		assert.Equal(t, time.Now().Add(10*time.Minute), s.Sessions()[0].Expires)
		r := c.MustPost(t, licensetest.Begin, beginFor(product, key, g, 1))
		assert.Equal(t, http.StatusConflict, r.Status)

		time.Sleep(10 * time.Minute)
		assert.Zero(t, s.SeatsInUse(product, key))
		r = c.MustPost(t, licensetest.Extend, wire.ExtendRequest{Token: tok})
		assert.Equal(t, "session lapsed", failure(r).Message)
		c.Begin(t, g, 1)
	})
}

func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	const n = 1000
	s := licensetest.NewUnstartedServer(nil)
	defer s.Close()
	require.NoError(t, s.AddLicense(licensetest.License{ProductGUID: product, Key: key, Seats: n}))
	hc := &http.Client{Transport: s.Transport()}
	// Shared-secret mode keeps the race-detector run fast; the public-key
	// mode is covered by the benchmark.
	c := newSecretClient(t, s, hc)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs <- lifecycle(c, i)
		})
	}
	// Observe and inject while the clients run.
	wg.Go(func() {
		<-start
		for range 50 {
			_ = s.Sessions()
			_ = s.SeatsInUse(product, key)
			_ = s.Requests()
			s.SetClockSkew(0)
		}
	})
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 4*n, s.Count(""))
	assert.Len(t, s.Instances(), n)
	assert.Zero(t, s.SeatsInUse(product, key))
	assert.Empty(t, s.Sessions())
}

func TestLoggingKeepsSecrets(t *testing.T) {
	t.Parallel()
	var buf testkit.LockedBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := wiretest.License()
	l.Key = "LICENCE-KEY-SECRET"
	s := licensetest.NewServer(&licensetest.Config{Logger: logger, Addr: "127.0.0.1:0"})
	require.NoError(t, s.AddLicense(l))
	c := wiretest.NewClient(t, s, nil, envelope.WithSealedReplies())
	g := registerFor(t, c, product, l.Key, 1)
	r := c.MustPost(t, licensetest.Begin, beginFor(product, l.Key, g, 1))
	b, err := wire.DecodeBegin(r.Body)
	require.NoError(t, err)
	s.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultFail, Count: 1, Status: 503})
	c.MustPost(t, licensetest.Extend, wire.ExtendRequest{Token: b.Token})
	s.SetDown(true)
	s.SetDown(false)
	c.MustPost(t, licensetest.Extend, wire.ExtendRequest{Token: "bogus-token-value"})
	s.Close()

	logs := buf.String()
	assert.Contains(t, logs, `"endpoint":"begin_session"`)
	assert.Contains(t, logs, `"down":true`)
	for name, secret := range map[string]string{
		"api key": s.Info().APIKey, "licence key": l.Key, "token": b.Token, "session key": b.SessionKey,
		"secret": base64.StdEncoding.EncodeToString(s.Info().Secret), "bogus token": "bogus-token-value",
		"guid in payload": g,
	} {
		assert.NotContains(t, logs, secret, name)
	}
	assert.Equal(t, []licensetest.License{{ProductGUID: product, Key: l.Key, Seats: 2, SessionDuration: time.Minute,
		GracePeriod: time.Hour, Features: "a,b"}}, s.Licenses())
}

// A server built outside a bubble can serve in-memory requests from inside
// it, on the bubble's fake time.
func TestServerFromOutsideBubble(t *testing.T) {
	s := licensetest.NewUnstartedServer(nil)
	defer s.Close()
	require.NoError(t, s.AddLicense(wiretest.License()))
	synctest.Test(t, func(t *testing.T) {
		c := wiretest.NewClient(t, s, &http.Client{Transport: s.Transport()})
		s.SetLatency("", time.Minute)
		start := time.Now()
		g := c.Register(t, 1).GUID
		c.Begin(t, g, 1)
		assert.Equal(t, 2*time.Minute, time.Since(start))
		assert.Len(t, s.Sessions(), 1)
		time.Sleep(2 * time.Minute) // past the one-minute session
		assert.Empty(t, s.Sessions())
	})
}

// TestCloseIsOneOperation holds the first Close open with a request whose
// body never finishes arriving: Close waits for it. A second Close must not
// return before the first has finished, that is before the connection is
// gone.
func TestCloseIsOneOperation(t *testing.T) {
	t.Parallel()
	srv := licensetest.NewServer(nil)
	conn, err := net.Dial("tcp", srv.Info().Addr)
	require.NoError(t, err)
	_, err = conn.Write([]byte("POST /api/v2/begin_session HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"))
	require.NoError(t, err)
	// Wait until the server has read the headers: the request is in flight.
	for srv.InFlight() == 0 {
		time.Sleep(5 * time.Millisecond)
	}

	var released atomic.Bool
	var wg sync.WaitGroup
	var firstSawRelease, secondSawRelease atomic.Bool
	wg.Go(func() {
		srv.Close()
		firstSawRelease.Store(released.Load())
	})
	time.Sleep(50 * time.Millisecond) // the first Close is waiting for the connection
	wg.Go(func() {
		srv.Close()
		secondSawRelease.Store(released.Load())
	})
	time.Sleep(200 * time.Millisecond)
	released.Store(true)
	require.NoError(t, conn.Close())
	wg.Wait()
	assert.True(t, firstSawRelease.Load(), "the first Close waits for the active connection")
	assert.True(t, secondSawRelease.Load(), "the second Close returned before the first had finished")
	srv.Close() // a later Close returns at once
}

// drip sends prefix at once, then the bytes of msg one at a time, 20 ms
// apart, and reports how many of them it wrote before the server closed
// the connection.
func drip(t *testing.T, addr, prefix, msg string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, prefix)
	require.NoError(t, err)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, c) // ends when the server closes
	}()
	for i := range len(msg) {
		select {
		case <-closed:
			return i
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := c.Write([]byte{msg[i]}); err != nil {
			return i
		}
	}
	select {
	case <-closed:
		return len(msg)
	case <-time.After(5 * time.Second):
		t.Fatalf("the server still holds a connection that sent %d bytes slowly", len(msg))
		return len(msg)
	}
}

func TestSlowClientsAreCut(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, wiretest.License(), &licensetest.Config{Timeouts: wiretest.ShortTimeouts})
	host := s.Info().Addr
	long := strings.Repeat("x", 1000)

	t.Run("headers", func(t *testing.T) {
		t.Parallel()
		msg := "POST /api/v2/register_instance HTTP/1.1\r\nHost: " + host + "\r\nX-Slow: " + long + "\r\n\r\n"
		n := drip(t, host, "", msg)
		assert.Less(t, n, len(msg), "the server must cut a client that drips its headers")
	})
	t.Run("body", func(t *testing.T) {
		t.Parallel()
		head := fmt.Sprintf("POST /api/v2/register_instance HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", host, len(long))
		n := drip(t, host, head, long)
		assert.Less(t, n, len(long), "the server must cut a client that drips its body")
	})
	roomy := wiretest.NewServer(t, wiretest.License(), &licensetest.Config{Timeouts: wiretest.RoomyHeaders})
	t.Run("header size", func(t *testing.T) {
		t.Parallel()
		req, err := http.NewRequest(http.MethodPost, roomy.URL+"/"+licensetest.Register, strings.NewReader("{}"))
		require.NoError(t, err)
		req.Header.Set("X-Big", strings.Repeat("y", 16<<10))
		resp, err := roomy.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	})
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", roomy.Info().Addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "POST /api/v2/nothing HTTP/1.1\r\nHost: "+roomy.Info().Addr+"\r\nContent-Length: 0\r\n\r\n")
		require.NoError(t, err)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err = br.ReadByte()
		assert.ErrorIs(t, err, io.EOF, "an idle keep-alive connection is closed")
	})
}

// TestDelayedRepliesOutliveTimeouts: a deliberately delayed reply is longer
// than the read and write timeouts, and still arrives.
func TestDelayedRepliesOutliveTimeouts(t *testing.T) {
	t.Parallel()
	s := wiretest.NewServer(t, wiretest.License(), &licensetest.Config{Timeouts: wiretest.RoomyHeaders})
	s.SetLatency(licensetest.Register, time.Second)
	c := wiretest.NewClient(t, s, nil)
	reg := c.Register(t, 1)
	assert.NotEmpty(t, reg.GUID)
	reqs := s.Requests()
	require.Len(t, reqs, 1)
	assert.GreaterOrEqual(t, reqs[0].Latency, time.Second)
}

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
