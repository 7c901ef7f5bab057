package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	const limit = 60 * time.Second
	tests := []struct {
		in     string
		limit  time.Duration
		want   time.Duration
		wantOK bool
	}{
		{"", limit, 0, false},
		{"   ", limit, 0, false},
		{"0", limit, 0, true},
		{"7", limit, 7 * time.Second, true},
		{" 7 ", limit, 7 * time.Second, true},
		{"60", limit, 60 * time.Second, true},
		{"61", limit, limit, true},
		{"86400", limit, limit, true},
		{"99999999999999999999999999", limit, limit, true}, // overflows int64: cap
		{"9223372036854775807", limit, limit, true},
		{"-5", limit, 0, false},
		{"+5", limit, 0, false},
		{"1.5", limit, 0, false},
		{"soon", limit, 0, false},
		{"Sun, 01 Jun 2025 12:00:30 GMT", limit, 30 * time.Second, true},  // RFC 1123
		{"Sunday, 01-Jun-25 12:00:30 GMT", limit, 30 * time.Second, true}, // RFC 850
		{"Sun Jun  1 12:00:30 2025", limit, 30 * time.Second, true},       // ANSI C
		{"Sun, 01 Jun 2025 13:00:00 GMT", limit, limit, true},
		{"Sun, 01 Jun 2025 11:00:00 GMT", limit, 0, true}, // in the past
		{"Sun, 01 Jun 2025 12:00:30 +0200", limit, 0, false},
		{"30", 0, 0, true},            // cap 0: Retry-After never waits
		{"30", -time.Second, 0, true}, // a negative cap counts as 0
		{"30", 24 * time.Hour, 30 * time.Second, true},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.in, now, tt.limit)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("retryAfter(%q, now, %v) = %v, %v; want %v, %v", tt.in, tt.limit, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	type want struct{ idempotent, unsent bool }
	statuses := map[int]want{
		200: {}, 201: {}, 204: {}, 301: {}, 307: {}, 308: {},
		400: {}, 401: {}, 403: {}, 404: {}, 409: {}, 410: {}, 422: {},
		408: {true, false},
		429: {true, true},
		500: {}, 501: {},
		502: {true, false},
		503: {true, true},
		504: {true, false},
		505: {}, 599: {},
	}
	for status, w := range statuses {
		if got := retryable(RetryIdempotent, status, nil); got != w.idempotent {
			t.Errorf("retryable(idempotent, %d, nil) = %v; want %v", status, got, w.idempotent)
		}
		if got := retryable(RetryUnsent, status, nil); got != w.unsent {
			t.Errorf("retryable(unsent, %d, nil) = %v; want %v", status, got, w.unsent)
		}
	}

	errs := []struct {
		name string
		err  error
		want want
	}{
		{"dial refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, want{true, true}},
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: errTimeout{}}, want{true, true}},
		{"dns", &net.DNSError{Err: "no such host", Name: "licensing.invalid", IsNotFound: true}, want{true, true}},
		{"wrapped refused", fmt.Errorf("post: %w", syscall.ECONNREFUSED), want{true, true}},
		{"read reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, want{true, false}},
		{"write broken pipe", &net.OpError{Op: "write", Net: "tcp", Err: syscall.EPIPE}, want{true, false}},
		{"eof", io.EOF, want{true, false}},
		{"unexpected eof", io.ErrUnexpectedEOF, want{true, false}},
		{"attempt timeout", errTimeout{}, want{true, false}},
		{"unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, want{false, false}},
		{"bare hostname error", x509.HostnameError{Host: "x"}, want{false, false}},
		{"expired", fmt.Errorf("tls: %w", x509.CertificateInvalidError{Reason: x509.Expired}), want{false, false}},
	}
	for _, tt := range errs {
		if got := retryable(RetryIdempotent, 0, tt.err); got != tt.want.idempotent {
			t.Errorf("retryable(idempotent, 0, %s) = %v; want %v", tt.name, got, tt.want.idempotent)
		}
		if got := retryable(RetryUnsent, 0, tt.err); got != tt.want.unsent {
			t.Errorf("retryable(unsent, 0, %s) = %v; want %v", tt.name, got, tt.want.unsent)
		}
	}
}

type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }

