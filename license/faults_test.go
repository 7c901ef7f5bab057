package license

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// faultCase is one named fault. run drives a client through the fault and
// returns it with the error to classify (a Start error, or else the
// client's Reason or LastError).
type faultCase struct {
	name string
	env  envConfig
	run  func(t *testing.T, e *env) (*Client, error)
	// want is the state at the end of run; cat is ErrUnreachable,
	// ErrRefused or nil for "no error".
	want State
	cat  error
	// also lists further sentinels the error must match.
	also []error
}

// rewrite is a RoundTripper that, once armed, rewrites replies of one
// endpoint: for faults the mock server does not script.
type rewrite struct {
	next     http.RoundTripper
	endpoint string
	armed    atomic.Bool
	fn       func(*http.Response) *http.Response
}

func (r *rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil || !r.armed.Load() || !toEndpoint(req, r.endpoint) {
		return resp, err
	}
	return r.fn(resp), nil
}

// toEndpoint reports whether req is a call of endpoint ("" matches every
// endpoint).
func toEndpoint(req *http.Request, endpoint string) bool {
	return endpoint == "" || strings.HasSuffix(req.URL.Path, "/"+endpoint)
}

func replaceBody(resp *http.Response, status int, body []byte, header http.Header) *http.Response {
	resp.Body.Close()
	if header == nil {
		header = http.Header{"Content-Type": {"application/json"}}
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: header,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: resp.Request,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
}

// lapse runs a started client past its session with extends failing.
func lapse(e *env, c *Client) (*Client, error) {
	time.Sleep(e.sessionLeft(c) + time.Second)
	synctest.Wait()
	st := c.Status()
	return c, st.LastError
}

func (e *env) sessionLeft(c *Client) time.Duration {
	return time.Until(c.Status().SessionExpiry)
}

// persistent makes every matching request fail the same way.
func persistent(e *env, endpoint string, status int) {
	e.srv.Inject(licensetest.Fault{Endpoint: endpoint, Kind: licensetest.FaultFail, Count: -1, Status: status})
}

func failExtend(status int) func(t *testing.T, e *env) (*Client, error) {
	return func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		persistent(e, wire.Extend, status)
		persistent(e, wire.Begin, status)
		return lapse(e, c)
	}
}

func faultWith(kind licensetest.FaultKind) func(t *testing.T, e *env) (*Client, error) {
	return func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.Inject(licensetest.Fault{Endpoint: "", Kind: kind, Count: -1})
		return lapse(e, c)
	}
}

// withRewrite starts a client whose replies to endpoint are rewritten by fn
// once the session is running.
func withRewrite(endpoint string, fn func(*http.Response) *http.Response) func(t *testing.T, e *env) (*Client, error) {
	return func(t *testing.T, e *env) (*Client, error) {
		rw := &rewrite{next: e.srv.Transport(), endpoint: endpoint, fn: fn}
		c := e.start(WithRoundTripper(rw))
		rw.armed.Store(true)
		return lapse(e, c)
	}
}

// insecure runs a fault case with InsecureUnsealedReplies, for faults that
// rewrite plain replies.
func insecure(run func(t *testing.T, e *env) (*Client, error)) func(t *testing.T, e *env) (*Client, error) {
	return func(t *testing.T, e *env) (*Client, error) {
		e.insecure = true
		return run(t, e)
	}
}

func sealedEnv() envConfig {
	return envConfig{session: 10 * time.Minute, grace: time.Hour}
}

