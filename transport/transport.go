package transport

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/licensekit/licensekit-go/internal/backoff"
	"github.com/licensekit/licensekit-go/internal/text"
)

// Version is the SDK version reported in the default User-Agent.
const Version = "0.1.0"

// maxWarned bounds how many distinct Deprecation/Sunset values a Client
// remembers for its warn-once log, so a hostile server cannot grow it.
const maxWarned = 32

// Request is one POST of a JSON body to an endpoint. It is plain data.
type Request struct {
	// Endpoint is the path appended to the base URL, e.g. "begin_session".
	// It is one or more "/"-separated segments of unreserved URL characters
	// (letters, digits, "-", ".", "_", "~"), none empty, "." or "..".
	Endpoint string
	// Body is the JSON request body, sent as is on every attempt. Do does
	// not modify it; the caller must not modify it until Do returns. A nil
	// Body sends an empty body.
	Body []byte
	// Retry selects which failures are retried; the zero value is
	// RetryIdempotent.
	Retry Retry
	// MaxAttempts bounds the attempts, first try included. 0 means the
	// Client's default (WithMaxAttempts, 3 unless set); negative is invalid.
	MaxAttempts int
}

// Response is the final HTTP reply of a Do call.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the reply headers.
	Header http.Header
	// Body is the reply body, at most the Client's response cap. It is nil
	// when the body was over the cap or could not be read.
	Body []byte
	// Attempts is the number of HTTP requests the call made.
	Attempts int
	// Deprecation and Sunset are the raw values of the reply's Deprecation
	// and Sunset headers (RFC 9745, RFC 8594), or "" when absent. The
	// Client also logs each distinct value once at Warn level, for the first
	// 32 distinct values it sees.
	Deprecation, Sunset string
}

// Client posts JSON requests to one licensing server with retries. It is
// safe for concurrent use and does not change after New, except for the
// set of Deprecation/Sunset values it has already warned about.
//
// The zero value is not usable; call New.
type Client struct {
	options        // as given, with the defaults filled in
	base    string // scheme://host/path, no trailing slash
	hc      *http.Client
	rt      http.RoundTripper // hc's transport, under the attempt guard
	libLog  *slog.Logger      // for go-retryablehttp: log's handler, capped at Debug
	header  http.Header       // the headers every request carries

	mu     sync.Mutex
	warned map[string]struct{} // "<header>\x00<value>" already logged
}

// New returns a Client that posts to baseURL + "/" + endpoint. baseURL
// holds the protocol version path, e.g. "https://licensing.example.com/api/v2";
// it must be an absolute http or https URL with a host and no user info,
// query or fragment. New reports every problem with baseURL and the options
// at once (errors joined). It does no I/O and starts no goroutines.
func New(baseURL string, opts ...Option) (*Client, error) {
	o := options{maxAttempts: DefaultMaxAttempts, backoffMin: DefaultBackoffMin, backoffMax: DefaultBackoffMax,
		retryAfterCap: DefaultRetryAfterCap, maxBytes: DefaultMaxResponseBytes}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	base, baseErr := parseBase(baseURL)
	if err := errors.Join(baseErr, o.validate()); err != nil {
		return nil, err
	}
	c := &Client{options: o, base: base, warned: make(map[string]struct{})}
	c.log = cmp.Or(c.log, slog.New(slog.DiscardHandler))
	if c.redactor == nil {
		c.redactor = func(s string) string { return s }
	}
	c.libLog = slog.New(debugHandler{c.log.Handler(), c.redactor}).With("component", "go-retryablehttp")
	c.userAgent = cmp.Or(c.userAgent, "licensekit-go/"+Version+" ("+runtime.GOOS+"/"+runtime.GOARCH+")")
	if c.rand == nil {
		c.rand = rand.Float64
	}
	c.header = http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}, "User-Agent": {c.userAgent}}
	c.hc, c.rt = buildHTTPClient(&c.options)
	return c, nil
}

