package license

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/license/licensetest"
)

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