func sealedStart(t *testing.T, e *env) *Client {
	c := e.newClient(e.config())
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

var faultCases = []faultCase{
	// Server faults.
	{name: "server down at start, no saved state", run: func(t *testing.T, e *env) (*Client, error) {
		e.srv.SetDown(true)
		return e.tryStart()
	}, want: Idle, cat: ErrUnreachable},
	{name: "server down at start, persisted session still live", run: func(t *testing.T, e *env) (*Client, error) {
		crash(e.start())
		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		c := e.start()
		return c, c.Status().LastError
	}, want: Active, cat: ErrUnreachable},
	{name: "server down at start, saved state within grace", run: func(t *testing.T, e *env) (*Client, error) {
		crash(e.start())
		time.Sleep(11 * time.Minute)
		e.srv.SetDown(true)
		c := e.start()
		return c, c.Status().Reason
	}, want: Grace, cat: ErrUnreachable},
	{name: "server down mid-session", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.SetDown(true)
		return lapse(e, c)
	}, want: Grace, cat: ErrUnreachable},
	{name: "server down mid-session, connections reset", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.SetDownMode(licensetest.DownReset)
		e.srv.SetDown(true)
		return lapse(e, c)
	}, want: Grace, cat: ErrUnreachable},
	{name: "server flapping", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		for range 60 {
			e.srv.SetDown(true)
			time.Sleep(20 * time.Second)
			e.srv.SetDown(false)
			time.Sleep(40 * time.Second)
		}
		synctest.Wait()
		assert.NotContains(t, e.rec.states(), Expired)
		return c, c.Status().Reason
	}, want: Active, cat: nil},
	{name: "HTTP 500", run: failExtend(500), want: Grace, cat: ErrUnreachable},
	{name: "HTTP 502", run: failExtend(502), want: Grace, cat: ErrUnreachable},
	{name: "HTTP 503", run: failExtend(503), want: Grace, cat: ErrUnreachable},
	{name: "HTTP 504", run: failExtend(504), want: Grace, cat: ErrUnreachable},
	{name: "HTTP 408", run: failExtend(408), want: Grace, cat: ErrUnreachable},
	{name: "HTTP 429 with Retry-After 86400: capped, grace deadline wins", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.Inject(licensetest.Fault{Kind: licensetest.FaultFail, Count: -1, Status: 429, RetryAfter: 24 * time.Hour})
		deadline := c.Status().GraceDeadline
		time.Sleep(time.Until(deadline))
		synctest.Wait()
		assert.Equal(t, Expired, c.Status().State, "Expired exactly at the grace deadline")
		// Retries kept coming despite the 24 h Retry-After: at least one a
		// minute through the hour of grace.
		assert.GreaterOrEqual(t, e.srv.Count(wire.Extend)+e.srv.Count(wire.Begin), 60)
		return c, c.Status().LastError
	}, want: Expired, cat: ErrUnreachable, also: []error{}},

	// Slow or broken replies.
	{name: "reply slower than the attempt timeout", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.SetLatency("", 30*time.Second)
		return lapse(e, c)
	}, want: Grace, cat: ErrUnreachable, also: []error{context.DeadlineExceeded}},
	{name: "connection reset mid-body", run: faultWith(licensetest.FaultCutBody), want: Grace, cat: ErrUnreachable},
	{name: "reply lost after processing", run: faultWith(licensetest.FaultDrop), want: Grace, cat: ErrUnreachable},
	{name: "truncated body", run: faultWith(licensetest.FaultTruncate), want: Grace, cat: ErrUnreachable, also: []error{ErrMalformedReply}},
	{name: "truncated body, unsealed", run: insecure(faultWith(licensetest.FaultTruncate)), want: Grace, cat: ErrUnreachable,
		also: []error{ErrMalformedReply}},
	{name: "garbage body", run: faultWith(licensetest.FaultGarbage), want: Grace, cat: ErrUnreachable, also: []error{ErrIntercepted}},
	{name: "plain JSON success with sealed replies", run: withRewrite(wire.Extend, func(r *http.Response) *http.Response {
		return replaceBody(r, 200, []byte(`{"status":1,"token":"t","control_options":{"session_duration":600}}`), nil)
	}), want: Grace, cat: ErrUnreachable, also: []error{ErrUnauthenticated}},
	{name: "valid JSON of the wrong shape, unsealed", run: insecure(withRewrite(wire.Extend, func(r *http.Response) *http.Response {
		return replaceBody(r, 200, []byte(`{"status":1,"token":["x"],"control_options":{"session_duration":"soon"}}`), nil)
	})), want: Grace, cat: ErrUnreachable, also: []error{wire.ErrProtocol, ErrMalformedReply}},
	{name: "zero session_duration, unsealed", run: insecure(withRewrite(wire.Extend, func(r *http.Response) *http.Response {
		return replaceBody(r, 200, []byte(`{"status":1,"token":"t","control_options":{"session_duration":0}}`), nil)
	})), want: Grace, cat: ErrUnreachable, also: []error{wire.ErrProtocol, ErrMalformedReply}},
	{name: "wrong Content-Type, valid body: accepted", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.SetContentType("", "text/html; charset=utf-8")
		time.Sleep(time.Hour)
		synctest.Wait()
		return c, c.Status().Reason
	}, want: Active, cat: nil},
	{name: "HTTP 200 with success:false", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		persistent(e, "", 200)
		return lapse(e, c)
	}, want: Refused, cat: ErrRefused},
	{name: "huge body: the cap holds", run: withRewrite(wire.Extend, func(r *http.Response) *http.Response {
		return replaceBody(r, 200, bytes.Repeat([]byte(" "), 4<<20), nil)
	}), want: Grace, cat: ErrUnreachable},

	// Envelope and TLS.
	{name: "undecryptable sealed reply", env: sealedEnv(), run: func(t *testing.T, e *env) (*Client, error) {
		c := sealedStart(t, e)
		e.srv.Inject(licensetest.Fault{Kind: licensetest.FaultBadSeal, Count: -1})
		return lapse(e, c)
	}, want: Grace, cat: ErrUnreachable},
	{name: "replayed sealed reply from an earlier request", env: sealedEnv(), run: func(t *testing.T, e *env) (*Client, error) {
		c := sealedStart(t, e)
		e.srv.Inject(licensetest.Fault{Kind: licensetest.FaultReplay, Count: -1})
		return lapse(e, c)
	}, want: Grace, cat: ErrUnreachable},
	{name: "forged plain refusal with sealed replies", env: sealedEnv(), run: func(t *testing.T, e *env) (*Client, error) {
		rw := &rewrite{next: e.srv.Transport(), endpoint: "", fn: func(r *http.Response) *http.Response {
			return replaceBody(r, 403, []byte(`{"success":false,"error":"license revoked"}`), nil)
		}}
		c := e.newClient(e.config(), WithRoundTripper(rw))
		require.NoError(t, c.Start(context.Background()))
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		rw.armed.Store(true)
		return lapse(e, c)
	}, want: Grace, cat: ErrUnreachable},
	{name: "redirect", run: withRewrite(wire.Extend, func(r *http.Response) *http.Response {
		return replaceBody(r, 302, nil, http.Header{"Location": {"https://elsewhere.example/"}})
	}), want: Grace, cat: ErrUnreachable},

	// Session faults.
	{name: "licence revoked mid-session", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		c2, err := lapse(e, c)
		assert.NotContains(t, e.rec.states(), Grace, "refusal skips grace")
		return c2, err
	}, want: Refused, cat: ErrRefused, also: []error{ErrRevoked}},
	{name: "seat limit reached", env: envConfig{seats: 1}, run: func(t *testing.T, e *env) (*Client, error) {
		e.start(WithStateStore(&MemoryStateStore{}))
		return e.tryStart()
	}, want: Refused, cat: ErrRefused, also: []error{ErrSeatLimit}},
	{name: "extend refused, then begin succeeds", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultFail, Count: 1, Status: 404})
		time.Sleep(e.sessionLeft(c))
		synctest.Wait()
		assert.Equal(t, 2, e.srv.Count(wire.Begin))
		return c, c.Status().Reason
	}, want: Active, cat: nil},
	{name: "session_duration shrunk by the server", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		require.NoError(t, e.srv.SetControlOptions(testProduct, testLicense, time.Minute, time.Minute))
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, time.Minute, c.Status().SessionDuration)
		return c, c.Status().Reason
	}, want: Active, cat: nil},

	// Clock faults.
	{name: "wall clock set back 2 hours", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.SetDown(true)
		e.wall.jump(-2 * time.Hour)
		c, _ = lapse(e, c)
		return c, c.Status().Reason
	}, want: Expired, cat: nil, also: []error{ErrClockRollback}},
	{name: "wall clock jumps forward 3 hours (suspend)", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		time.Sleep(time.Minute)
		e.wall.jump(3 * time.Hour)
		time.Sleep(maxSleep + time.Second)
		synctest.Wait()
		assert.Equal(t, 1, e.rec.count(EventResumeDetected))
		return c, c.Status().Reason
	}, want: Active, cat: nil},

	// State file faults.
	{name: "state file corrupt", run: stateFault(func(b []byte) []byte { return []byte("LKST\x01" + strings.Repeat("x", 40)) }),
		want: Idle, cat: ErrUnreachable, also: []error{ErrStateCorrupt}},
	{name: "state file truncated", run: stateFault(func(b []byte) []byte { return b[:len(b)-10] }),
		want: Idle, cat: ErrUnreachable, also: []error{ErrStateCorrupt}},
	{name: "state file from another machine", run: func(t *testing.T, e *env) (*Client, error) {
		dir := t.TempDir()
		c1 := e.mustStartIn(dir)
		crash(c1)
		e.fp = testFingerprint()
		e.fp.Extra[1].Value = "a-different-machine"
		e.srv.SetDown(true)
		c, err := New(e.withDir(dir), append(e.options(), WithStateStore(nil))...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c, c.Start(context.Background())
	}, want: Idle, cat: ErrUnreachable, also: []error{ErrStateCorrupt}},
	{name: "read-only state directory", run: func(t *testing.T, e *env) (*Client, error) {
		dir := t.TempDir()
		require.NoError(t, os.Chmod(dir, 0o500))
		t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
		target := filepath.Join(dir, "sub")
		if os.Geteuid() == 0 {
			// Root ignores permissions: make the directory impossible instead.
			file := filepath.Join(dir, "file")
			_ = os.Chmod(dir, 0o700)
			require.NoError(t, os.WriteFile(file, nil, 0o600))
			target = filepath.Join(file, "sub")
		}
		c, err := e.startIn(target)
		return c, err
	}, want: Active, cat: nil},
	{name: "crash between temp write and rename", run: func(t *testing.T, e *env) (*Client, error) {
		dir := t.TempDir()
		c1 := e.mustStartIn(dir)
		crash(c1)
		require.NoError(t, os.WriteFile(filepath.Join(dir, stateBase+".tmp-9"), []byte("half"), 0o600))
		e.srv.SetDown(true)
		c, err := e.startIn(dir)
		require.NoError(t, err, "the last complete state is intact")
		return c, c.Status().LastError
	}, want: Active, cat: ErrUnreachable},

	// Process faults.
	{name: "two processes sharing a state directory", run: func(t *testing.T, e *env) (*Client, error) {
		dir := t.TempDir()
		a := e.mustStartIn(dir)
		b := e.mustStartIn(dir)
		assert.NotEqual(t, a.store.slot.Path(), b.store.slot.Path(), "each live client gets its own slot")
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, Active, a.Status().State)
		return b, b.Status().Reason
	}, want: Active, cat: nil},
	{name: "Close while a renewal is in flight", run: func(t *testing.T, e *env) (*Client, error) {
		c := e.start()
		e.srv.SetLatency(wire.Extend, time.Hour)
		waitRenewing(t, c)
		before := time.Now()
		err := c.Close(context.Background())
		assert.Less(t, time.Since(before), time.Second)
		return c, err
	}, want: Ended, cat: nil},
	{name: "context cancelled during backoff", run: func(t *testing.T, e *env) (*Client, error) {
		persistent(e, "", 503)
		e.srv.SetRetryAfter("", 10*time.Second)
		c := e.newClient(e.config())
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(3 * time.Second); cancel() }()
		before := time.Now()
		err := c.Start(ctx)
		assert.Equal(t, 3*time.Second, time.Since(before), "Start returns as soon as ctx is cancelled")
		assert.ErrorIs(t, err, context.Canceled)
		return c, err
	}, want: Idle, cat: ErrUnreachable},
}

