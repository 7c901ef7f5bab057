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
