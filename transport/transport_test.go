package transport_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/transport"
)

const base = "http://licensing.test/api/v2"

func TestRetryByStatus(t *testing.T) {
	t.Parallel()
	type want struct {
		idempotent, unsent int // attempts out of 3
	}
	tests := map[int]want{
		200: {1, 1}, 204: {1, 1},
		400: {1, 1}, 401: {1, 1}, 403: {1, 1}, 404: {1, 1}, 409: {1, 1}, 410: {1, 1}, 422: {1, 1},
		408: {3, 1},
		429: {3, 3},
		500: {1, 1}, 501: {1, 1},
		502: {3, 1},
		503: {3, 3},
		504: {3, 1},
	}
	for status, w := range tests {
		for _, class := range []transport.Retry{transport.RetryIdempotent, transport.RetryUnsent} {
			t.Run(fmt.Sprintf("%d/%v", status, class), func(t *testing.T) {
				t.Parallel()
				var hits counter
				srv := newServer(t, hits.wrap(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(status)
					if status != http.StatusNoContent {
						fmt.Fprintf(w, `{"success":false,"error":"status %d"}`, status)
					}
				}))
				c := newClient(t, srv.URL+"/api/v2")
				resp, err := c.Do(t.Context(), transport.Request{Endpoint: "begin_session", Body: []byte(`{}`), Retry: class})

				wantAttempts := w.idempotent
				if class == transport.RetryUnsent {
					wantAttempts = w.unsent
				}
				assert.Equal(t, wantAttempts, hits.get(), "server hits")
				require.NotNil(t, resp, "a reply arrived, so Do returns it")
				assert.Equal(t, status, resp.Status)
				assert.Equal(t, wantAttempts, resp.Attempts)
				if status < 300 {
					require.NoError(t, err)
					return
				}
				te := asError(t, err)
				assert.Equal(t, "begin_session", te.Endpoint)
				assert.Equal(t, status, te.Status)
				assert.Equal(t, wantAttempts, te.Attempts)
				assert.Contains(t, string(resp.Body), fmt.Sprintf("status %d", status), "the body is the caller's to judge")
				unreachable := status == 408 || status == 429 || status >= 500
				assert.Equal(t, unreachable, te.Temporary())
				assert.Equal(t, unreachable, errors.Is(err, transport.ErrUnreachable))
				assert.Equal(t, !unreachable, errors.Is(err, transport.ErrStatus))
				assert.Contains(t, err.Error(), fmt.Sprintf("transport: begin_session: HTTP %d after %d attempt", status, wantAttempts))
			})
		}
	}
}