func TestErrorClass(t *testing.T) {
	t.Parallel()
	const (
		unreach = iota
		status
		neither
	)
	tests := []struct {
		name  string
		e     Error
		class int
	}{
		{"zero", Error{}, unreach},
		{"network", Error{Err: io.ErrUnexpectedEOF}, unreach},
		{"canceled", Error{Err: context.Canceled}, unreach},
		{"deadline", Error{Err: fmt.Errorf("x: %w", context.DeadlineExceeded)}, unreach},
		{"canceled beats 403", Error{Status: 403, Err: context.Canceled}, unreach},
		{"408", Error{Status: 408}, unreach},
		{"429", Error{Status: 429}, unreach},
		{"500", Error{Status: 500}, unreach},
		{"501", Error{Status: 501}, unreach},
		{"503", Error{Status: 503}, unreach},
		{"503 too large", Error{Status: 503, Err: ErrResponseTooLarge}, unreach},
		{"200 too large", Error{Status: 200, Err: ErrResponseTooLarge}, unreach},
		{"403 too large", Error{Status: 403, Err: ErrResponseTooLarge}, unreach},
		{"200 body cut", Error{Status: 200, Err: io.ErrUnexpectedEOF}, unreach},
		{"cert", Error{Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}, unreach},
		{"307", Error{Status: 307, Err: ErrRedirect}, status},
		{"400", Error{Status: 400}, status},
		{"401", Error{Status: 401}, status},
		{"403", Error{Status: 403}, status},
		{"404", Error{Status: 404}, status},
		{"407", Error{Status: 407}, status},
		{"409", Error{Status: 409}, status},
		{"422", Error{Status: 422}, status},
		{"invalid request", Error{Err: fmt.Errorf("%w: bad", ErrInvalidRequest)}, neither},
	}
	for _, tt := range tests {
		e := tt.e
		if got := e.Temporary(); got != (tt.class == unreach) {
			t.Errorf("%s: Temporary() = %v; want %v", tt.name, got, tt.class == unreach)
		}
		if got := errors.Is(&e, ErrUnreachable); got != (tt.class == unreach) {
			t.Errorf("%s: errors.Is(err, ErrUnreachable) = %v; want %v", tt.name, got, tt.class == unreach)
		}
		if got := errors.Is(&e, ErrStatus); got != (tt.class == status) {
			t.Errorf("%s: errors.Is(err, ErrStatus) = %v; want %v", tt.name, got, tt.class == status)
		}
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e    Error
		want string
	}{
		{Error{Endpoint: "begin_session", Status: 503, Attempts: 3},
			"transport: begin_session: HTTP 503 after 3 attempts"},
		{Error{Endpoint: "end_session", Status: 422, Attempts: 1},
			"transport: end_session: HTTP 422 after 1 attempt"},
		{Error{Endpoint: "register_instance", Status: 307, Attempts: 1, Err: ErrRedirect},
			"transport: register_instance: HTTP 307 after 1 attempt: redirect not followed"},
		{Error{Err: fmt.Errorf("%w: negative max attempts", ErrInvalidRequest)},
			"transport: invalid request: negative max attempts"},
		{Error{Endpoint: "extend_session", Attempts: 2, Err: io.ErrUnexpectedEOF},
			"transport: extend_session: after 2 attempts: unexpected EOF"},
		{Error{Endpoint: "extend_session", Err: context.Canceled},
			"transport: extend_session: context canceled"},
		{Error{Endpoint: "x"}, "transport: x: failed"},
		{Error{Status: 500}, "transport: HTTP 500"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("(%+v).Error() = %q; want %q", tt.e, got, tt.want)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-1", "99999999999999999999", "Sun, 01 Jun 2025 12:00:30 GMT",
		"Sunday, 01-Jun-25 12:00:30 GMT", "Sun Jun  1 12:00:30 2025", "garbage"} {
		f.Add(s, int64(time.Minute))
	}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string, limit int64) {
		d, ok := retryAfter(s, now, time.Duration(limit))
		if d < 0 || d > max(time.Duration(limit), 0) {
			t.Fatalf("retryAfter(%q, %d) = %v, %v; out of [0, cap]", s, limit, d, ok)
		}
		if !ok && d != 0 {
			t.Fatalf("retryAfter(%q, %d) = %v, false; want 0 when not ok", s, limit, d)
		}
	})
}

