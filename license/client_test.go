package license

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/testkit"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/internal/diag"
	"github.com/licensekit/licensekit-go/license/licensetest"
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
		require.True(t, isDone(c), "Done() not closed after Close")
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
				c, err := e.tryStart()
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
		c, err := e.tryStart()
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

// TestConcurrentCloseIsOneOperation calls Close a second time while the
// first is still ending the session. The second returns only when the
// first has finished, with the same result: the state is Ended, Done is
// closed and the event handler is never called again.
func TestConcurrentCloseIsOneOperation(t *testing.T) {
	for _, tc := range []struct {
		name string
		down bool // end_session fails: both calls return its error
	}{{"session ended", false}, {"end_session fails", true}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, envConfig{session: time.Hour, grace: time.Hour})
				var handled atomic.Int64
				c := e.start(WithEventHandler(func(Event) { handled.Add(1) }))
				e.srv.SetLatency(wire.End, time.Second)
				if tc.down {
					e.srv.Inject(licensetest.Fault{Endpoint: wire.End, Kind: licensetest.FaultFail, Count: 100, Status: 503})
				}

				began := time.Now()
				var wg sync.WaitGroup
				var first error
				wg.Go(func() { first = c.Close(context.Background()) })
				time.Sleep(100 * time.Millisecond)
				second := c.Close(context.Background())
				returned := time.Since(began)

				assert.Equal(t, Ended, c.Status().State, "the second Close returned before the client was closed")
				assert.True(t, isDone(c), "the second Close returned with Done still open")
				n := handled.Load()
				wg.Wait()
				assert.GreaterOrEqual(t, returned, time.Second, "the second Close returned while end_session was in flight")
				assert.Equal(t, first, second, "both calls return the same result")
				if tc.down {
					assert.ErrorIs(t, second, ErrUnreachable)
				} else {
					assert.NoError(t, second)
					assert.Equal(t, 0, e.srv.SeatsInUse(testProduct, testLicense))
				}
				time.Sleep(time.Hour)
				synctest.Wait()
				assert.Equal(t, n, handled.Load(), "the handler ran after Close returned")
				require.NoError(t, nilIfSame(c.Close(context.Background()), second), "a later Close returns the same")
			})
		})
	}
}

// nilIfSame returns nil when got is want, and got otherwise.
func nilIfSame(got, want error) error {
	if got == want {
		return nil
	}
	return got
}

// TestDoneIsTerminal checks Done's contract: like context.Done it closes
// once, on a refusal of a running client or on Close, hands out the same
// channel before and after, and never reopens; Expired, which can recover,
// leaves it open.
func TestDoneIsTerminal(t *testing.T) {
	t.Run("expired and recovered: open throughout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Minute, grace: time.Minute})
			c := e.start()
			done := c.Done()
			e.srv.SetDown(true)
			time.Sleep(3 * time.Minute)
			synctest.Wait()
			require.Equal(t, Expired, c.Status().State)
			assert.False(t, isDone(c), "Expired can recover: Done stays open")
			assert.NoError(t, c.Err())
			e.srv.SetDown(false)
			time.Sleep(expiredCap + time.Second)
			synctest.Wait()
			require.Equal(t, Active, c.Status().State)
			assert.Equal(t, done, c.Done(), "always the same channel")
			assert.False(t, isDone(c))
		})
	})
	t.Run("refused while running: closed for good", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Minute, grace: time.Minute})
			c := e.start()
			done := c.Done()
			require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
			time.Sleep(time.Minute)
			synctest.Wait()
			require.True(t, isDone(c))
			assert.ErrorIs(t, c.Err(), ErrRevoked)
			assert.Equal(t, done, c.Done())
			// Nothing reopens it: not the server relenting, not an explicit
			// call, not Close.
			require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Active))
			assert.ErrorIs(t, c.BeginSession(context.Background()), ErrRevoked)
			require.NoError(t, c.Close(context.Background()))
			assert.Equal(t, done, c.Done())
			assert.ErrorIs(t, c.Err(), ErrRevoked, "Err never changes once set")
		})
	})
	t.Run("refused at Start: open, Start may be retried", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Minute, grace: time.Minute, seats: 1})
			other := e.start()
			c := e.newClient(e.config(), fixedFingerprint(otherMachine()))
			defer c.Close(context.Background())
			require.ErrorIs(t, c.Start(context.Background()), ErrSeatLimit)
			assert.False(t, isDone(c), "a failed Start is reported by its error")
			require.NoError(t, other.Close(context.Background()))
			require.NoError(t, c.Start(context.Background()), "the seat is free now")
			assert.Equal(t, Active, c.Status().State)
		})
	})
	t.Run("Close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: time.Minute, grace: time.Minute})
			c := e.start()
			done := c.Done()
			require.NoError(t, c.Close(context.Background()))
			assert.True(t, isDone(c))
			assert.ErrorIs(t, c.Err(), ErrClosed)
			assert.Equal(t, done, c.Done())
		})
	})
}

