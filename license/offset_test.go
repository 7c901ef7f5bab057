package license

import (
	"context"
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
)

// Defences that must not be turned against a paying customer (issue 21,
// sections 1, 3 and 5): a forged stale rejection, a forged end_session
// answer, a lost begin reply, a capacity refusal and a Deprecation header.

// forger is the network path: while armed > 0 it answers requests to
// endpoint ("" for all) itself, without forwarding them, with answer; each
// answer uses one of armed.
type forger struct {
	next     http.RoundTripper
	endpoint string
	armed    atomic.Int32
	answer   func(*http.Request) *http.Response
}

func (f *forger) RoundTrip(r *http.Request) (*http.Response, error) {
	if (f.endpoint == "" || strings.HasSuffix(r.URL.Path, "/"+f.endpoint)) && f.armed.Add(-1) >= 0 {
		return f.answer(r), nil
	}
	return f.next.RoundTrip(r)
}

func plainReply(r *http.Request, status int, body []byte) *http.Response {
	return replaceBody(&http.Response{Body: http.NoBody, Request: r}, status, body, nil)
}

// staleAt answers with a plain stale-timestamp rejection carrying t as the
// server's time: what anyone on the path can send.
func staleAt(t time.Time) func(*http.Request) *http.Response {
	return func(r *http.Request) *http.Response {
		status, body := envelope.RejectionReply(&envelope.Error{Op: "admit", Err: envelope.ErrStale}, t)
		return plainReply(r, status, body)
	}
}

var forgedTimes = []struct {
	name string
	at   func() time.Time
}{
	{"past-1969", func() time.Time { return time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC) }},
	{"far-future", func() time.Time { return time.Now().AddDate(80, 0, 0) }},
	{"future-5y", func() time.Time { return time.Now().AddDate(5, 0, 0) }},
}

// TestForgedStaleRejectionInRenewal: the path answers one extend_session
// with a plain stale rejection in 1969 or far in the future. It costs at
// most one retry: the forged offset is never kept, every later renewal
// reaches the server with the machine's own time, and the client stays
// Active for hours.
func TestForgedStaleRejectionInRenewal(t *testing.T) {
	for _, ft := range forgedTimes {
		t.Run(ft.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				path := &forger{next: e.srv.Transport(), endpoint: wire.Extend, answer: staleAt(ft.at())}
				c := e.start(WithRoundTripper(path))
				path.armed.Store(1)
				extends := e.srv.Count(wire.Extend)
				time.Sleep(3 * time.Hour)
				synctest.Wait()
				assert.Equal(t, Active, c.Status().State)
				assert.Greater(t, e.srv.Count(wire.Extend)-extends, 10, "renewals reach the server")
				assert.LessOrEqual(t, countRejected(e.srv, wire.Extend), 1,
					"the forged offset reached the server more than once")
				c.lock(context.Background())
				assert.Zero(t, c.integ.offset, "a forged offset was kept")
				c.unlock()
			})
		})
	}
}

// TestForgedStaleRejectionAtStart: the same forgery answers the first
// register_instance of Start. Start (retried once at most, by the caller)
// reaches the server and the client is Active.
func TestForgedStaleRejectionAtStart(t *testing.T) {
	for _, ft := range forgedTimes {
		t.Run(ft.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				path := &forger{next: e.srv.Transport(), endpoint: wire.Register, answer: staleAt(ft.at())}
				path.armed.Store(1)
				c := e.newClient(e.config(), WithRoundTripper(path))
				t.Cleanup(func() { _ = c.Close(context.Background()) })
				err := c.Start(context.Background())
				if err != nil {
					assert.ErrorIs(t, err, ErrUnreachable)
					err = c.Start(context.Background())
				}
				require.NoError(t, err, "a forged rejection cost more than one retry")
				assert.Equal(t, Active, c.Status().State)
				time.Sleep(time.Hour)
				synctest.Wait()
				assert.Equal(t, Active, c.Status().State)
			})
		})
	}
}

// TestForgedStaleRejectionShared: in shared mode the path forges one
// rejection for the renewer. The renewer is not stuck, so neither it nor
// the follower that depends on it loses the licence.
func TestForgedStaleRejectionShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, records := t.TempDir(), t.TempDir()
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		path := &forger{next: e.srv.Transport(), endpoint: wire.Extend,
			answer: staleAt(time.Date(1969, 7, 20, 0, 0, 0, 0, time.UTC))}
		r, err := e.startIn(dir, append(sharedIn(records), WithRoundTripper(path))...)
		require.NoError(t, err)
		f, err := e.startIn(dir, sharedIn(records)...)
		require.NoError(t, err)
		require.Equal(t, Renewer, r.Shared().Role)
		require.Equal(t, Follower, f.Shared().Role)
		path.armed.Store(1)
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		assert.Equal(t, Active, r.Status().State)
		assert.Equal(t, Active, f.Status().State, "the stuck renewer held the follower hostage")
	})
}

// TestRequestTimeBounded: an offset that would stamp requests before the
// release year or absurdly far ahead is not used.
func TestRequestTimeBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		c := e.newClient(e.config())
		c.opts.timeFloor = time.Time{} // the release floor
		e.wall.jump(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Sub(e.wall.now()))
		for _, off := range []time.Duration{-60 * 365 * 24 * time.Hour, 200 * 365 * 24 * time.Hour} {
			c.integ.offset = off
			assert.WithinDuration(t, e.wall.now(), c.requestTime(), time.Second)
		}
		c.integ.offset = time.Hour
		assert.WithinDuration(t, e.wall.now().Add(time.Hour), c.requestTime(), time.Second)
	})
}