func TestParseBase(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"https://licensing.example.com/api/v2":  "https://licensing.example.com/api/v2",
		"https://licensing.example.com/api/v2/": "https://licensing.example.com/api/v2",
		"HTTPS://licensing.example.com/api/v2":  "https://licensing.example.com/api/v2",
		"http://127.0.0.1:8080/api/v2":          "http://127.0.0.1:8080/api/v2",
		"http://[::1]:8080":                     "http://[::1]:8080",
	}
	for in, want := range good {
		got, err := parseBase(in)
		if err != nil || got != want {
			t.Errorf("parseBase(%q) = %q, %v; want %q, nil", in, got, err, want)
		}
	}
	bad := []string{
		"",
		"licensing.example.com/api/v2",
		"ftp://licensing.example.com/api/v2",
		"https:///api/v2",
		"https://user:hunter2@licensing.example.com/api/v2",
		"https://licensing.example.com/api/v2?key=s3cr3t",
		"https://licensing.example.com/api/v2?",
		"https://licensing.example.com/api/v2#frag",
		"https://licensing.example.com/api/v2#",
		"mailto:ops@example.com",
		"https://licensing.example.com/%zz",
	}
	for _, in := range bad {
		_, err := parseBase(in)
		if err == nil {
			t.Errorf("parseBase(%q) = nil error; want an error", in)
			continue
		}
		for _, secret := range []string{"hunter2", "s3cr3t"} {
			assert.NotContains(t, err.Error(), secret, "parseBase(%q) error echoes a secret", in)
		}
	}
}

func TestValidEndpoint(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"begin_session", "register_instance", "v3/sessions", "a-b.c~d"} {
		assert.True(t, validEndpoint(s), "validEndpoint(%q)", s)
	}
	for _, s := range []string{"", "/begin_session", "begin_session/", "a//b", ".", "..", "a/../b",
		"begin_session?key=x", "begin session", "a%2fb", "a#b", "é"} {
		assert.False(t, validEndpoint(s), "validEndpoint(%q)", s)
	}
}

func TestDefaultTransportHardened(t *testing.T) {
	t.Parallel()
	c, err := New("https://licensing.example.com/api/v2")
	require.NoError(t, err)
	tr, ok := c.rt.(*http.Transport)
	require.True(t, ok, "default transport is %T", c.rt)
	require.NotNil(t, tr.TLSClientConfig)
	assert.Equal(t, uint16(tls.VersionTLS12), tr.TLSClientConfig.MinVersion)
	assert.NotNil(t, tr.Proxy, "proxy from environment")
	assert.True(t, tr.ForceAttemptHTTP2)
	assert.Equal(t, DefaultAttemptTimeout, c.hc.Transport.(attemptGuard).timeout)
	assert.Zero(t, c.hc.Timeout, "the attempt guard bounds each attempt")
	assert.NotNil(t, c.hc.CheckRedirect)
}