func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	var hits counter
	var mu sync.Mutex
	var bodies []string
	srv := newServer(t, hits.wrap(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if len(b) == 0 || hits.get() < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"success":true}`)
	}))
	c := newClient(t, srv.URL+"/api/v2")
	body := []byte(`{"key":"k","data":"d"}`)
	resp, err := c.Do(t.Context(), transport.Request{Endpoint: "register_instance", Body: body})
	require.NoError(t, err)
	assert.Equal(t, 200, resp.Status)
	assert.Equal(t, 3, resp.Attempts)
	assert.JSONEq(t, `{"success":true}`, string(resp.Body))
	assert.Equal(t, []string{string(body), string(body), string(body)}, bodies, "the body is replayed on every attempt")
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, ct, accept, ua, query string
	}
	got := make(chan seen, 2)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Accept"),
			r.Header.Get("User-Agent"), r.URL.RawQuery}
		io.WriteString(w, `{}`)
	}))

	c := newClient(t, srv.URL+"/api/v2/")
	_, err := c.Do(t.Context(), transport.Request{Endpoint: "begin_session", Body: []byte(`{}`)})
	require.NoError(t, err)
	s := <-got
	assert.Equal(t, http.MethodPost, s.method)
	assert.Equal(t, "/api/v2/begin_session", s.path)
	assert.Equal(t, "application/json", s.ct)
	assert.Equal(t, "application/json", s.accept)
	assert.Equal(t, "", s.query)
	assert.Equal(t, fmt.Sprintf("licensekit-go/%s (%s/%s)", transport.Version, runtime.GOOS, runtime.GOARCH), s.ua)

	c = newClient(t, srv.URL+"/api/v2", transport.WithUserAgent("acme-cad/4.2 licensekit-go/"+transport.Version))
	_, err = c.Do(t.Context(), transport.Request{Endpoint: "end_session"})
	require.NoError(t, err)
	s = <-got
	assert.Equal(t, "/api/v2/end_session", s.path)
	assert.Equal(t, "acme-cad/4.2 licensekit-go/"+transport.Version, s.ua)
}

// TestDialRefused: nothing listens, so the request cannot have been sent and
// both classes retry.
func TestDialRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	c := newClient(t, "http://"+addr+"/api/v2")
	for _, class := range []transport.Retry{transport.RetryIdempotent, transport.RetryUnsent} {
		resp, err := c.Do(t.Context(), transport.Request{Endpoint: "begin_session", Retry: class})
		assert.Nil(t, resp)
		te := asError(t, err)
		assert.Equal(t, 3, te.Attempts, "class %v", class)
		assert.Equal(t, 0, te.Status)
		assert.True(t, te.Temporary())
		// The portable facts: unreachable, and the dial failed. The errno behind it differs by OS
		// (ECONNREFUSED on Unix, WSAECONNREFUSED on Windows).
		assert.ErrorIs(t, err, transport.ErrUnreachable)
		op, ok := errors.AsType[*net.OpError](err)
		require.True(t, ok)
		assert.Equal(t, "dial", op.Op)
		assert.Contains(t, err.Error(), "transport: begin_session: after 3 attempts: dial tcp")
	}
}

// TestDNSFailureRetriedForUnsent uses an in-memory transport that fails as a
// resolver would.
func TestDNSFailureRetriedForUnsent(t *testing.T) {
	t.Parallel()
	var n int
	var mu sync.Mutex
	rt := rtFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		n++
		mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "licensing.test", IsNotFound: true}}
	})
	c := newClient(t, base, transport.WithRoundTripper(rt))
	_, err := c.Do(t.Context(), transport.Request{Endpoint: "begin_session", Retry: transport.RetryUnsent})
	te := asError(t, err)
	assert.Equal(t, 3, te.Attempts)
	assert.Equal(t, 3, n)
	_, isDNS := errors.AsType[*net.DNSError](err)
	assert.True(t, isDNS)
	assert.ErrorIs(t, err, transport.ErrUnreachable)
}

// TestSentButNoReply: the server reads the request and drops the connection
// (EOF or a reset). The request may have been processed, so RetryUnsent
// does not send it again; RetryIdempotent does.
func TestSentButNoReply(t *testing.T) {
	t.Parallel()
	for _, reset := range []bool{false, true} {
		for _, class := range []transport.Retry{transport.RetryIdempotent, transport.RetryUnsent} {
			t.Run(fmt.Sprintf("reset=%v/%v", reset, class), func(t *testing.T) {
				t.Parallel()
				var hits counter
				srv := newServer(t, hits.wrap(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					conn, _, err := http.NewResponseController(w).Hijack()
					if err != nil {
						panic(err)
					}
					if tc, ok := conn.(*net.TCPConn); ok && reset {
						tc.SetLinger(0) // close with RST
					}
					conn.Close()
				}))
				c := newClient(t, srv.URL+"/api/v2")
				_, err := c.Do(t.Context(), transport.Request{Endpoint: "begin_session", Body: []byte(`{"key":"k"}`), Retry: class})
				te := asError(t, err)
				want := 3
				if class == transport.RetryUnsent {
					want = 1
				}
				assert.Equal(t, want, hits.get(), "server hits")
				assert.Equal(t, want, te.Attempts)
				assert.Equal(t, 0, te.Status)
				assert.ErrorIs(t, err, transport.ErrUnreachable)
			})
		}
	}
}

// TestAttemptTimeout: a server that never answers. Each attempt times out
// after the attempt timeout; only RetryIdempotent tries again. Runs in a
// synctest bubble, so the 10 s timeouts take no real time.
func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	for _, class := range []transport.Retry{transport.RetryIdempotent, transport.RetryUnsent} {
		t.Run(class.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n int
				rt := rtFunc(func(r *http.Request) (*http.Response, error) {
					n++
					return waitForCtx(r)
				})
				c, err := transport.New(base, transport.WithRoundTripper(rt), transport.WithRand(func() float64 { return 0 }))
				require.NoError(t, err)
				start := time.Now()
				_, err = c.Do(t.Context(), transport.Request{Endpoint: "extend_session", Retry: class})
				elapsed := time.Since(start)

				te := asError(t, err)
				want := 3
				if class == transport.RetryUnsent {
					want = 1
				}
				assert.Equal(t, want, n)
				assert.Equal(t, want, te.Attempts)
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				assert.ErrorIs(t, err, transport.ErrUnreachable)
				// Attempts of 10 s plus waits of 250 ms and 500 ms (rand 0).
				wantElapsed := 10 * time.Second
				if want == 3 {
					wantElapsed = 30*time.Second + 250*time.Millisecond + 500*time.Millisecond
				}
				assert.Equal(t, wantElapsed, elapsed)
			})
		})
	}
	// The attempt timeout also covers reading the reply body: a reply whose
	// body never ends fails when the attempt's deadline passes.
	t.Run("body", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rt := rtFunc(func(r *http.Request) (*http.Response, error) {
				resp := reply(r, 200, nil, "")
				resp.ContentLength = -1
				resp.Body = io.NopCloser(ctxReader{r.Context()})
				return resp, nil
			})
			c, err := transport.New(base, transport.WithRoundTripper(rt), transport.WithAttemptTimeout(time.Second))
			require.NoError(t, err)
			start := time.Now()
			_, err = c.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
			assert.Equal(t, time.Second, time.Since(start))
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.ErrorIs(t, err, transport.ErrUnreachable)
		})
	})
}

// ctxReader is a reply body that blocks until ctx ends.
type ctxReader struct{ ctx context.Context }

func (r ctxReader) Read([]byte) (int, error) {
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

// TestRetryAfter: the wait is max(backoff, min(Retry-After, cap)) on 429
// and 503, and plain backoff elsewhere. Bubble time makes the waits exact.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		retryAfter func(now time.Time) string
		opts       []transport.Option
		want       time.Duration
	}{
		{"seconds", 503, fixed("30"), nil, 30 * time.Second},
		{"seconds on 429", 429, fixed("7"), nil, 7 * time.Second},
		{"capped at the default 60s", 503, fixed("86400"), nil, 60 * time.Second},
		{"capped by option", 503, fixed("86400"), []transport.Option{transport.WithRetryAfterCap(5 * time.Second)}, 5 * time.Second},
		{"http date", 503, func(now time.Time) string { return now.Add(45 * time.Second).UTC().Format(http.TimeFormat) }, nil, 45 * time.Second},
		{"http date capped", 429, func(now time.Time) string { return now.Add(24 * time.Hour).UTC().Format(http.TimeFormat) }, nil, 60 * time.Second},
		{"date in the past", 503, func(now time.Time) string { return now.Add(-time.Hour).UTC().Format(http.TimeFormat) }, nil, 250 * time.Millisecond},
		{"never below backoff", 503, fixed("1"), []transport.Option{transport.WithBackoff(10*time.Second, 10*time.Second)}, 5 * time.Second},
		{"ignored on 502", 502, fixed("30"), nil, 250 * time.Millisecond},
		{"garbage ignored", 503, fixed("soon"), nil, 250 * time.Millisecond},
		{"cap 0 ignores it", 503, fixed("30"), []transport.Option{transport.WithRetryAfterCap(0)}, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var times []time.Time
				rt := rtFunc(func(r *http.Request) (*http.Response, error) {
					times = append(times, time.Now())
					if len(times) == 1 {
						return reply(r, tt.status, http.Header{"Retry-After": {tt.retryAfter(time.Now())}}, ""), nil
					}
					return reply(r, 200, nil, `{}`), nil
				})
				opts := append([]transport.Option{transport.WithRoundTripper(rt), transport.WithRand(func() float64 { return 0 })}, tt.opts...)
				c, err := transport.New(base, opts...)
				require.NoError(t, err)
				resp, err := c.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
				require.NoError(t, err)
				assert.Equal(t, 2, resp.Attempts)
				require.Len(t, times, 2)
				assert.Equal(t, tt.want, times[1].Sub(times[0]))
			})
		})
	}
}

func fixed(s string) func(time.Time) string { return func(time.Time) string { return s } }

// TestHugeRetryAfterDoesNotStall: a Retry-After that would outlive ctx's
// deadline ends the call at once with the last reply.
func TestHugeRetryAfterDoesNotStall(t *testing.T) {
	t.Parallel()
	t.Run("bubble", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := 0
			rt := rtFunc(func(r *http.Request) (*http.Response, error) {
				n++
				return reply(r, 503, http.Header{"Retry-After": {"86400"}}, `{"success":false,"error":"maintenance"}`), nil
			})
			c, err := transport.New(base, transport.WithRoundTripper(rt), transport.WithRetryAfterCap(48*time.Hour))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			start := time.Now()
			resp, err := c.Do(ctx, transport.Request{Endpoint: "begin_session", Retry: transport.RetryUnsent})
			assert.Equal(t, time.Duration(0), time.Since(start), "no wait at all")
			te := asError(t, err)
			assert.Equal(t, 1, n)
			assert.Equal(t, 1, te.Attempts)
			assert.Equal(t, 503, te.Status)
			assert.Equal(t, 24*time.Hour, te.RetryAfter)
			require.NotNil(t, resp)
			assert.Contains(t, string(resp.Body), "maintenance")
			assert.Equal(t, 503, resp.Status)
		})
	})
	t.Run("real server", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "99999999999")
			w.WriteHeader(http.StatusTooManyRequests)
		}))
		c := newClient(t, srv.URL+"/api/v2")
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		_, err := c.Do(ctx, transport.Request{Endpoint: "extend_session"})
		te := asError(t, err)
		assert.Equal(t, 429, te.Status)
		assert.Equal(t, 1, te.Attempts)
		assert.Equal(t, transport.DefaultRetryAfterCap, te.RetryAfter)
		assert.NoError(t, ctx.Err(), "returned before the deadline")
	})
}

// TestBackoffSchedule checks the exact waits between attempts for a fixed
// jitter draw: U·min(max, min·2ⁿ) with U = 0.5 + rand/2.
func TestBackoffSchedule(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rand float64
		want []time.Duration
	}{
		{0, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}},
		{0.5, []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 3 * time.Second}},
	} {
		t.Run(strconv.FormatFloat(tt.rand, 'g', -1, 64), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var times []time.Time
				rt := rtFunc(func(r *http.Request) (*http.Response, error) {
					times = append(times, time.Now())
					return reply(r, 502, nil, ""), nil
				})
				c, err := transport.New(base, transport.WithRoundTripper(rt), transport.WithMaxAttempts(5),
					transport.WithBackoff(time.Second, 4*time.Second), transport.WithRand(func() float64 { return tt.rand }))
				require.NoError(t, err)
				_, err = c.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
				assert.Equal(t, 5, asError(t, err).Attempts)
				require.Len(t, times, 5)
				var gaps []time.Duration
				for i := 1; i < len(times); i++ {
					gaps = append(gaps, times[i].Sub(times[i-1]))
				}
				assert.Equal(t, tt.want, gaps)
			})
		})
	}
}

func TestRequestMaxAttempts(t *testing.T) {
	t.Parallel()
	var hits counter
	srv := newServer(t, hits.wrap(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	c := newClient(t, srv.URL+"/api/v2", transport.WithMaxAttempts(4))
	_, err := c.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
	assert.Equal(t, 4, asError(t, err).Attempts)
	_, err = c.Do(t.Context(), transport.Request{Endpoint: "end_session", MaxAttempts: 2})
	assert.Equal(t, 2, asError(t, err).Attempts)
	assert.Equal(t, 6, hits.get())
}

// TestCancelDuringBackoff: cancelling ctx while Do waits ends the wait at
// once and returns an error that matches context.Canceled.
func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		n := 0
		rt := rtFunc(func(r *http.Request) (*http.Response, error) {
			n++
			return reply(r, 503, nil, `{"error":"busy"}`), nil
		})
		c, err := transport.New(base, transport.WithRoundTripper(rt), transport.WithBackoff(time.Hour, time.Hour))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Minute, cancel)
		start := time.Now()
		resp, err := c.Do(ctx, transport.Request{Endpoint: "extend_session"})
		assert.Equal(t, time.Minute, time.Since(start))
		assert.Nil(t, resp)
		te := asError(t, err)
		assert.ErrorIs(t, err, context.Canceled)
		assert.True(t, te.Temporary())
		assert.ErrorIs(t, err, transport.ErrUnreachable)
		assert.Equal(t, 1, te.Attempts)
		assert.Equal(t, 1, n)
		assert.Equal(t, 503, te.Status)
	})
}

// TestCancelDuringAttempt: cancelling ctx while a request is in flight.
func TestCancelDuringAttempt(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c, err := transport.New(base, transport.WithRoundTripper(rtFunc(waitForCtx)))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		_, err = c.Do(ctx, transport.Request{Endpoint: "extend_session"})
		te := asError(t, err)
		assert.ErrorIs(t, err, context.Canceled)
		assert.True(t, te.Temporary())
		assert.Equal(t, 1, te.Attempts)
	})
}

func TestContextAlreadyDone(t *testing.T) {
	t.Parallel()
	var hits counter
	srv := newServer(t, hits.wrap(func(w http.ResponseWriter, r *http.Request) {}))
	c := newClient(t, srv.URL+"/api/v2")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Do(ctx, transport.Request{Endpoint: "extend_session"})
	te := asError(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 0, te.Attempts)
	assert.Equal(t, 0, hits.get())
}

func TestBodyCap(t *testing.T) {
	t.Parallel()
	t.Run("exact cap passes, one more byte fails", func(t *testing.T) {
		t.Parallel()
		for _, chunked := range []bool{false, true} {
			for _, size := range []int{16, 17} {
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !chunked {
						w.Header().Set("Content-Length", strconv.Itoa(size))
					}
					w.Write(bytes.Repeat([]byte("a"), size))
				}))
				c := newClient(t, srv.URL+"/api/v2", transport.WithMaxResponseBytes(16))
				resp, err := c.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
				require.NotNil(t, resp)
				assert.Equal(t, 200, resp.Status)
				if size == 16 {
					require.NoError(t, err)
					assert.Len(t, resp.Body, 16)
					continue
				}
				assert.ErrorIs(t, err, transport.ErrResponseTooLarge, "chunked=%v", chunked)
				assert.ErrorIs(t, err, transport.ErrUnreachable, "no usable reply was taken")
				assert.NotErrorIs(t, err, transport.ErrStatus)
				assert.Nil(t, resp.Body)
			}
		}
	})
	t.Run("never read past the cap", func(t *testing.T) {
		t.Parallel()
		for _, declared := range []bool{false, true} {
			body := &countingReader{r: bytes.NewReader(bytes.Repeat([]byte("x"), 3<<20))}
			rt := rtFunc(func(r *http.Request) (*http.Response, error) {
				resp := reply(r, 200, nil, "")
				resp.Body = io.NopCloser(body)
				resp.ContentLength = -1
				if declared {
					resp.ContentLength = 3 << 20
				}
				return resp, nil
			})
			c := newClient(t, base, transport.WithRoundTripper(rt))
			_, err := c.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
			assert.ErrorIs(t, err, transport.ErrResponseTooLarge)
			if declared {
				assert.Equal(t, int64(0), body.n, "a declared oversized body is not read at all")
			} else {
				assert.LessOrEqual(t, body.n, int64(transport.DefaultMaxResponseBytes+1))
			}
		}
	})
	t.Run("error status decides the class", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write(bytes.Repeat([]byte("<html>"), 100))
		}))
		c := newClient(t, srv.URL+"/api/v2", transport.WithMaxResponseBytes(64), transport.WithMaxAttempts(1))
		resp, err := c.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
		assert.ErrorIs(t, err, transport.ErrResponseTooLarge)
		assert.ErrorIs(t, err, transport.ErrUnreachable)
		assert.Equal(t, 503, resp.Status)
	})
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestTLS(t *testing.T) {
	t.Parallel()
	var hits counter
	srv := httptest.NewUnstartedServer(hits.wrap(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"success":true}`)
	}))
	srv.Config.ErrorLog = newDiscardLog()
	srv.StartTLS()
	t.Cleanup(srv.Close)

	t.Run("unknown authority is unreachable and not retried", func(t *testing.T) {
		for _, class := range []transport.Retry{transport.RetryIdempotent, transport.RetryUnsent} {
			c := newClient(t, srv.URL+"/api/v2")
			resp, err := c.Do(t.Context(), transport.Request{Endpoint: "register_instance", Retry: class})
			assert.Nil(t, resp)
			te := asError(t, err)
			assert.Equal(t, 1, te.Attempts)
			assert.ErrorIs(t, err, transport.ErrUnreachable)
			assert.NotErrorIs(t, err, transport.ErrStatus)
			_, isCert := errors.AsType[*tls.CertificateVerificationError](err)
			assert.True(t, isCert, "cause: %v", te.Err)
		}
		assert.Equal(t, 0, hits.get())
	})
	t.Run("WithRootCAs trusts the server", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		c := newClient(t, srv.URL+"/api/v2", transport.WithRootCAs(pool))
		resp, err := c.Do(t.Context(), transport.Request{Endpoint: "register_instance"})
		require.NoError(t, err)
		assert.Equal(t, 200, resp.Status)
	})
	t.Run("WithHTTPClient keeps the caller's TLS settings", func(t *testing.T) {
		c := newClient(t, srv.URL+"/api/v2", transport.WithHTTPClient(srv.Client()))
		resp, err := c.Do(t.Context(), transport.Request{Endpoint: "register_instance"})
		require.NoError(t, err)
		assert.Equal(t, 200, resp.Status)
	})
	t.Run("TLS 1.1 server is rejected", func(t *testing.T) {
		old := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		old.Config.ErrorLog = newDiscardLog()
		old.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
		old.StartTLS()
		t.Cleanup(old.Close)
		hc := old.Client()
		hc.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS10
		c := newClient(t, old.URL+"/api/v2", transport.WithHTTPClient(hc), transport.WithMaxAttempts(1))
		_, err := c.Do(t.Context(), transport.Request{Endpoint: "register_instance"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "tls")
	})
}