// parseBase validates a base URL and returns it without a trailing slash.
// Its errors never echo the URL, which might hold credentials.
func parseBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("transport: base URL does not parse")
	}
	var errs []error
	for _, c := range []struct {
		bad  bool
		must string
	}{
		{u.Scheme != "http" && u.Scheme != "https", "scheme must be http or https"},
		{u.Host == "" || u.Opaque != "", "needs a host"},
		{u.User != nil, "must not contain user info"},
		{u.RawQuery != "" || u.ForceQuery, "must not contain a query"},
		{u.Fragment != "" || strings.Contains(raw, "#"), "must not contain a fragment"},
	} {
		if c.bad {
			errs = append(errs, errors.New("transport: base URL "+c.must))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// buildHTTPClient returns the http.Client the Client sends through (see
// WithHTTPClient), and the transport under its attemptGuard.
func buildHTTPClient(o *options) (*http.Client, http.RoundTripper) {
	var hc http.Client
	if o.httpClient != nil {
		hc = *o.httpClient // a copy: the caller's client is never modified
	}
	timeout := cmp.Or(o.attemptTimeout, max(hc.Timeout, 0), DefaultAttemptTimeout)
	rt := hc.Transport
	switch {
	case o.roundTripper != nil:
		rt = o.roundTripper
	case rt == nil:
		rt = defaultTransport(o.rootCAs, timeout)
	default:
		if t, ok := rt.(*http.Transport); ok {
			rt = hardenTransport(t, o.rootCAs)
		}
	}
	hc.Timeout = 0 // the attemptGuard's deadline does its job
	hc.Transport = attemptGuard{rt, timeout}
	// A 3xx reply comes back as is; Do turns it into an ErrRedirect error.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc, rt
}

// defaultTransport is the transport of a Client built without
// WithHTTPClient or WithRoundTripper. Its dial timeout is half the attempt
// timeout, so a connect that hangs (a blackholed address) ends as a dial
// error, which RetryUnsent may retry, rather than as an attempt timeout,
// which it may not.
func defaultTransport(pool *x509.CertPool, attempt time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   max(attempt/2, time.Millisecond),
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    pool,
		},
	}
}

