package license

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// levelCounter is a slog handler that counts records at or above a level
// and keeps their messages.
type levelCounter struct {
	min  slog.Level
	n    atomic.Int64
	msgs chan string
}

func newLevelCounter(min slog.Level) *levelCounter {
	return &levelCounter{min: min, msgs: make(chan string, 256)}
}

func (h *levelCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }
func (h *levelCounter) Handle(_ context.Context, r slog.Record) error {
	h.n.Add(1)
	select {
	case h.msgs <- r.Message:
	default:
	}
	return nil
}
func (h *levelCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *levelCounter) WithGroup(string) slog.Handler      { return h }

// answerAll is a second, differently worded server: it answers every
// request with one status and body, as a server or gateway that rejects the
// client's credentials in its own words does.
func answerAll(status int, contentType, body string) roundTripFunc {
	return func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {contentType}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: r}, nil
	}
}

// credentialFaults are the ways a client meets a server that does not
// authenticate it: the mock with a wrong API key, public key or shared
// secret, and a second server that words its rejection otherwise.
func credentialFaults(t *testing.T, e *env) map[string]func() (Config, []Option) {
	t.Helper()
	other, err := envelope.GenerateKey(envelope.KEMX25519)
	require.NoError(t, err)
	return map[string]func() (Config, []Option){
		"mock, wrong API key": func() (Config, []Option) {
			cfg := e.config()
			cfg.APIKey = "nope"
			return cfg, nil
		},
		"mock, wrong public key": func() (Config, []Option) {
			cfg := e.config()
			cfg.ServerPublicKey = other.Public().EncodeBase64()
			return cfg, nil
		},
		"mock, wrong shared secret": func() (Config, []Option) {
			cfg := e.config()
			cfg.ServerPublicKey, cfg.SharedSecret = "", bytes.Repeat([]byte{7}, 32)
			return cfg, nil
		},
		"other server, 401 text": func() (Config, []Option) {
			return e.config(), []Option{WithRoundTripper(answerAll(401, "text/plain", "Unauthorized: invalid key"))}
		},
		"other server, 403 plain failure": func() (Config, []Option) {
			return e.config(), []Option{WithRoundTripper(answerAll(403, "application/json", `{"success":false,"error":"access denied for this key"}`))}
		},
	}
}

// TestWrongCredentialsAfterAGoodRun: after one good run with saved state, a
// client whose credentials the server does not accept keeps the grace it is
// owed (Active, then Grace: never Refused), while Status.ConfigFault names
// the fault, EventConfigFault fires once and the error-level log line
// appears once, however many renewals fail.
func TestWrongCredentialsAfterAGoodRun(t *testing.T) {
	probe := newEnv(t, envConfig{})
	for name := range credentialFaults(t, probe) {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				good := e.start()
				require.NoError(t, good.Close(context.Background()))
				assert.Nil(t, good.Status().ConfigFault)

				cfg, opts := credentialFaults(t, e)[name]()
				logs := newLevelCounter(slog.LevelError)
				c := e.newClient(cfg, append(opts, WithLogger(slog.New(logs)))...)
				require.NoError(t, c.Start(context.Background()), "the saved deadlines carry an offline start")
				t.Cleanup(func() { _ = c.Close(context.Background()) })

				st := c.Status()
				assert.Equal(t, Active, st.State)
				require.ErrorIs(t, st.ConfigFault, ErrCredentialsRejected)
				assert.ErrorIs(t, st.ConfigFault, ErrUnreachable)
				assert.NotErrorIs(t, st.ConfigFault, ErrRefused)

				time.Sleep(30 * time.Minute) // the session lapses; renewals keep failing
				st = c.Status()
				assert.Equal(t, Grace, st.State, "the customer keeps the grace they are owed")
				assert.ErrorIs(t, st.ConfigFault, ErrCredentialsRejected)
				assert.Equal(t, 1, e.rec.count(EventConfigFault), "EventConfigFault fires once")
				assert.Equal(t, int64(1), logs.n.Load(), "one error-level log line")
				assert.Contains(t, <-logs.msgs, "configuration fault")
				assert.Greater(t, e.rec.count(EventRenewFailed), 3, "renewals kept failing")
				for _, ev := range e.rec.all() {
					if ev.Type == EventConfigFault {
						assert.ErrorIs(t, ev.Reason, ErrCredentialsRejected)
						assert.Contains(t, ev.Detail, "API key")
					}
				}
			})
		})
	}
}

// TestWrongCredentialsOnAFreshMachine: without saved state, Start fails
// with an unreachable error that names the likely causes.
func TestWrongCredentialsOnAFreshMachine(t *testing.T) {
	probe := newEnv(t, envConfig{})
	for name := range credentialFaults(t, probe) {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				cfg, opts := credentialFaults(t, e)[name]()
				c := e.newClient(cfg, opts...)
				t.Cleanup(func() { _ = c.Close(context.Background()) })
				err := c.Start(context.Background())
				require.ErrorIs(t, err, ErrCredentialsRejected)
				assert.ErrorIs(t, err, ErrUnreachable)
				assert.NotErrorIs(t, err, ErrRefused)
				for _, cause := range []string{"API key", "public key", "shared secret", "key id"} {
					assert.Contains(t, err.Error(), cause)
				}
				assert.Equal(t, Idle, c.Status().State)
				assert.ErrorIs(t, c.Status().ConfigFault, ErrCredentialsRejected)
				assert.Equal(t, 1, e.rec.count(EventConfigFault))
			})
		})
	}
}