func TestRedirectRefused(t *testing.T) {
	t.Parallel()
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			var followed counter
			mux := http.NewServeMux()
			mux.HandleFunc("/api/v2/begin_session", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/api/v2/elsewhere", status)
			})
			mux.HandleFunc("/api/v2/elsewhere", followed.wrap(func(w http.ResponseWriter, r *http.Request) {}))
			srv := newServer(t, mux)
			// Even a caller client that would follow redirects does not.
			hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
			c := newClient(t, srv.URL+"/api/v2", transport.WithHTTPClient(hc))
			resp, err := c.Do(t.Context(), transport.Request{Endpoint: "begin_session", Body: []byte(`{}`)})
			te := asError(t, err)
			assert.Equal(t, status, te.Status)
			assert.Equal(t, 1, te.Attempts)
			assert.ErrorIs(t, err, transport.ErrRedirect)
			assert.ErrorIs(t, err, transport.ErrStatus)
			assert.NotErrorIs(t, err, transport.ErrUnreachable)
			assert.Equal(t, 0, followed.get())
			require.NotNil(t, resp)
			assert.Equal(t, "/api/v2/elsewhere", resp.Header.Get("Location"))
		})
	}
}

// TestNoSecretsInErrorsOrLogs sends a body with a fake key and token to a
// server that echoes them in its error text and elsewhere in its body; no
// error string or log record may contain them.
func TestNoSecretsInErrorsOrLogs(t *testing.T) {
	t.Parallel()
	const key = "LK-FAKE-KEY-7d3f9a1c5e"
	const token = "tok_FAKE_0123456789"
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/api/v2/begin_session":
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `{"success":false,"error":"unknown license %s","echo":%s}`, key, body)
		case "/api/v2/extend_session":
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"success":false,"error":"cannot extend %s now","echo":%s}`, token, body)
		default:
			hj, _, _ := http.NewResponseController(w).Hijack()
			hj.Close()
		}
	}))
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newClient(t, srv.URL+"/api/v2", transport.WithLogger(logger))

	reqs := []transport.Request{
		{Endpoint: "begin_session", Body: fmt.Appendf(nil, `{"key":%q,"data":"c2VhbGVk"}`, key), Retry: transport.RetryUnsent},
		{Endpoint: "extend_session", Body: fmt.Appendf(nil, `{"key":%q,"data":%q}`, key, token)},
		{Endpoint: "end_session", Body: fmt.Appendf(nil, `{"key":%q,"data":%q}`, key, token)},
	}
	for _, req := range reqs {
		_, err := c.Do(t.Context(), req)
		te := asError(t, err)
		_ = te
		for _, secret := range []string{key, token, "c2VhbGVk"} {
			assert.NotContains(t, err.Error(), secret)
		}
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	require.NotEmpty(t, out)
	for _, secret := range []string{key, token, "c2VhbGVk"} {
		assert.NotContains(t, out, secret)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestNoServerTextInError(t *testing.T) {
	t.Parallel()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"success":false,"time":"2025-01-01 00:00:00","error":"seat limit reached"}`)
	}))
	c := newClient(t, srv.URL+"/api/v2")
	resp, err := c.Do(t.Context(), transport.Request{Endpoint: "begin_session", Retry: transport.RetryUnsent})
	assert.Equal(t, "transport: begin_session: HTTP 409 after 1 attempt", err.Error())
	assert.ErrorIs(t, err, transport.ErrStatus)
	require.NotNil(t, resp)
	assert.Contains(t, string(resp.Body), "seat limit reached")
}

