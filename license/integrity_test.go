package license

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func sealedConfig(e *env) Config {
	cfg := e.config()
	cfg.InsecureUnsealedReplies = false
	return cfg
}

// TestRelabelledSealedSuccessDoesNotRefuse: the path rewrites the status of
// a sealed 200 to 403. The sealed plaintext is a success, so this is a
// protocol error (unreachable), never a refusal, at Start and in renewal.
func TestRelabelledSealedSuccessDoesNotRefuse(t *testing.T) {
	for _, status := range []int{403, 404, 409, 422} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				rw := &rewrite{next: e.srv.Transport(), fn: func(r *http.Response) *http.Response {
					if r.StatusCode != http.StatusOK {
						return r
					}
					r.StatusCode, r.Status = status, http.StatusText(status)
					return r
				}}
				// At Start: begin_session's sealed 200 relabelled.
				rw.armed.Store(true)
				rw.endpoint = wire.Begin
				c := e.newClient(sealedConfig(e), WithRoundTripper(rw))
				err := c.Start(context.Background())
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrUnreachable)
				assert.NotErrorIs(t, err, ErrRefused)
				assert.ErrorIs(t, err, ErrMalformedReply)
				assert.NotEqual(t, Refused, c.Status().State)
				require.NoError(t, c.Close(context.Background()))

				// In renewal: extend_session's sealed 200 relabelled.
				rw.armed.Store(false)
				c = e.newClient(sealedConfig(e), WithRoundTripper(rw))
				require.NoError(t, c.Start(context.Background()))
				t.Cleanup(func() { _ = c.Close(context.Background()) })
				rw.endpoint = wire.Extend
				rw.armed.Store(true)
				_, err = lapse(e, c)
				assert.Equal(t, Grace, c.Status().State)
				assert.ErrorIs(t, err, ErrUnreachable)
				assert.NotErrorIs(t, err, ErrRefused)
			})
		})
	}
}

// TestSealedFailureRefusesAtAnyStatus: a sealed failure in the spec's shape
// is the server's word whether it comes with 200 or a 4xx; the same sealed
// failure under 5xx, 429, 408 or 407 is unreachable.
func TestSealedFailureRefusesAtAnyStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		cat    error
	}{
		{200, ErrRefused}, {400, ErrRefused}, {403, ErrRefused}, {404, ErrRefused}, {409, ErrRefused},
		{500, ErrUnreachable}, {503, ErrUnreachable}, {429, ErrUnreachable}, {408, ErrUnreachable}, {407, ErrUnreachable},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultFail, Count: -1,
					Status: tc.status, Message: "license revoked"})
				c := e.newClient(sealedConfig(e))
				t.Cleanup(func() { _ = c.Close(context.Background()) })
				err := c.Start(context.Background())
				checkCategory(t, tc.cat, err)
				if tc.cat == ErrRefused {
					assert.ErrorIs(t, err, ErrRevoked)
					assert.Equal(t, Refused, c.Status().State)
				} else {
					assert.NotEqual(t, Refused, c.Status().State)
				}
				for _, r := range e.srv.Requests() {
					if r.Endpoint == wire.Begin && tc.status != 500 {
						assert.True(t, r.Sealed, "the failure was sealed")
					}
				}
			})
		})
	}
}

// TestEnvelopeAtAnotherEndpointIsUnreachable: the path posts the client's
// extend_session envelope to /end_session. The server rejects it as
// unauthentic and ends nothing; the client stays in grace, never Refused.
func TestEnvelopeAtAnotherEndpointIsUnreachable(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
			next := e.srv.Transport()
			var armed atomic.Bool
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if armed.Load() && strings.HasSuffix(r.URL.Path, "/"+wire.Extend) {
					r = r.Clone(r.Context())
					r.URL.Path = strings.TrimSuffix(r.URL.Path, wire.Extend) + wire.End
				}
				return next.RoundTrip(r)
			})
			cfg := e.config()
			cfg.InsecureUnsealedReplies = !sealed
			c := e.newClient(cfg, WithRoundTripper(rt))
			require.NoError(t, c.Start(context.Background()))
			t.Cleanup(func() { _ = c.Close(context.Background()) })
			armed.Store(true)
			_, err := lapse(e, c)
			assert.Equal(t, Grace, c.Status().State)
			assert.ErrorIs(t, err, ErrUnreachable)
			assert.NotErrorIs(t, err, ErrRefused)
			var ee *EnvelopeError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, envelope.CodeUnauthentic, ee.Code)
			require.Positive(t, countRejected(e.srv, wire.End))
			assert.Equal(t, e.srv.Count(wire.End), countRejected(e.srv, wire.End), "a moved envelope was processed")
		})
	}
}

