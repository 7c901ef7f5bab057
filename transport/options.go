package transport

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Defaults applied by New when the matching option is not given.
const (
	// DefaultAttemptTimeout bounds one HTTP attempt (WithAttemptTimeout).
	DefaultAttemptTimeout = 10 * time.Second
	// DefaultMaxAttempts is the attempt budget per call, first try
	// included (WithMaxAttempts).
	DefaultMaxAttempts = 3
	// DefaultBackoffMin is the exponential backoff's base (WithBackoff).
	DefaultBackoffMin = 500 * time.Millisecond
	// DefaultBackoffMax caps the exponential backoff (WithBackoff).
	DefaultBackoffMax = 10 * time.Second
	// DefaultRetryAfterCap caps a server's Retry-After (WithRetryAfterCap).
	DefaultRetryAfterCap = 60 * time.Second
	// DefaultMaxResponseBytes caps a reply body, 1 MiB
	// (WithMaxResponseBytes).
	DefaultMaxResponseBytes = 1 << 20
)

// Option configures a Client in New. Options are applied in order; a later
// option of the same kind wins. An option given an invalid value makes New
// fail; a nil pointer or func restores the default.
type Option func(*options)

type options struct {
	log            *slog.Logger
	httpClient     *http.Client
	roundTripper   http.RoundTripper
	rootCAs        *x509.CertPool
	userAgent      string
	attemptTimeout time.Duration // 0: not set
	maxAttempts    int
	backoffMin     time.Duration
	backoffMax     time.Duration
	retryAfterCap  time.Duration
	maxBytes       int64
	rand           func() float64
	redactor       func(string) string
	errs           []error
}

func (o *options) fail(format string, args ...any) {
	o.errs = append(o.errs, fmt.Errorf("transport: "+format, args...))
}

func (o *options) check(ok bool, format string, args ...any) bool {
	if !ok {
		o.fail(format, args...)
	}
	return ok
}

// WithLogger sets the logger for the Client and for the go-retryablehttp
// client under it, whose records (Error level for a failed attempt, among
// others) are demoted to Debug. Nil (the default) discards all records.
// Records never hold a body, key, token or URL query.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithHTTPClient bases the Client on a copy of hc. hc itself is never
// modified and may keep being used elsewhere. In the copy:
//   - a *http.Transport is cloned, then raised to TLS 1.2 at least and given
//     the WithRootCAs pool if any; its proxy setting is kept;
//   - any other Transport is used as is, and a nil one gets the Client's
//     default transport;
//   - CheckRedirect is replaced: redirects are never followed;
//   - Timeout is the attempt timeout: WithAttemptTimeout if given, else
//     hc.Timeout if non-zero, else DefaultAttemptTimeout.
//
// Nil restores the default (a fresh client).
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) { o.httpClient = hc }
}

// WithRoundTripper sends every request through rt instead of the network,
// for example an in-memory server inside a testing/synctest bubble. rt
// replaces the Transport of the (possibly copied) HTTP client. It must be
// safe for concurrent use. Nil restores the default.
func WithRoundTripper(rt http.RoundTripper) Option {
	return func(o *options) { o.roundTripper = rt }
}

// WithRootCAs sets the certificate authorities that verify the server,
// replacing the system roots for this Client (as tls.Config.RootCAs does).
// To trust a private CA in addition to the system roots, pass
// x509.SystemCertPool() with the extra certificates appended. It needs an
// *http.Transport underneath: New fails when it is combined with
// WithRoundTripper or a WithHTTPClient whose Transport is another type.
// Nil keeps the system roots.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(o *options) { o.rootCAs = pool }
}

// WithUserAgent sets the User-Agent header. The default is
// "licensekit-go/<Version> (<GOOS>/<GOARCH>)". "" restores the default;
// a value with control characters makes New fail.
func WithUserAgent(ua string) Option {
	return func(o *options) { o.userAgent = ua }
}

// WithAttemptTimeout bounds each HTTP attempt, from dialing to the end of
// the reply body (default 10 s). The caller's ctx bounds the whole call,
// retries and waits included. d must be positive.
func WithAttemptTimeout(d time.Duration) Option {
	return func(o *options) {
		if o.check(d > 0, "attempt timeout must be positive, got %v", d) {
			o.attemptTimeout = d
		}
	}
}

// WithMaxAttempts sets how many attempts a Request with MaxAttempts 0 gets,
// first try included (default 3). n must be at least 1.
func WithMaxAttempts(n int) Option {
	return func(o *options) {
		if o.check(n >= 1, "max attempts must be at least 1, got %d", n) {
			o.maxAttempts = n
		}
	}
}

// WithBackoff sets the bounds of the exponential backoff between attempts
// (default 500 ms to 10 s). Retry n waits U[0.5,1)·min(hi, lo·2ⁿ). lo must
// be positive and hi at least lo.
func WithBackoff(lo, hi time.Duration) Option {
	return func(o *options) {
		if o.check(lo > 0 && hi >= lo, "backoff needs 0 < min <= max, got %v..%v", lo, hi) {
			o.backoffMin, o.backoffMax = lo, hi
		}
	}
}

// WithRetryAfterCap bounds how long a server's Retry-After can make Do wait
// (default 60 s); the wait is max(backoff, min(Retry-After, cap)). 0 ignores
// Retry-After for waiting. d must not be negative.
func WithRetryAfterCap(d time.Duration) Option {
	return func(o *options) {
		if o.check(d >= 0, "retry-after cap must not be negative, got %v", d) {
			o.retryAfterCap = d
		}
	}
}

// WithMaxResponseBytes caps the reply body (default 1 MiB). A larger body
// fails with ErrResponseTooLarge and is never read past n+1 bytes. n must
// be positive.
func WithMaxResponseBytes(n int64) Option {
	return func(o *options) {
		if o.check(n > 0, "max response bytes must be positive, got %d", n) {
			o.maxBytes = n
		}
	}
}

// WithRand sets the jitter source, a function returning values in [0, 1)
// that must be safe for concurrent use (default math/rand/v2.Float64).
// Out-of-range values count as 0.5, as in the licence client's renewal
// schedule (both use internal/backoff). Nil restores the default.
func WithRand(f func() float64) Option {
	return func(o *options) { o.rand = f }
}

// WithRedactor passes every text from the network that the Client logs (a
// Deprecation or Sunset value, an attempt's error text, every text in a
// go-retryablehttp record) through f before it is logged, so that a caller
// who knows its secrets can remove them. f must be safe for concurrent use.
// Nil (the default) logs them as they are. Either way every such text is
// then cleaned of control characters and bounded (internal/text.Clean).
func WithRedactor(f func(string) string) Option {
	return func(o *options) { o.redactor = f }
}

func (o *options) validate() error {
	o.check(!strings.ContainsFunc(o.userAgent, func(r rune) bool { return r < 0x20 || r == 0x7f }),
		"user agent contains a control character")
	if o.rootCAs != nil && o.roundTripper != nil {
		o.fail("WithRootCAs cannot apply to a WithRoundTripper transport")
	} else if o.rootCAs != nil && o.httpClient != nil && o.httpClient.Transport != nil {
		_, ok := o.httpClient.Transport.(*http.Transport)
		o.check(ok, "WithRootCAs needs an *http.Transport, the HTTP client has %T", o.httpClient.Transport)
	}
	return errors.Join(o.errs...)
}