func TestHTTPClientNotMutated(t *testing.T) {
	t.Parallel()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v2/go" {
			http.Redirect(w, r, "/api/v2/ok", http.StatusTemporaryRedirect)
			return
		}
		io.WriteString(w, `{}`)
	}))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	follow := func(*http.Request, []*http.Request) error { return nil }
	jar := &nopJar{}
	caller := &http.Client{Transport: tr, Timeout: 7 * time.Second, CheckRedirect: follow, Jar: jar}
	snapshot := *caller

	pool := x509.NewCertPool()
	c := newClient(t, srv.URL+"/api/v2", transport.WithHTTPClient(caller), transport.WithRootCAs(pool),
		transport.WithAttemptTimeout(time.Second))
	_, err := c.Do(t.Context(), transport.Request{Endpoint: "ok"})
	require.NoError(t, err)
	_, err = c.Do(t.Context(), transport.Request{Endpoint: "go"})
	assert.ErrorIs(t, err, transport.ErrRedirect, "the copy refuses redirects the caller's client follows")

	assert.Same(t, tr, caller.Transport)
	// Transport.Clone runs the transport's own one-time HTTP/2 set-up,
	// which may create a TLS config; nothing of ours lands in it.
	if tr.TLSClientConfig != nil {
		assert.Equal(t, uint16(0), tr.TLSClientConfig.MinVersion)
		assert.Nil(t, tr.TLSClientConfig.RootCAs)
	}
	assert.False(t, tr.ForceAttemptHTTP2)
	assert.Equal(t, snapshot.Timeout, caller.Timeout)
	assert.Equal(t, reflect.ValueOf(follow).Pointer(), reflect.ValueOf(caller.CheckRedirect).Pointer())
	assert.Same(t, jar, caller.Jar)
}