// stateFault saves a real state, mangles it, and starts offline on it.
func stateFault(mangle func([]byte) []byte) func(t *testing.T, e *env) (*Client, error) {
	return func(t *testing.T, e *env) (*Client, error) {
		crash(e.start())
		_ = e.store.Save(context.Background(), mangle(e.store.Bytes()))
		e.srv.SetDown(true)
		return e.tryStart()
	}
}

// TestFaultSuite runs every named fault under testing/synctest. Each case
// asserts the state and the error category (unreachable or refused). After
// each, the client is closed and the saved state must still open. The
// bubble itself proves no goroutine is left behind: synctest.Test fails if
// any goroutine started in it is still running when it returns.
func TestFaultSuite(t *testing.T) {
	require.GreaterOrEqual(t, len(faultCases), 25)
	for _, tc := range faultCases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ec := tc.env
				if ec.session == 0 {
					ec.session, ec.grace = 10*time.Minute, time.Hour
				}
				e := newEnv(t, ec)
				c, err := tc.run(t, e)
				require.NotNil(t, c)
				st := c.Status()
				assert.Equal(t, tc.want, st.State, "state")
				checkCategory(t, tc.cat, err)
				for _, s := range tc.also {
					assert.ErrorIs(t, err, s)
				}
				if err != nil {
					assert.True(t, strings.HasPrefix(err.Error(), "license: ") || errors.Is(err, context.Canceled),
						"error %q must start with the package name", err)
				}

				// The state, whatever happened, is intact or atomically
				// replaced: it opens with the client's key.
				_ = c.Close(context.Background())
				if blob := e.store.Bytes(); len(blob) > 0 && c.store.keys != nil && c.store.corrupt == nil {
					_, oerr := openState(c.store.keys[0], blob)
					assert.NoError(t, oerr, "saved state must open")
				}
			})
		})
	}
}

