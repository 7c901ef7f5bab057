package license

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// The path must not turn a paying customer into a saved refusal by burning
// a seat (issue 21, section 3): a forged end_session answer, a lost begin
// reply, a capacity refusal.

// TestUnsealedEndSessionNotBelieved: in sealed mode the path answers
// end_session at Close with a plain 422. The client does not believe it:
// it keeps the token (the server still holds the seat), the next run ends
// that session and begins, nothing is saved as a refusal, and an offline
// start afterwards still has its grace.
func TestUnsealedEndSessionNotBelieved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
		path := &forger{next: e.srv.Transport(), endpoint: wire.End, answer: func(r *http.Request) *http.Response {
			return plainReply(r, http.StatusUnprocessableEntity, []byte(`{"success":false,"error":"session not found"}`))
		}}
		c := e.newClient(e.config(), WithRoundTripper(path))
		require.NoError(t, c.Start(context.Background()))
		path.armed.Store(1)
		err := c.Close(context.Background())
		assert.ErrorIs(t, err, ErrUnreachable, "a plain 422 was believed")
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
		assert.NotEmpty(t, c.st.Token, "the token was dropped")

		c2 := e.newClient(e.config())
		require.NoError(t, c2.Start(context.Background()), "the next run lost its seat")
		require.NoError(t, c2.Close(context.Background()))
		assert.Nil(t, c2.st.Refusal)

		time.Sleep(time.Minute)
		e.srv.SetDown(true)
		c3 := e.newClient(e.config())
		defer c3.Close(context.Background())
		require.NoError(t, c3.Start(context.Background()))
		assert.True(t, c3.Valid())
	})
}

// TestSealedEndSession422Ends: the server's own sealed 422 still means the
// session is over.
func TestSealedEndSession422Ends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start()
		e.srv.Inject(licensetest.Fault{Endpoint: wire.End, Kind: licensetest.FaultFail, Status: 422, Message: "unknown token"})
		require.NoError(t, c.EndSession(context.Background()))
		assert.Empty(t, c.st.Token)
		assert.Equal(t, Idle, c.Status().State)
	})
}

// TestLostBeginReplyResent: the path lets begin_session through and drops
// the reply. The retried Start resends the same sealed request, which the
// server's replay cache answers with the stored reply: one seat, no
// refusal.
func TestLostBeginReplyResent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultDrop})
		c := e.newClient(e.config())
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		err := c.Start(context.Background())
		require.ErrorIs(t, err, ErrUnreachable)
		require.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))

		require.NoError(t, c.Start(context.Background()), "the retried Start burned a seat")
		assert.Equal(t, Active, c.Status().State)
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))
		var begins, repeats int
		for _, r := range e.srv.Requests() {
			if r.Endpoint == wire.Begin {
				begins++
				if r.Repeat {
					repeats++
				}
			}
		}
		assert.Equal(t, 2, begins)
		assert.Equal(t, 1, repeats, "the retry was not the same request")
		assert.Nil(t, c.st.Refusal)
	})
}