type nopJar struct{}

func (*nopJar) SetCookies(*url.URL, []*http.Cookie) {}
func (*nopJar) Cookies(*url.URL) []*http.Cookie     { return nil }

func TestDeprecationWarnOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	sunset := "Wed, 01 Jan 2031 00:00:00 GMT"
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s := sunset
		mu.Unlock()
		w.Header().Set("Deprecation", "@1735689600")
		w.Header().Set("Sunset", s)
		io.WriteString(w, `{}`)
	}))
	rec := &recorder{}
	c := newClient(t, srv.URL+"/api/v2", transport.WithLogger(slog.New(rec)))
	for range 3 {
		resp, err := c.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
		require.NoError(t, err)
		assert.Equal(t, "@1735689600", resp.Deprecation)
		assert.Equal(t, sunset, resp.Sunset)
	}
	warns := rec.find(slog.LevelWarn, "server announces deprecation")
	require.Len(t, warns, 2, "one per header value")
	assert.Equal(t, "Deprecation", attr(warns[0], "header").String())
	assert.Equal(t, "@1735689600", attr(warns[0], "value").String())
	assert.Equal(t, "extend_session", attr(warns[0], "endpoint").String())

	mu.Lock()
	sunset = "Thu, 01 Jan 2032 00:00:00 GMT"
	mu.Unlock()
	_, err := c.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
	require.NoError(t, err)
	warns = rec.find(slog.LevelWarn, "server announces deprecation")
	require.Len(t, warns, 3, "a new value warns again")
	assert.Equal(t, "Thu, 01 Jan 2032 00:00:00 GMT", attr(warns[2], "value").String())

	// A different Client warns afresh.
	rec2 := &recorder{}
	c2 := newClient(t, srv.URL+"/api/v2", transport.WithLogger(slog.New(rec2)))
	_, err = c2.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
	require.NoError(t, err)
	assert.Len(t, rec2.find(slog.LevelWarn, "server announces deprecation"), 2)
}