// hardenTransport clones a caller's transport, raises the clone to TLS 1.2
// at least and applies the root pool. Clone runs the original's one-time
// HTTP/2 set-up (the same the original runs on first use) but does not carry
// HTTP/2 over when that set-up created it; ForceAttemptHTTP2 restores it.
func hardenTransport(orig *http.Transport, pool *x509.CertPool) *http.Transport {
	t := orig.Clone()
	if _, h2 := orig.TLSNextProto["h2"]; h2 && t.TLSNextProto == nil && t.Protocols == nil {
		t.ForceAttemptHTTP2 = true
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.MinVersion = max(t.TLSClientConfig.MinVersion, tls.VersionTLS12)
	if pool != nil {
		t.TLSClientConfig.RootCAs = pool
	}
	return t
}

// attemptGuard bounds each attempt by the attempt timeout with a context
// deadline that lasts until the reply body is closed (http.Client.Timeout
// would start a timer and a goroutine per attempt for a transport it does
// not know). It also hides the transport's CloseIdleConnections from
// go-retryablehttp, which calls it on every failed call and would drop the
// idle connections of concurrent calls (go-retryablehttp#237). Client's own
// CloseIdleConnections reaches the transport directly.
type attemptGuard struct {
	rt      http.RoundTripper
	timeout time.Duration
}

func (g attemptGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(r.Context(), g.timeout)
	resp, err := g.rt.RoundTrip(r.WithContext(ctx))
	if err != nil || resp == nil || resp.Body == nil {
		cancel()
		return resp, err
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// CloseIdleConnections closes the idle keep-alive connections of the
// Client's transport, if it has any. Calls in flight are not affected. It is
// safe to call at any time, any number of times.
func (c *Client) CloseIdleConnections() {
	if ci, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// Do posts req.Body to the base URL + "/" + req.Endpoint and retries
// according to req.Retry, waiting between attempts with jittered
// exponential backoff (and the server's Retry-After on 429 and 503, capped).
// ctx bounds the whole call, waits included; Do never stores it.
//
// Do returns (*Response, nil) for a 2xx reply whose body fits the cap. Any
// other outcome returns a non-nil *Error, and when a reply arrived also the
// *Response with its status, headers and (capped) body, so the caller can
// decode a failure shape. When ctx ends the error matches ctx.Err() through
// errors.Is and is of the unreachable class. When ctx carries a deadline
// that would pass before the next attempt could start, Do stops at once and
// returns the last outcome instead of waiting.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	if err := checkRequest(req); err != nil {
		// An invalid endpoint is left out: it might hold anything.
		return nil, &Error{Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Endpoint: req.Endpoint, Err: err}
	}
	budget := cmp.Or(req.MaxAttempts, c.maxAttempts)
	hreq, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, c.base+"/"+req.Endpoint, req.Body)
	if err != nil { // unreachable with a validated base and endpoint
		return nil, &Error{Endpoint: req.Endpoint, Err: fmt.Errorf("%w: %w", ErrInvalidRequest, err)}
	}
	maps.Copy(hreq.Header, c.header) // shared: one value each, so an append copies

	// A retryablehttp.Client per call (see the package doc): its RetryMax is
	// a field and its Backoff gets no context, so per-call policy lives in
	// closures over cl. It gets the logger only when its records are kept.
	cl := &call{c: c, endpoint: req.Endpoint, retry: req.Retry, max: budget}
	cl.rc = retryablehttp.Client{
		HTTPClient:   c.hc,
		RetryMax:     budget - 1,
		CheckRetry:   cl.checkRetry,
		Backoff:      func(time.Duration, time.Duration, int, *http.Response) time.Duration { return cl.wait },
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	if c.libLog.Handler().Enabled(context.Background(), slog.LevelDebug) {
		cl.rc.Logger = c.libLog // it logs without a context
	}
	resp, err := cl.rc.Do(hreq)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, cl.error(cl.status, withCtx(ctx, unwrapURL(err)))
	}
	return cl.finish(ctx, resp)
}

func checkRequest(req Request) error {
	if !validEndpoint(req.Endpoint) {
		return fmt.Errorf("%w: endpoint must be unreserved URL path segments", ErrInvalidRequest)
	}
	if req.Retry != RetryIdempotent && req.Retry != RetryUnsent {
		return fmt.Errorf("%w: unknown retry class %d", ErrInvalidRequest, int(req.Retry))
	}
	if req.MaxAttempts < 0 {
		return fmt.Errorf("%w: negative max attempts", ErrInvalidRequest)
	}
	return nil
}

const unreserved = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"

func validEndpoint(s string) bool {
	for seg := range strings.SplitSeq(s, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.Trim(seg, unreserved) != "" {
			return false
		}
	}
	return true
}

// call is the state of one Do call, shared by the retry policy closures.
// go-retryablehttp calls them from the goroutine running Do, one at a time.
type call struct {
	c        *Client
	rc       retryablehttp.Client
	endpoint string
	retry    Retry
	max      int

	attempts   int
	status     int           // of the last attempt, 0 when it got no reply
	retryAfter time.Duration // of the last reply, capped
	wait       time.Duration // decided by checkRetry, handed to Backoff
}

// checkRetry is the retryablehttp.CheckRetry of the call. It never returns
// an error, so the last response or transport error passes through
// unchanged.
func (cl *call) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	c := cl.c
	cl.attempts++
	cl.status, cl.retryAfter, cl.wait = 0, 0, 0
	if resp != nil {
		cl.status = resp.StatusCode
		cl.retryAfter, _ = retryAfter(resp.Header.Get("Retry-After"), time.Now(), c.retryAfterCap)
		c.noteDeprecation(ctx, cl.endpoint, resp.Header)
	}
	retry := ctx.Err() == nil && cl.attempts < cl.max && retryable(cl.retry, cl.status, err)
	stopped := false
	if retry {
		wait := backoff.Wait(c.backoffMin, c.backoffMax, cl.attempts-1, c.rand())
		if cl.status == http.StatusTooManyRequests || cl.status == http.StatusServiceUnavailable {
			wait = max(wait, cl.retryAfter)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			retry, stopped = false, true
		}
		cl.wait = wait
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		attrs := []slog.Attr{
			slog.String("endpoint", cl.endpoint),
			slog.Int("attempt", cl.attempts),
			slog.Int("status", cl.status),
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", text.Clean(c.redactor(unwrapURL(err).Error()), maxHeaderLen*2)))
		}
		if retry {
			attrs = append(attrs, slog.Duration("retry_in", cl.wait))
		}
		if stopped {
			attrs = append(attrs, slog.Bool("deadline_before_retry", true))
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "transport attempt", attrs...)
	}
	return retry, nil
}

