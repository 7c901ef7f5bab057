package license

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/license/licensetest"
)

// TestRefusalSurvivesOfflineRestart: after a revocation (the refused extend,
// then the refused fresh begin), Close and an offline restart give no grace:
// the refusal was saved at once with the offline allowance zeroed.
func TestRefusalSurvivesOfflineRestart(t *testing.T) {
	for _, crashInstead := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
			c := e.newClient(sealedConfig(e))
			require.NoError(t, c.Start(context.Background()))
			require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
			_, err := lapse(e, c)
			require.Equal(t, Refused, c.Status().State)
			require.ErrorIs(t, c.Err(), ErrRevoked)
			_ = err
			if crashInstead {
				crash(c)
			} else {
				_ = c.Close(context.Background())
			}

			e.srv.SetDown(true)
			c2 := e.newClient(sealedConfig(e))
			defer c2.Close(context.Background())
			err = c2.Start(context.Background())
			require.Error(t, err, "an offline restart after a refusal must not be usable")
			assert.ErrorIs(t, err, ErrRefused, "the error says why")
			assert.False(t, c2.Valid())
			assert.NotEqual(t, Grace, c2.Status().State)
			assert.Contains(t, err.Error(), "refused this licence")
		})
	}
}

// TestRefusedStartPersists: a refused begin at Start is final too.
func TestRefusedStartPersists(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start()
		require.NoError(t, c.Close(context.Background()))
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		c2 := e.newClient(e.config())
		require.ErrorIs(t, c2.Start(context.Background()), ErrRevoked)
		require.NoError(t, c2.Close(context.Background()))
		e.srv.SetDown(true)
		c3, err := e.tryStart()
		require.ErrorIs(t, err, ErrRefused)
		assert.False(t, c3.Valid())
	})
}

// TestIntermediateRefusalPersistsNothing: a refused extend followed by a
// successful fresh begin keeps the offline allowance; so does end_session's
// 422.
func TestIntermediateRefusalPersistsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.newClient(sealedConfig(e))
		require.NoError(t, c.Start(context.Background()))
		e.srv.Inject(licensetest.Fault{Endpoint: "extend_session", Kind: licensetest.FaultFail, Count: 1, Status: 404, Message: "unknown token"})
		time.Sleep(9 * time.Minute)
		synctest.Wait()
		require.Equal(t, Active, c.Status().State)
		require.Nil(t, c.st.Refusal)
		crash(c)
		e.srv.SetDown(true)
		c2 := e.newClient(sealedConfig(e))
		defer c2.Close(context.Background())
		require.NoError(t, c2.Start(context.Background()))
		assert.True(t, c2.Valid())
	})
}

// TestOnlyAuthenticatedSuccessRestores: after a persisted refusal, a success
// over unsealed replies serves this run but does not restore the offline
// allowance; a sealed success does.
func TestOnlyAuthenticatedSuccessRestores(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
		c := e.newClient(sealedConfig(e))
		require.ErrorIs(t, c.Start(context.Background()), ErrRefused)
		require.NoError(t, c.Close(context.Background()))
		require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Active))

		restart := func(cfg Config) (*Client, error) {
			cl := e.newClient(cfg)
			return cl, cl.Start(context.Background())
		}
		insecure := e.config()
		insecure.InsecureUnsealedReplies = true
		unsealed, err := restart(insecure)
		require.NoError(t, err)
		require.Equal(t, Active, unsealed.Status().State)
		require.NoError(t, unsealed.Close(context.Background()))
		e.srv.SetDown(true)
		offline, err := restart(insecure)
		assert.ErrorIs(t, err, ErrRefused, "an unauthenticated success restored the allowance")
		_ = offline.Close(context.Background())

		e.srv.SetDown(false)
		sealed, err := restart(sealedConfig(e))
		require.NoError(t, err)
		require.NoError(t, sealed.Close(context.Background()))
		e.srv.SetDown(true)
		offline, err = restart(sealedConfig(e))
		require.NoError(t, err)
		assert.True(t, offline.Valid(), "offline time granted")
		_ = offline.Close(context.Background())
	})
}