func checkCategory(t *testing.T, cat, err error) {
	t.Helper()
	switch cat {
	case nil:
		if err != nil && !errors.Is(err, ErrClockRollback) {
			t.Errorf("want no error, got %v", err)
		}
	case ErrUnreachable:
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrUnreachable)
		assert.NotErrorIs(t, err, ErrRefused)
		assert.NotErrorIs(t, err, ErrClientFault)
	case ErrRefused:
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrRefused)
		assert.NotErrorIs(t, err, ErrUnreachable)
		assert.NotErrorIs(t, err, ErrClientFault)
	}
}

// TestTLSCertificateFailure uses a real TLS server (outside synctest): a
// certificate the client does not trust is a clear error, not retried.
func TestTLSCertificateFailure(t *testing.T) {
	srv := licensetest.NewTLSServer(nil)
	defer srv.Close()
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense}))
	c, err := New(Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense}, fixedFingerprint(testFingerprint()))
	require.NoError(t, err)
	defer c.Close(context.Background())
	err = c.Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
	assert.NotErrorIs(t, err, ErrRefused, "the licence server was never reached")
	assert.Equal(t, 0, srv.Count(wire.Register)+srv.Count(wire.Begin))
	assert.Equal(t, Idle, c.Status().State)

	// Trusting the server's certificate fixes it.
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	ok, err := New(Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
		ProductGUID: testProduct, LicenseKey: testLicense}, fixedFingerprint(testFingerprint()), WithRootCAs(pool))
	require.NoError(t, err)
	require.NoError(t, ok.Start(context.Background()))
	require.NoError(t, ok.Close(context.Background()))
}