// otherMachine is a second machine, distinct from testFingerprint.
func otherMachine() *fingerprint.Fingerprint {
	fp := testFingerprint()
	fp.MBSerial.Value = "board-0002"
	fp.Extra[0].Value = "board-0002"
	fp.Extra[1].Value = "7a2b00e2"
	return fp
}

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

				insp, err := diagnostics{c}.InspectState(context.Background(), e.fp)
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

// A handler that blocks makes the queue overflow: the drops are logged with
// their running count at the 1st, 2nd, 4th … drop, and every event that was
// queued is still delivered, in order, before close returns.
func TestDispatcherLogsDrops(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	var got []EventType
	d := newDispatcher(func(e Event) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		got = append(got, e.Type)
	}, log)
	const extra = 10
	// The first event is taken by the goroutine, which blocks in the
	// handler; the next eventQueueSize fill the queue; the rest are dropped.
	d.emit(Event{Type: EventRenewed})
	<-entered
	for i := 0; i < eventQueueSize+extra; i++ {
		d.emit(Event{Type: EventRenewed})
	}
	close(release)
	d.close()
	assert.Equal(t, int64(extra), d.dropped.Load())
	assert.Equal(t, 1+eventQueueSize, len(got), "every queued event is delivered")
	lines := strings.Count(buf.String(), "event dropped")
	// Drops 1, 2, 4, 8 are logged (and 16 would be, but there are ≤ 11).
	assert.Equal(t, 4, lines, buf.String())
	assert.Contains(t, buf.String(), "dropped_so_far=8")
}