// TestConfigFaultClears: a reply that opens clears the fault, and a later
// rejection is announced again.
func TestConfigFaultClears(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		var reject atomic.Bool
		next := e.srv.Transport()
		deny := answerAll(401, "text/plain", "Unauthorized")
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if reject.Load() {
				return deny(r)
			}
			return next.RoundTrip(r)
		})
		c := e.start(WithRoundTripper(rt))
		reject.Store(true)
		time.Sleep(8 * time.Minute) // a renewal or two fail
		require.ErrorIs(t, c.Status().ConfigFault, ErrCredentialsRejected)
		reject.Store(false)
		time.Sleep(5 * time.Minute)
		assert.Nil(t, c.Status().ConfigFault, "a reply that opened clears the fault")
		assert.Equal(t, Active, c.Status().State)
		reject.Store(true)
		time.Sleep(8 * time.Minute)
		assert.ErrorIs(t, c.Status().ConfigFault, ErrCredentialsRejected)
		assert.Equal(t, 2, e.rec.count(EventConfigFault), "one event per occurrence")
	})
}

// TestWrongCredentialsResumingASharedSession: in shared mode a run that
// finds a live shared session resumes it without a network call, unless
// the session was last answered under other credentials. Then it asks the
// server first: a wrong API key shows at once as Status.ConfigFault while
// the live session still carries the run (Active, never Refused), and the
// session is not touched on the server. With the right credentials again
// the session resumes with no call at all.
func TestWrongCredentialsResumingASharedSession(t *testing.T) {
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense,
		SessionDuration: 10 * time.Minute, GracePeriod: time.Hour}))
	dir := t.TempDir()
	ctx := context.Background()
	run := func(apiKey string) (Status, SharedStart) {
		t.Helper()
		cfg := Config{ServerURL: srv.URL, APIKey: apiKey, ServerPublicKey: srv.Info().PublicKey.EncodeBase64(),
			ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}
		c, err := New(cfg, fixedFingerprint(testFingerprint()), WithSharedSession(SharedSession{}),
			WithRetry(Retry{Attempts: 1, MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}))
		require.NoError(t, err)
		require.NoError(t, c.Start(ctx))
		st, how := c.Status(), c.Shared().Start
		require.NoError(t, c.Close(ctx))
		return st, how
	}
	calls := func() int {
		return srv.Count(licensetest.Register) + srv.Count(licensetest.Begin) +
			srv.Count(licensetest.Extend) + srv.Count(licensetest.End)
	}

	st, how := run(srv.Info().APIKey)
	require.Equal(t, StartBegan, how)
	require.Nil(t, st.ConfigFault)
	before := calls()

	st, how = run(srv.Info().APIKey)
	assert.Equal(t, StartResumed, how, "the same credentials resume without a call")
	assert.Equal(t, before, calls())

	st, how = run("nope")
	assert.Greater(t, calls(), before, "other credentials: the server is asked")
	assert.Equal(t, Active, st.State, "the live session still carries the run")
	assert.ErrorIs(t, st.ConfigFault, ErrCredentialsRejected)
	assert.Equal(t, StartOffline, how)
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense), "the live session was not ended")

	after := calls()
	st, how = run(srv.Info().APIKey)
	assert.Equal(t, StartResumed, how, "the right credentials again: resumed without a call")
	assert.Nil(t, st.ConfigFault)
	assert.Equal(t, after, calls())
}

// TestChangedCredentialsTakeNoSecondSeat: the check after a credentials
// change cannot be turned against a customer whose credentials changed
// honestly (here the same public key, written as PEM instead of base64):
// the live session is ended before a new one begins, so a one-seat licence
// is not refused, and the run is Active on the new session.
func TestChangedCredentialsTakeNoSecondSeat(t *testing.T) {
	srv := licensetest.NewServer(nil)
	t.Cleanup(srv.Close)
	require.NoError(t, srv.AddLicense(licensetest.License{ProductGUID: testProduct, Key: testLicense, Seats: 1,
		SessionDuration: 10 * time.Minute, GracePeriod: time.Hour}))
	dir := t.TempDir()
	ctx := context.Background()
	run := func(pub string) (Status, SharedStart) {
		t.Helper()
		cfg := Config{ServerURL: srv.URL, APIKey: srv.Info().APIKey, ServerPublicKey: pub,
			ProductGUID: testProduct, LicenseKey: testLicense, StateDir: dir}
		c, err := New(cfg, fixedFingerprint(testFingerprint()), WithSharedSession(SharedSession{}))
		require.NoError(t, err)
		require.NoError(t, c.Start(ctx))
		st, how := c.Status(), c.Shared().Start
		require.NoError(t, c.Close(ctx))
		return st, how
	}
	_, how := run(srv.Info().PublicKey.EncodeBase64())
	require.Equal(t, StartBegan, how)

	st, how := run(string(srv.Info().PublicKey.EncodePEM()))
	assert.Equal(t, StartBegan, how, "other credentials: the server is asked")
	assert.Equal(t, Active, st.State)
	assert.Nil(t, st.ConfigFault)
	assert.Equal(t, 1, srv.Count(licensetest.End), "the old session was ended first")
	assert.Equal(t, 1, srv.SeatsInUse(testProduct, testLicense), "no second seat")
}