// waitRenewing sleeps in bubble time until a renewal is in flight.
func waitRenewing(t *testing.T, c *Client) {
	t.Helper()
	for range 3600 {
		if c.Status().Renewing {
			return
		}
		time.Sleep(time.Second)
		synctest.Wait()
	}
	t.Fatal("no renewal started within an hour")
}

// deprecating is a path that adds Deprecation and Sunset headers with the
// given values to every reply.
func deprecating(e *env, deprecation, sunset string) *rewrite {
	rw := &rewrite{next: e.srv.Transport(), fn: func(r *http.Response) *http.Response {
		r.Header.Set("Deprecation", deprecation)
		r.Header.Set("Sunset", sunset)
		return r
	}}
	rw.armed.Store(true)
	return rw
}

// TestDeprecationHeaderSurfaces checks that a server's Deprecation and
// Sunset headers reach the caller as a fact, in an event and in Status.
func TestDeprecationHeaderSurfaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		c := e.start(WithRoundTripper(deprecating(e, "true", "Wed, 01 Jul 2026 00:00:00 GMT")))
		assert.True(t, c.Status().Deprecated)
		assert.Equal(t, 1, e.rec.count(EventDeprecated), "reported once, not per request")
		time.Sleep(time.Hour)
		assert.Equal(t, 1, e.rec.count(EventDeprecated))
	})
}

// TestDeprecationHeaderTextNotShown: the path adds a Deprecation header
// with its own words. Only the fact reaches Status and events: the
// product never shows the path's text to its user.
func TestDeprecationHeaderTextNotShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start(WithRoundTripper(deprecating(e, "Your licence was revoked. Call +1-555-0100", "now; call +1-555-0100")))
		assert.True(t, c.Status().Deprecated, "the fact is kept")
		assert.NotContains(t, fmt.Sprintf("%+v", c.Status()), "555")
		assert.NotContains(t, fmt.Sprintf("%+v", c.Status()), "revoked")
		n := 0
		for _, ev := range e.rec.all() {
			if ev.Type == EventDeprecated {
				n++
			}
			assert.NotContains(t, ev.Detail, "555")
			assert.NotContains(t, ev.Detail, "revoked")
		}
		assert.Equal(t, 1, n, "the fact is still reported, once")
	})
}

// TestDeprecationNeedsTheServersWord: a Deprecation header on a page that
// is not the licence server's word (a proxy's 407) sets nothing.
func TestDeprecationNeedsTheServersWord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		rw := &rewrite{next: e.srv.Transport(), endpoint: wire.Extend, fn: func(r *http.Response) *http.Response {
			return replaceBody(r, http.StatusProxyAuthRequired, []byte("<html>proxy</html>"),
				http.Header{"Deprecation": {"true"}, "Content-Type": {"text/html"}})
		}}
		c := e.start(WithRoundTripper(rw))
		rw.armed.Store(true)
		_, err := lapse(e, c)
		require.ErrorIs(t, err, ErrIntercepted)
		assert.False(t, c.Status().Deprecated)
		assert.Zero(t, e.rec.count(EventDeprecated))
	})
}