func TestDebugLogPerAttempt(t *testing.T) {
	t.Parallel()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }))
	rec := &recorder{}
	c := newClient(t, srv.URL+"/api/v2", transport.WithLogger(slog.New(rec)))
	_, err := c.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
	require.Error(t, err)
	attempts := rec.find(slog.LevelDebug, "transport attempt")
	require.Len(t, attempts, 3)
	for i, r := range attempts {
		assert.Equal(t, "extend_session", attr(r, "endpoint").String())
		assert.Equal(t, int64(i+1), attr(r, "attempt").Int64())
		assert.Equal(t, int64(502), attr(r, "status").Int64())
		assert.Equal(t, i < 2, attr(r, "retry_in").Kind() == slog.KindDuration, "retry_in on attempt %d", i+1)
	}
}

func TestInvalidRequest(t *testing.T) {
	t.Parallel()
	var hits counter
	srv := newServer(t, hits.wrap(func(w http.ResponseWriter, r *http.Request) {}))
	c := newClient(t, srv.URL+"/api/v2")
	for _, req := range []transport.Request{
		{Endpoint: ""},
		{Endpoint: "../admin"},
		{Endpoint: "begin_session?key=secret"},
		{Endpoint: "begin_session", Retry: transport.Retry(7)},
		{Endpoint: "begin_session", MaxAttempts: -1},
	} {
		resp, err := c.Do(t.Context(), req)
		assert.Nil(t, resp)
		te := asError(t, err)
		assert.ErrorIs(t, err, transport.ErrInvalidRequest)
		assert.NotErrorIs(t, err, transport.ErrStatus)
		assert.NotErrorIs(t, err, transport.ErrUnreachable)
		assert.Equal(t, 0, te.Attempts)
		assert.NotContains(t, err.Error(), "secret")
	}
	assert.Equal(t, 0, hits.get())
}