func TestHardenCallerTransport(t *testing.T) {
	t.Parallel()
	pool := x509.NewCertPool()
	tests := []struct {
		name    string
		in      func() *http.Transport
		pool    *x509.CertPool
		wantMin uint16
		wantH2  bool
	}{
		{"plain", func() *http.Transport { return &http.Transport{} }, nil, tls.VersionTLS12, true},
		{"plain, already used", func() *http.Transport { tr := &http.Transport{}; tr.Clone(); return tr }, pool, tls.VersionTLS12, true},
		{"custom dialer keeps h2 off", func() *http.Transport { return &http.Transport{DialContext: (&net.Dialer{}).DialContext} }, nil, tls.VersionTLS12, false},
		{"h2 disabled stays off", func() *http.Transport {
			return &http.Transport{TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
		}, nil, tls.VersionTLS12, false},
		{"tls 1.0 raised", func() *http.Transport {
			return &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS10}}
		}, pool, tls.VersionTLS12, false},
		{"tls 1.3 kept", func() *http.Transport {
			return &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13}, ForceAttemptHTTP2: true}
		}, nil, tls.VersionTLS13, true},
	}
	for _, tt := range tests {
		orig := tt.in()
		var beforeMin uint16
		if orig.TLSClientConfig != nil {
			beforeMin = orig.TLSClientConfig.MinVersion
		}
		got := hardenTransport(orig, tt.pool)
		assert.NotSame(t, orig, got, tt.name)
		assert.Equal(t, tt.wantMin, got.TLSClientConfig.MinVersion, tt.name)
		_, nextH2 := got.TLSNextProto["h2"]
		assert.Equal(t, tt.wantH2, got.ForceAttemptHTTP2 || nextH2, tt.name)
		if tt.pool != nil {
			assert.Same(t, tt.pool, got.TLSClientConfig.RootCAs, tt.name)
		}
		// The original's TLS settings are untouched (Clone may have run
		// its own one-time HTTP/2 set-up, which adds NextProtos).
		if orig.TLSClientConfig != nil {
			assert.NotSame(t, orig.TLSClientConfig, got.TLSClientConfig, tt.name)
			assert.Equal(t, beforeMin, orig.TLSClientConfig.MinVersion, tt.name)
			assert.Nil(t, orig.TLSClientConfig.RootCAs, tt.name)
		}
	}
}

func TestNewOptionErrors(t *testing.T) {
	t.Parallel()
	_, err := New("ftp://user:pw@x/?q=1",
		WithAttemptTimeout(0),
		WithMaxAttempts(0),
		WithBackoff(time.Second, time.Millisecond),
		WithRetryAfterCap(-1),
		WithMaxResponseBytes(0),
		WithUserAgent("evil\r\nX-Injected: 1"),
		WithRootCAs(x509.NewCertPool()),
		WithRoundTripper(http.NewFileTransport(http.Dir("."))),
	)
	require.Error(t, err)
	for _, want := range []string{"scheme", "user info", "query", "attempt timeout", "max attempts",
		"backoff", "retry-after cap", "max response bytes", "user agent", "WithRootCAs"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "pw")

	_, err = New("https://x/api/v2", WithRootCAs(x509.NewCertPool()),
		WithHTTPClient(&http.Client{Transport: http.NewFileTransport(http.Dir("."))}))
	require.ErrorContains(t, err, "WithRootCAs needs an *http.Transport")
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	c, err := New("https://x/api/v2", nil, WithLogger(nil), WithRand(nil), WithHTTPClient(nil))
	require.NoError(t, err)
	assert.NotNil(t, c.log)
	assert.NotNil(t, c.rand)
	assert.Equal(t, DefaultMaxAttempts, c.maxAttempts)
	assert.Equal(t, DefaultBackoffMin, c.backoffMin)
	assert.Equal(t, DefaultBackoffMax, c.backoffMax)
	assert.Equal(t, DefaultRetryAfterCap, c.retryAfterCap)
	assert.Equal(t, int64(DefaultMaxResponseBytes), c.maxBytes)

	c, err = New("https://x/api/v2", WithRetryAfterCap(0))
	require.NoError(t, err)
	assert.Equal(t, time.Duration(0), c.retryAfterCap, "an explicit 0 cap is kept")

	c, err = New("https://x/api/v2", WithHTTPClient(&http.Client{Timeout: 3 * time.Second}))
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, c.hc.Transport.(attemptGuard).timeout, "caller timeout kept without WithAttemptTimeout")

	c, err = New("https://x/api/v2", WithHTTPClient(&http.Client{Timeout: 3 * time.Second}),
		WithAttemptTimeout(time.Second))
	require.NoError(t, err)
	assert.Equal(t, time.Second, c.hc.Transport.(attemptGuard).timeout)
}

func TestRetryString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "idempotent", RetryIdempotent.String())
	assert.Equal(t, "unsent", RetryUnsent.String())
	assert.Equal(t, "Retry(9)", Retry(9).String())
}
