package license

import (
	"context"
	"errors"
	"fmt"
	"github.com/licensekit/licensekit-go/license/licensetest"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/wire"
)

func TestNewValidatesEverythingAtOnce(t *testing.T) {
	t.Parallel()
	_, err := New(Config{ServerURL: "ftp://x", SessionDuration: -time.Second})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	msg := err.Error()
	for _, want := range []string{"ServerURL", "APIKey", "ProductGUID", "LicenseKey", "ServerPublicKey or SharedSecret", "SessionDuration"} {
		assert.Contains(t, msg, want)
	}
	assert.True(t, strings.HasPrefix(msg, "license: "), "message %q must start with the package name", msg)

	_, err = New(Config{ServerURL: "https://h/api/v2", APIKey: "k", ProductGUID: "p", LicenseKey: "l",
		ServerPublicKey: "not a key"})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = New(Config{ServerURL: "https://h/api/v2", APIKey: "k", ProductGUID: "p", LicenseKey: "l",
		SharedSecret: []byte("short")})
	assert.ErrorContains(t, err, "at least 32 bytes")
	_, err = New(Config{ServerURL: "https://user:pw@h/api/v2?x=1", APIKey: "k", ProductGUID: "p", LicenseKey: "l",
		SharedSecret: make([]byte, 32)})
	assert.ErrorContains(t, err, "credentials")
}

func TestConfigRedactsSecrets(t *testing.T) {
	t.Parallel()
	cfg := Config{ServerURL: "https://u:pw@h/api/v2?k=SECRETQ", APIKey: "APIKEY-123", LicenseKey: "LICKEY-456",
		SharedSecret: []byte("SHARED-SECRET-789"), ProductGUID: "p"}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("cfg", "config", cfg)
	out := b.String() + fmt.Sprint(cfg) + fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)
	for _, secret := range []string{"APIKEY-123", "LICKEY-456", "SHARED-SECRET-789", "pw", "SECRETQ"} {
		assert.NotContains(t, out, secret)
	}
	assert.Contains(t, out, "[redacted]")
}

func TestNewDoesNoIOAndStartsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		c := e.newClient(e.config())
		synctest.Wait()
		assert.Equal(t, 0, len(e.srv.Requests()))
		st := c.Status()
		assert.Equal(t, Idle, st.State)
		assert.False(t, c.Valid())
		require.NoError(t, c.Close(context.Background()))
		require.NoError(t, c.Close(context.Background()), "Close is idempotent")
		assert.ErrorIs(t, c.Start(context.Background()), ErrClosed)
	})
}

func TestStartStatusFeaturesClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: time.Hour, grace: 24 * time.Hour, features: "export, pro"})
		c := e.start()
		st := c.Status()
		assert.Equal(t, Active, st.State)
		assert.NoError(t, st.Reason)
		assert.True(t, c.Valid())
		assert.True(t, c.HasFeature("pro"))
		assert.False(t, c.HasFeature("enterprise"))
		assert.Equal(t, []string{"export", "pro"}, st.FeatureSet)
		assert.Equal(t, time.Hour, st.SessionDuration)
		assert.Equal(t, 24*time.Hour, st.GracePeriod)
		assert.Equal(t, time.Now().Add(time.Hour), st.SessionExpiry)
		assert.Equal(t, st.SessionExpiry.Add(24*time.Hour), st.GraceDeadline)
		assert.NotEmpty(t, st.InstanceGUID)
		assert.False(t, st.FirstRegisteredAt.IsZero())
		assert.Equal(t, 1, e.srv.Count(wire.Register))
		assert.Equal(t, 1, e.srv.Count(wire.Begin))
		assert.Equal(t, 1, e.srv.SeatsInUse(testProduct, testLicense))

		require.NoError(t, c.Close(context.Background()))
		assert.Equal(t, Ended, c.Status().State)
		assert.Equal(t, 1, e.srv.Count(wire.End))
		assert.Equal(t, 0, e.srv.SeatsInUse(testProduct, testLicense))
		select {
		case <-c.Done():
		default:
			t.Fatal("Done() not closed after Close")
		}
		assert.ErrorIs(t, c.Err(), ErrClosed)
		assert.Equal(t, []State{Active, Ended}, e.rec.states())
		all := e.rec.all()
		assert.Equal(t, EventEnded, all[len(all)-1].Type)
	})
}

func TestStartRefused(t *testing.T) {
	cases := []struct {
		name  string
		setup func(e *env)
		want  error
	}{
		{"unknown licence", func(e *env) { e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked) }, ErrRevoked},
		{"expired licence", func(e *env) { _ = e.srv.SetLicenseState(testProduct, testLicense, licensetest.Expired) }, ErrExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{})
				tc.setup(e)
				c := e.newClient(e.config())
				defer c.Close(context.Background())
				err := c.Start(context.Background())
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrRefused)
				assert.ErrorIs(t, err, tc.want)
				assert.NotErrorIs(t, err, ErrUnreachable)
				var api *APIError
				require.ErrorAs(t, err, &api)
				assert.Equal(t, 403, api.Status)
				assert.Equal(t, Refused, c.Status().State)
			})
		})
	}
}

func TestSeatLimitAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{seats: 1})
		e.start()
		other := e.newClient(e.config(), WithStateStore(&MemoryStateStore{}))
		defer other.Close(context.Background())
		err := other.Start(context.Background())
		assert.ErrorIs(t, err, ErrSeatLimit)
		assert.ErrorIs(t, err, ErrRefused)
	})
}

func TestStartUnreachableWithoutState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		e.srv.SetDown(true)
		c := e.newClient(e.config())
		defer c.Close(context.Background())
		err := c.Start(context.Background())
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrUnreachable)
		assert.NotErrorIs(t, err, ErrRefused)
		assert.Equal(t, Idle, c.Status().State)
		assert.False(t, c.Valid())

		// A failed Start may be retried.
		e.srv.SetDown(false)
		require.NoError(t, c.Start(context.Background()))
		assert.Equal(t, Active, c.Status().State)
	})
}

func TestStatusDoesNotAllocate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{features: "a,b"})
		c := e.start(WithTestHooks(TestHooks{}))
		allocs := testing.AllocsPerRun(100, func() {
			s := c.Status()
			if !s.Valid() || !s.HasFeature("a") {
				panic("unexpected status")
			}
		})
		assert.Zero(t, allocs)
	})
}

func TestManualLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: time.Hour, features: "pro"})
		c := e.newClient(e.config())
		defer c.Close(context.Background())
		ctx := context.Background()

		assert.ErrorIs(t, c.ExtendSession(ctx), ErrNotStarted)
		reg, err := c.Register(ctx)
		require.NoError(t, err)
		assert.NotEmpty(t, reg.InstanceGUID)
		assert.Equal(t, time.Hour, reg.SessionDuration)
		again, err := c.Register(ctx)
		require.NoError(t, err)
		assert.Equal(t, reg.InstanceGUID, again.InstanceGUID, "register_instance is idempotent")

		require.NoError(t, c.BeginSession(ctx))
		assert.Equal(t, Active, c.Status().State)
		assert.True(t, c.HasFeature("pro"))
		time.Sleep(30 * time.Minute)
		require.NoError(t, c.ExtendSession(ctx))
		assert.Equal(t, time.Now().Add(time.Hour), c.Status().SessionExpiry)
		require.NoError(t, c.EndSession(ctx))
		assert.Equal(t, 0, e.srv.SeatsInUse(testProduct, testLicense))
		assert.Equal(t, Idle, c.Status().State, "an ended session is no longer Active")
		assert.False(t, c.Valid())
		assert.Equal(t, 2, e.srv.Count(wire.Register))
	})
}

func TestAPIErrorCategories(t *testing.T) {
	t.Parallel()
	rules := DefaultRefusalRules()
	cases := []struct {
		msg  string
		want []error
		not  []error
	}{
		{"license revoked by vendor", []error{ErrRefused, ErrRevoked}, []error{ErrSeatLimit, ErrExpired, ErrUnreachable}},
		{"seat limit reached (1 of 1)", []error{ErrRefused, ErrSeatLimit}, []error{ErrRevoked}},
		{"license expired", []error{ErrRefused, ErrExpired}, []error{ErrRevoked}},
		{"license expired; session not created", []error{ErrRefused, ErrExpired}, []error{ErrRevoked}},
		{"seatbelt required", []error{ErrRefused}, []error{ErrSeatLimit}},
		{"unknown token or session lapsed", []error{ErrRefused}, []error{ErrExpired, ErrRevoked}},
		{"session expired", []error{ErrRefused}, []error{ErrExpired}},
	}
	for _, tc := range cases {
		err := error(&APIError{Endpoint: "begin_session", Status: 403, Message: tc.msg,
			Kind: rules.Classify("begin_session", tc.msg)})
		for _, w := range tc.want {
			assert.True(t, errors.Is(err, w), "%q should match %v", tc.msg, w)
		}
		for _, n := range tc.not {
			assert.False(t, errors.Is(err, n), "%q should not match %v", tc.msg, n)
		}
	}
}

func TestCloseCancelsStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{})
		e.srv.SetLatency("", time.Hour)
		c := e.newClient(e.config(), WithRetry(Retry{AttemptTimeout: 2 * time.Hour}))
		started := make(chan error)
		go func() { started <- c.Start(context.Background()) }()
		time.Sleep(time.Second)
		synctest.Wait()
		before := time.Now()
		require.NoError(t, c.Close(context.Background()))
		assert.ErrorIs(t, <-started, ErrClosed)
		assert.Less(t, time.Since(before), time.Second, "Close cancels a Start in progress")
		assert.Equal(t, Ended, c.Status().State)
	})
}

// TestExplicitCallInBackoff checks that an explicit call waiting out its
// retries neither freezes the renewal loop (the lock is a channel, durable
// under synctest) nor delays Close, which cancels it.
func TestExplicitCallInBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
		c := e.start(WithRetry(Retry{Attempts: 3, MinBackoff: 2 * time.Minute, MaxBackoff: 2 * time.Minute}))
		e.srv.SetDown(true)
		done := make(chan error)
		go func() { done <- c.ExtendSession(context.Background()) }()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		before := time.Now()
		err := c.Close(context.Background())
		assert.ErrorIs(t, err, ErrUnreachable, "end_session cannot reach the server")
		assert.Less(t, time.Since(before), time.Second)
		assert.Error(t, <-done)
		assert.ErrorIs(t, c.ExtendSession(context.Background()), ErrClosed)
	})
}