func (cl *call) error(status int, err error) *Error {
	return &Error{Endpoint: cl.endpoint, Status: status, Attempts: cl.attempts, RetryAfter: cl.retryAfter, Err: err}
}

// withCtx makes sure an error seen after ctx ended matches ctx.Err().
func withCtx(ctx context.Context, err error) error {
	ctxErr := ctx.Err()
	if ctxErr == nil || errors.Is(err, ctxErr) {
		return err
	}
	return fmt.Errorf("%w (last error: %w)", ctxErr, err)
}

func (cl *call) finish(ctx context.Context, resp *http.Response) (*Response, error) {
	defer resp.Body.Close()
	r := &Response{
		Status:      resp.StatusCode,
		Header:      resp.Header,
		Attempts:    cl.attempts,
		Deprecation: resp.Header.Get("Deprecation"),
		Sunset:      resp.Header.Get("Sunset"),
	}
	body, err := readCapped(resp, cl.c.maxBytes)
	switch {
	case err != nil && !errors.Is(err, ErrResponseTooLarge):
		err = withCtx(ctx, err)
	case err != nil:
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		r.Body = body
		return r, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.Body, err = body, ErrRedirect
	default:
		r.Body = body
	}
	return r, cl.error(resp.StatusCode, err)
}

// readCapped reads at most limit bytes of the body. A body that is (or
// declares itself) longer fails with ErrResponseTooLarge without being read
// past limit+1 bytes.
func readCapped(resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n > limit {
		return nil, ErrResponseTooLarge
	} else if n >= 0 {
		body := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, ErrResponseTooLarge
	}
	return body, nil
}

// noteDeprecation logs, once per Client and distinct value, a reply's
// Deprecation or Sunset header at Warn level.
func (c *Client) noteDeprecation(ctx context.Context, endpoint string, h http.Header) {
	for _, name := range [...]string{"Deprecation", "Sunset"} {
		v := h.Get(name)
		if v == "" || !c.firstSighting(name+"\x00"+v) {
			continue
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "server announces deprecation",
			slog.String("endpoint", endpoint),
			slog.String("header", name),
			slog.String("value", text.Clean(c.redactor(v), maxHeaderLen)))
	}
}

// firstSighting records key and reports whether it is new. Once maxWarned
// keys are held, new keys are neither recorded nor reported.
func (c *Client) firstSighting(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.warned[key]; ok || len(c.warned) >= maxWarned {
		return false
	}
	c.warned[key] = struct{}{}
	return true
}

// maxHeaderLen bounds a logged header value, in bytes.
const maxHeaderLen = 128

// unwrapURL drops a *url.Error layer: its URL adds nothing to the endpoint.
func unwrapURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// debugHandler caps every record at Debug level. go-retryablehttp logs each
// failed attempt at Error level; Do already logs every attempt at Debug, and
// whether a failure matters is for the caller to judge and log. Its records
// carry error texts that can quote the server's bytes (a malformed HTTP
// reply), so every string and error value passes redact first.
type debugHandler struct {
	h      slog.Handler
	redact func(string) string
}

func (d debugHandler) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d debugHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(d.clean(a))
		return true
	})
	return d.h.Handle(ctx, out)
}

func (d debugHandler) clean(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString, slog.KindAny:
		s := v.String() // fmt.Sprint of an Any value
		if err, ok := v.Any().(error); ok {
			s = unwrapURL(err).Error()
		}
		return slog.String(a.Key, text.Clean(d.redact(s), maxHeaderLen*2))
	case slog.KindGroup:
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(d.cleanAll(v.Group())...)}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (d debugHandler) cleanAll(attrs []slog.Attr) []slog.Attr {
	cleaned := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		cleaned[i] = d.clean(a)
	}
	return cleaned
}

func (d debugHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return debugHandler{d.h.WithAttrs(d.cleanAll(attrs)), d.redact}
}

func (d debugHandler) WithGroup(name string) slog.Handler {
	return debugHandler{d.h.WithGroup(name), d.redact}
}
