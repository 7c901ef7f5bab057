package license

import (
	"context"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRefusedStaysRefusedAtClose: Refused is terminal, as the README's
// diagram draws it: Close ends the client but keeps the server's verdict
// in Status, emits no Refused -> Ended change, and still reports Ended.
func TestRefusedStaysRefusedAtClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start()
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		<-c.Done()
		require.Equal(t, Refused, c.Status().State)
		require.NoError(t, c.Close(context.Background()))
		st := c.Status()
		assert.Equal(t, Refused, st.State, "Close turned the server's refusal into Ended")
		assert.ErrorIs(t, st.Reason, ErrRevoked)
		assert.Equal(t, []State{Active, Refused}, e.rec.states())
		assert.Equal(t, 1, e.rec.count(EventEnded))
	})
}

// TestOfflineRestartAfterClose: an offline restart resumes the deadlines the
// server last granted, whether or not the previous run's end_session
// reached the server: Active until sent + D, then Grace. The saved state
// says whether a session is still open on the server (what the doctor's
// state check reports), and the server agrees.
func TestOfflineRestartAfterClose(t *testing.T) {
	for _, tc := range []struct {
		name       string
		endReached bool
	}{{"end_session reached the server", true}, {"end_session did not reach the server", false}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
				c := e.newClient(e.config())
				require.NoError(t, c.Start(context.Background()))
				if !tc.endReached {
					e.srv.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultFail, Count: 1000, Status: 503})
				}
				_ = c.Close(context.Background())
				e.srv.Inject(licensetest.Fault{Endpoint: "", Kind: licensetest.FaultFail, Count: 1000, Status: 503})

				insp, err := c.inspectState(context.Background(), e.fp)
				require.NoError(t, err)
				require.Len(t, insp.Slots, 1)
				saved := insp.Slots[0]
				assert.Equal(t, !tc.endReached, saved.SessionLive, "the saved state's open session")
				assert.Equal(t, 1-boolToInt(tc.endReached), e.srv.SeatsInUse(testProduct, testLicense), "the server's open session")

				next := e.newClient(e.config())
				require.NoError(t, next.Start(context.Background()))
				t.Cleanup(func() { _ = next.Close(context.Background()) })
				assert.Equal(t, Active, next.Status().State)
				assert.Equal(t, saved.SessionExpiry, next.Status().SessionExpiry, "an offline restart resumes the last deadlines")
				time.Sleep(time.Until(saved.SessionExpiry) + time.Second)
				assert.Equal(t, Grace, next.Status().State)
			})
		})
	}
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