func TestConcurrentDo(t *testing.T) {
	t.Parallel()
	var hits counter
	srv := newServer(t, hits.wrap(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Deprecation", "true")
		if hits.get()%3 == 0 {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, `{}`)
	}))
	c := newClient(t, srv.URL+"/api/v2", transport.WithMaxAttempts(5), transport.WithLogger(slog.New(&recorder{})))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 5 {
				_, err := c.Do(t.Context(), transport.Request{Endpoint: "extend_session", Body: []byte(`{}`)})
				if err != nil {
					assert.ErrorIs(t, err, transport.ErrUnreachable)
				}
			}
		})
	}
	wg.Wait()
}

type idleCounter struct {
	http.RoundTripper
	mu sync.Mutex
	n  int
}

func (c *idleCounter) CloseIdleConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
}

// TestCloseIdleConnections: only an explicit call reaches the transport;
// go-retryablehttp's own calls on failure are absorbed, so one failing call
// does not drop the connections of others.
func TestCloseIdleConnections(t *testing.T) {
	t.Parallel()
	rt := &idleCounter{RoundTripper: rtFunc(func(r *http.Request) (*http.Response, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	})}
	c := newClient(t, base, transport.WithRoundTripper(rt))
	_, err := c.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
	require.Error(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.Do(ctx, transport.Request{Endpoint: "extend_session"})
	require.Error(t, err)
	rt.mu.Lock()
	assert.Equal(t, 0, rt.n)
	rt.mu.Unlock()
	c.CloseIdleConnections()
	c.CloseIdleConnections()
	rt.mu.Lock()
	assert.Equal(t, 2, rt.n)
	rt.mu.Unlock()
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "licensing.example.com", "ftp://h/x", "https://u:p@h/x", "https://h/x?key=1", "https://h/x#f"} {
		c, err := transport.New(u)
		assert.Nil(t, c)
		assert.Error(t, err, "New(%q)", u)
	}
}