// Settings that exclude each other are rejected by New, naming both, where
// they used to override each other silently.
func TestNewRejectsConflictingOptions(t *testing.T) {
	fpSource := WithFingerprintSource(func(context.Context) (*fingerprint.Fingerprint, error) { return nil, nil })
	classify := WithRefusalClassifier(func(string, string) RefusalKind { return RefusalOther })
	tests := []struct {
		name     string
		stateDir bool
		opts     []Option
		want     []string
	}{
		{"refusal rules and classifier", false,
			[]Option{WithRefusalRules(DefaultRefusalRules()), classify},
			[]string{"WithRefusalRules", "WithRefusalClassifier"}},
		{"fingerprint options and source", false,
			[]Option{WithFingerprintOptions(fingerprint.WithHashedIdentifiers([]byte("salt"))), fpSource},
			[]string{"WithFingerprintOptions", "WithFingerprintSource"}},
		{"StateDir and store", true,
			[]Option{WithStateStore(&MemoryStateStore{})},
			[]string{"StateDir", "WithStateStore"}},
		{"shared session and store", false,
			[]Option{WithSharedSession(SharedSession{}), WithStateStore(&MemoryStateStore{})},
			[]string{"WithSharedSession", "WithStateStore"}},
		{"shared session without StateDir", false,
			[]Option{WithSharedSession(SharedSession{})},
			[]string{"WithSharedSession", "StateDir"}},
		{"slots and store", false,
			[]Option{WithStateSlots(2), WithStateStore(&MemoryStateStore{})},
			[]string{"WithStateSlots", "WithStateStore"}},
		{"slots and shared session", true,
			[]Option{WithStateSlots(2), WithSharedSession(SharedSession{})},
			[]string{"WithStateSlots", "WithSharedSession"}},
		{"slots without StateDir", false,
			[]Option{WithStateSlots(2)},
			[]string{"WithStateSlots", "StateDir"}},
		{"record dir without persistence", false,
			[]Option{WithRollbackRecordDir(t.TempDir())},
			[]string{"WithRollbackRecordDir", "StateDir", "WithStateStore"}},
		{"root CAs and round tripper", false,
			[]Option{WithRootCAs(x509.NewCertPool()), WithRoundTripper(testkit.AirGap{})},
			[]string{"WithRootCAs", "WithRoundTripper"}},
		{"nil root CAs and round tripper", false,
			[]Option{WithRootCAs(nil), WithRoundTripper(testkit.AirGap{})},
			nil}, // a nil pool is no setting: accepted
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			if tc.stateDir {
				cfg.StateDir = t.TempDir()
			}
			_, err := New(cfg, tc.opts...)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

// The default of a setting conflicts with nothing, and nil or zero values
// restore defaults: none of these is a conflict.
func TestNewAcceptsDefaultsAlongsideOtherSettings(t *testing.T) {
	cfg := validConfig()
	cfg.StateDir = t.TempDir()
	_, err := New(cfg, WithStateSlots(0), WithSharedSession(SharedSession{}), WithRefusalRules(nil),
		WithRefusalClassifier(func(string, string) RefusalKind { return RefusalOther }), WithFingerprintOptions())
	require.NoError(t, err)
	_, err = New(validConfig(), WithStateStore(&MemoryStateStore{}), WithRollbackRecordDir(t.TempDir()), WithStateSlots(-1))
	require.NoError(t, err)
	// A later WithStateStore(nil) takes an earlier store back.
	_, err = New(cfg, WithStateStore(&MemoryStateStore{}), WithStateStore(nil), WithStateSlots(2))
	require.NoError(t, err)
}

// New reports every problem at once: each nil option (not only the
// first), the Config's problems and every conflict, in one error that
// matches ErrInvalidConfig.
func TestNewReportsEveryProblemAtOnce(t *testing.T) {
	cfg := validConfig()
	cfg.ProductGUID = ""
	cfg.StateDir = t.TempDir()
	_, err := New(cfg, nil, WithStateStore(&MemoryStateStore{}), nil,
		WithRefusalRules(DefaultRefusalRules()), WithRefusalClassifier(func(string, string) RefusalKind { return RefusalOther }))
	require.ErrorIs(t, err, ErrInvalidConfig)
	for _, w := range []string{
		"option 1 of 5 is nil", "option 3 of 5 is nil", "ProductGUID is empty",
		"StateDir and WithStateStore", "WithRefusalRules and WithRefusalClassifier",
	} {
		assert.ErrorContains(t, err, w)
	}
	var joined interface{ Unwrap() []error }
	require.True(t, errors.As(err, &joined))
	assert.Len(t, joined.Unwrap(), 5)
}

// A custom sealer that does not authenticate replies is reported with the
// rest, not after them.
func TestNewReportsSealerWithOtherProblems(t *testing.T) {
	cfg := validConfig()
	cfg.LicenseKey = ""
	_, err := New(cfg, WithSealer(bareSealer{}))
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.ErrorContains(t, err, "LicenseKey is empty")
	assert.ErrorContains(t, err, "RepliesAuthenticated")
}

// bareSealer is a sealer whose replies are not authenticated; New calls
// nothing else of it.
type bareSealer struct{ envelope.Sealer }

func (bareSealer) RepliesAuthenticated() bool { return false }

// Test hooks set by separate WithTestHooks calls add up: a helper that sets
// the wall clock and another that sets the jitter both take effect.
func TestWithTestHooksAddUp(t *testing.T) {
	wall := func() time.Time { return time.Unix(1e9, 0) }
	o, err := newOptions(new(validConfig()), []Option{
		WithTestHooks(TestHooks{WallClock: wall}), WithTestHooks(TestHooks{Rand: func() float64 { return 0.25 }}),
		WithTestHooks(TestHooks{}),
	})
	require.NoError(t, err)
	require.NotNil(t, o.wall)
	assert.Equal(t, wall(), o.wall())
	assert.Equal(t, 0.25, o.rnd())
}

// WithStateSlots' zero value means the default, as every other zero value
// in the configuration does; a positive value is taken as is.
func TestWithStateSlotsZeroIsDefault(t *testing.T) {
	for n, want := range map[int]int{0: defaultSlots, -3: defaultSlots, 1: 1, 9: 9} {
		cfg := validConfig()
		cfg.StateDir = "/state"
		o, err := newOptions(&cfg, []Option{WithStateSlots(n)})
		require.NoError(t, err)
		assert.Equal(t, want, o.slots, "WithStateSlots(%d)", n)
	}
}

// Status is a snapshot value: its methods have value receivers, so they
// can be called on the result of Client.Status directly.
func TestStatusMethodsOnValue(t *testing.T) {
	c, err := New(validConfig())
	require.NoError(t, err)
	assert.False(t, c.Status().Valid())
	assert.False(t, c.Status().HasFeature("x"))
}

// Diagnostics hands its surface out only for a key made inside this module
// (diag.NewKey): the zero key, all another module can make, gets nil.
func TestDiagnosticsNeedsKey(t *testing.T) {
	c, err := New(validConfig())
	require.NoError(t, err)
	assert.Nil(t, c.Diagnostics(diag.Key{}))
	d := c.Diagnostics(diag.NewKey())
	require.NotNil(t, d)
	insp, err := d.InspectState(context.Background(), &fingerprint.Fingerprint{})
	require.NoError(t, err)
	assert.Empty(t, insp.Slots, "no StateDir, no store: nothing saved")
}

// validConfig is a Config that New accepts, for tests of the options.
func validConfig() Config {
	return Config{ServerURL: "https://licensing.example.com/api/v2", APIKey: "ak",
		SharedSecret: []byte("0123456789abcdef0123456789abcdef"), ProductGUID: "p", LicenseKey: "K"}
}

// TestServerURLValidation: New rejects a ServerURL that would only fail at
// the first request (a trailing space ends in a 404), and keeps a good one
// exactly, path included.
func TestServerURLValidation(t *testing.T) {
	t.Parallel()
	cfg := func(u string) Config {
		return Config{ServerURL: u, APIKey: "k", ProductGUID: "p", LicenseKey: "l", SharedSecret: make([]byte, 32)}
	}
	for _, bad := range []string{
		"https://licensing.example.com/api/v2 ",
		" https://licensing.example.com/api/v2",
		"https://licensing.example.com/api/v2\n",
		"https://licensing.example.com/api/v2\t",
		"https://licensing.example.com/api\u00a0/v2",
		"https://licensing.example.com/api/v2\u200b",
		"licensing.example.com/api/v2",
		"ftp://licensing.example.com/api/v2",
		"https:///api/v2",
		"https:licensing.example.com",
		"https://licensing.example.com:/api/v2",
		"https://licensing.example.com/api/v2?",
		"https://licensing.example.com/api/v2#top",
		"https://u:p@licensing.example.com/api/v2",
	} {
		_, err := New(cfg(bad))
		assert.ErrorIs(t, err, ErrInvalidConfig, "New(ServerURL %q)", bad)
		if err != nil {
			assert.Contains(t, err.Error(), "ServerURL", "New(ServerURL %q)", bad)
		}
	}
	for _, good := range []string{
		"https://licensing.example.com/api/v2",
		"http://127.0.0.1:8080/api/v2",
		"https://[::1]:8443/licensing/api/v2/",
		"https://licensing.example.com",
	} {
		c, err := New(cfg(good))
		require.NoError(t, err, "New(ServerURL %q)", good)
		assert.Equal(t, good, c.cfg.ServerURL, "the URL is kept as given")
	}
}

// TestClientFieldsNameTheirGuard keeps Client a few owned parts: at most 20
// fields, each with a comment that names what protects it (a lock, an
// atomic, or "immutable after New").
func TestClientFieldsNameTheirGuard(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "client.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var fields *ast.FieldList
	ast.Inspect(f, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok && ts.Name.Name == "Client" {
			fields = ts.Type.(*ast.StructType).Fields
		}
		return fields == nil
	})
	if fields == nil {
		t.Fatal("no Client struct in client.go")
	}
	n := 0
	for _, fl := range fields.List {
		n += max(1, len(fl.Names))
		text := fl.Doc.Text() + fl.Comment.Text()
		if !strings.Contains(text, "guarded by") && !strings.Contains(text, "immutable after New") &&
			!strings.Contains(text, "atomic") {
			t.Errorf("Client field %v names no guard: %q", fl.Names, text)
		}
	}
	if n > 20 {
		t.Errorf("Client has %d fields; want at most 20", n)
	}
}

// TestRequestBodyAsJSONMarshal checks that the request body written
// directly is json.Marshal's, byte for byte, for base64 values and for
// values that need escaping.
func TestRequestBodyAsJSONMarshal(t *testing.T) {
	t.Parallel()
	for _, kv := range [][2]string{
		{"ak_live_3vN8pQ2wZ7kR4mT9", "AQIDBA+/=="}, {"", ""}, {"key-with.dots_", "a-b_c"},
		{"<script>", "x"}, {"k", "a\"b\\c"}, {"ké", "\u2028"}, {"k", "\x00"}, {"a b", "&"},
	} {
		want, err := json.Marshal(wire.Request{Key: kv[0], Data: kv[1]})
		if err != nil {
			t.Fatal(err)
		}
		got, err := requestBody(kv[0], kv[1])
		if err != nil || string(got) != string(want) {
			t.Errorf("requestBody(%q, %q) = %s, %v; want %s", kv[0], kv[1], got, err, want)
		}
	}
}

// TestSleepForProperties checks the loop's sleep over random inputs: at
// least 1 ms, at most maxSleep, never past the next attempt, save or
// deadline ahead (unless that is under 1 ms away).
func TestSleepForProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	d := func(max time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(2*max))) - max }
	for range 100000 {
		try, save := d(2*time.Minute), d(2*time.Minute)
		session, grace := time.Duration(rng.Int64N(int64(time.Hour))), time.Duration(rng.Int64N(int64(time.Hour)))
		elapsed := d(2 * time.Hour)
		got := sleepFor(try, save, elapsed, session, grace)
		bound := min(try, save, maxSleep)
		if elapsed >= 0 {
			for _, dl := range []time.Duration{session, session + grace} {
				if left := dl - elapsed; left > 0 {
					bound = min(bound, left)
				}
			}
		}
		if got < time.Millisecond || got > maxSleep || got > max(bound, time.Millisecond) {
			t.Fatalf("sleepFor(%v, %v, %v, %v, %v) = %v; want in [1ms, %v]", try, save, elapsed, session, grace, got, max(bound, time.Millisecond))
		}
	}
}