// TestCapacityRefusalNotPersisted: a refusal about capacity (the server's
// "seat limit", a bare "no seats", a vendor's own wording mapped to
// RefusalSeatLimit) refuses now but is never saved as final: the grace of a
// still-live persisted session stays, and the next start asks again.
func TestCapacityRefusalNotPersisted(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		opts      []Option
	}{
		{"seat-limit", "seat limit", nil},
		{"no-seats", "No seats left on this licence", nil},
		{"vendor-capacity", "Concurrent user maximum reached (5/5)", []Option{WithRefusalRules(append(DefaultRefusalRules(),
			RefusalRule{Kind: RefusalSeatLimit, Phrase: "concurrent user maximum"}))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
				c := e.newClient(e.config(), tc.opts...)
				require.NoError(t, c.Start(context.Background()))
				crash(c) // a live session persisted

				e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultFail, Status: 409, Message: tc.msg})
				c2 := e.newClient(e.config(), tc.opts...)
				err := c2.Start(context.Background())
				require.ErrorIs(t, err, ErrRefused, "it refuses now")
				assert.ErrorIs(t, err, ErrSeatLimit)
				assert.False(t, c2.Valid())
				require.NoError(t, c2.Close(context.Background()))

				e.srv.SetDown(true)
				c3 := e.newClient(e.config(), tc.opts...)
				require.NoError(t, c3.Start(context.Background()), "the capacity refusal took the grace away")
				assert.True(t, c3.Valid())
				require.NoError(t, c3.Close(context.Background()))

				e.srv.SetDown(false)
				begins := e.srv.Count(wire.Begin)
				c4 := e.newClient(e.config(), tc.opts...)
				defer c4.Close(context.Background())
				require.NoError(t, c4.Start(context.Background()))
				assert.Equal(t, Active, c4.Status().State)
				assert.Equal(t, begins+1, e.srv.Count(wire.Begin), "the next start asks again")
			})
		})
	}
}

// TestCapacityRefusalWithoutAllowance: with no persisted allowance, the
// server's genuine seat-limit refusal fails Start and saves nothing; once
// the seat is free, the next Start is Active.
func TestCapacityRefusalWithoutAllowance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
		other := e.newClient(e.config(), WithStateStore(&MemoryStateStore{}),
			fixedFingerprint(otherMachine()))
		require.NoError(t, other.Start(context.Background()))

		c := e.newClient(e.config())
		require.ErrorIs(t, c.Start(context.Background()), ErrSeatLimit)
		assert.Nil(t, c.st.Refusal, "a capacity refusal was saved as final")
		require.NoError(t, c.Close(context.Background()))

		require.NoError(t, other.Close(context.Background()))
		c2 := e.newClient(e.config())
		defer c2.Close(context.Background())
		require.NoError(t, c2.Start(context.Background()))
	})
}

// TestCapacityRefusalInRenewal: in renewal, a refused extend and a fresh
// begin refused for capacity stop this run (Refused, Done closes) but save
// nothing: an offline restart still has the grace the last session granted.
func TestCapacityRefusalInRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start()
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Extend, Kind: licensetest.FaultFail, Status: 404, Message: "unknown token"})
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultFail, Status: 409, Message: "seat limit"})
		time.Sleep(9 * time.Minute)
		synctest.Wait()
		require.Equal(t, Refused, c.Status().State)
		assert.ErrorIs(t, c.Err(), ErrSeatLimit)
		assert.Nil(t, c.st.Refusal)
		crash(c)

		e.srv.SetDown(true)
		c2 := e.newClient(e.config())
		defer c2.Close(context.Background())
		require.NoError(t, c2.Start(context.Background()))
		assert.True(t, c2.Valid())
	})
}

// TestLostBeginReplyTooOldToResend: a begin whose reply was lost is resent
// only while the server still remembers it. Later the client seals afresh;
// the lost session still holds the only seat, so the server says "seat
// limit", which is not saved; once that session lapses, Start succeeds.
func TestLostBeginReplyTooOldToResend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour, seats: 1})
		e.srv.Inject(licensetest.Fault{Endpoint: wire.Begin, Kind: licensetest.FaultDrop})
		c := e.newClient(e.config())
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		require.ErrorIs(t, c.Start(context.Background()), ErrUnreachable)

		time.Sleep(resendWithin)
		err := c.Start(context.Background())
		require.ErrorIs(t, err, ErrSeatLimit)
		assert.Nil(t, c.st.Refusal)
		assert.Zero(t, countRejected(e.srv, wire.Begin), "an expired request was resent")

		time.Sleep(10 * time.Minute)
		c2 := e.newClient(e.config())
		defer c2.Close(context.Background())
		require.NoError(t, c2.Start(context.Background()))
	})
}