func TestInMemoryHandler(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /api/v2/begin_session", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"status":"ok"}`)
		})
		c, err := transport.New(base, transport.WithRoundTripper(handlerRT(mux)))
		require.NoError(t, err)
		resp, err := c.Do(t.Context(), transport.Request{Endpoint: "begin_session", Retry: transport.RetryUnsent})
		require.NoError(t, err)
		assert.Equal(t, `{"status":"ok"}`, strings.TrimSpace(string(resp.Body)))
	})
}

// TestLibraryLogsDemoted: go-retryablehttp logs failed attempts at Error;
// the Client hands it a logger capped at Debug, so a network blip never
// shows above Debug.
func TestLibraryLogsDemoted(t *testing.T) {
	t.Parallel()
	rt := rtFunc(func(r *http.Request) (*http.Response, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	})
	rec := &recorder{}
	c := newClient(t, base, transport.WithRoundTripper(rt), transport.WithLogger(slog.New(rec)))
	_, err := c.Do(t.Context(), transport.Request{Endpoint: "extend_session"})
	require.Error(t, err)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	msgs := map[string]bool{}
	for _, r := range rec.records {
		assert.Equal(t, slog.LevelDebug, r.Level, "record %q", r.Message)
		msgs[r.Message] = true
	}
	assert.True(t, msgs["request failed"], "go-retryablehttp's record is kept, at Debug: %v", msgs)
	assert.True(t, msgs["transport attempt"])
}

// TestRedactorCoversEveryLogLine: a server that answers with a malformed
// HTTP reply quoting a secret gets the secret into Go's error text; every
// record, the transport's and go-retryablehttp's, passes WithRedactor.
func TestRedactorCoversEveryLogLine(t *testing.T) {
	t.Parallel()
	const secret = "LK-SECRET-0af31c"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = conn.Read(buf)
			_, _ = io.WriteString(conn, "HTTP/1.1 "+secret+"\r\n\r\n")
			conn.Close()
		}
	}()
	for _, redacted := range []bool{false, true} {
		var logs bytes.Buffer
		var mu sync.Mutex
		logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		opts := []transport.Option{transport.WithLogger(logger), transport.WithMaxAttempts(2),
			transport.WithBackoff(time.Millisecond, time.Millisecond)}
		if redacted {
			opts = append(opts, transport.WithRedactor(func(s string) string { return strings.ReplaceAll(s, secret, "[redacted]") }))
		}
		c := newClient(t, "http://"+ln.Addr().String()+"/api/v2", opts...)
		_, err := c.Do(t.Context(), transport.Request{Endpoint: "begin_session"})
		require.Error(t, err)
		mu.Lock()
		out := logs.String()
		mu.Unlock()
		require.Contains(t, out, "go-retryablehttp")
		if redacted {
			assert.NotContains(t, out, secret)
			assert.Contains(t, out, "[redacted]")
		} else {
			assert.Contains(t, out, secret, "without a redactor the echo shows: the test can fail")
		}
	}
}