func countRejected(s *licensetest.Server, ep string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Endpoint == ep && r.Rejected != "" {
			n++
		}
	}
	return n
}

// TestClockOffsetCorrected: a machine whose clock is an hour slow gets a
// stale-timestamp rejection, learns the offset from the server's time,
// retries once and starts; later calls carry the corrected time.
func TestClockOffsetCorrected(t *testing.T) {
	for _, skew := range []time.Duration{-time.Hour, time.Hour, 3 * time.Hour} {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			e.wall.jump(skew)
			c := e.start(WithRoundTripper(e.srv.Transport()))
			assert.Equal(t, Active, c.Status().State)
			assert.Equal(t, 1, countRejected(e.srv, wire.Register), "one stale rejection, then the corrected retry")
			assert.Zero(t, countRejected(e.srv, wire.Begin), "the offset is kept")
			time.Sleep(30 * time.Minute)
			synctest.Wait()
			assert.Equal(t, Active, c.Status().State)
			assert.Zero(t, countRejected(e.srv, wire.Extend))
		})
	}
}

// TestClockSkewError: a server that keeps rejecting the timestamp (here a
// path that always answers stale) ends in a typed ErrClockSkew, in the
// unreachable category: grace applies and nothing is refused.
func TestClockSkewError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		var stale atomic.Bool
		next := e.srv.Transport()
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if !stale.Load() {
				return next.RoundTrip(r)
			}
			status, body := envelope.RejectionReply(&envelope.Error{Op: "admit", Err: envelope.ErrStale}, time.Now().Add(2*time.Hour))
			return replaceBody(&http.Response{Body: http.NoBody, Request: r}, status, body, nil), nil
		})
		c := e.start(WithRoundTripper(rt))
		stale.Store(true)
		_, err := lapse(e, c)
		assert.Equal(t, Grace, c.Status().State)
		assert.ErrorIs(t, err, ErrClockSkew)
		assert.ErrorIs(t, err, ErrUnreachable)
		assert.NotErrorIs(t, err, ErrRefused)
		var cs *ClockSkewError
		require.ErrorAs(t, err, &cs)
		assert.InDelta(t, float64(2*time.Hour), float64(cs.Offset), float64(2*time.Second))
		assert.Contains(t, err.Error(), "check this machine's clock")
	})
}

// customSealer is a vendor scheme: it owns the request's key field and sees
// every request's endpoint and timestamp.
type customSealer struct {
	inner envelope.Sealer
	seen  chan envelope.Request
}

func (s *customSealer) Seal(req envelope.Request, plaintext []byte) (envelope.Sealed, error) {
	s.seen <- req
	sd, err := s.inner.Seal(req, plaintext)
	sd.Key = "wrapped-content-key"
	return sd, err
}

func (s *customSealer) RepliesAuthenticated() bool { return s.inner.RepliesAuthenticated() }

// TestCustomSealerOwnsKey: WithSealer's scheme chooses the request's "key"
// and is told the endpoint and the (offset-corrected) timestamp.
func TestCustomSealerOwnsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		inner, err := envelope.NewSealer(e.srv.Info().PublicKey, envelope.WithSealedReplies())
		require.NoError(t, err)
		cs := &customSealer{inner: inner, seen: make(chan envelope.Request, 16)}
		keys := make(chan string, 16)
		next := e.srv.Transport()
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			var body wire.Request
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &body)
			keys <- body.Key
			r.Body = io.NopCloser(bytes.NewReader(b))
			return next.RoundTrip(r)
		})
		cfg := e.config()
		cfg.ServerPublicKey = ""
		c := e.newClient(cfg, WithSealer(cs), WithRoundTripper(rt))
		defer c.Close(context.Background())
		err = c.Start(context.Background())
		// licensetest knows only its API key: the custom key is rejected
		// at the envelope level, which is unreachable, not a refusal.
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrUnreachable)
		var ee *EnvelopeError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, envelope.CodeUnauthentic, ee.Code)
		assert.Equal(t, "wrapped-content-key", <-keys)
		req := <-cs.seen
		assert.Equal(t, wire.Register, req.Endpoint)
		assert.Equal(t, e.srv.Info().APIKey, req.APIKey)
		assert.WithinDuration(t, e.wall.now(), req.Time, time.Second)
	})
}
