package license

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/fingerprint"
)

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
			[]Option{WithRootCAs(x509.NewCertPool()), WithRoundTripper(airGap{})},
			[]string{"WithRootCAs", "WithRoundTripper"}},
		{"nil root CAs and round tripper", false,
			[]Option{WithRootCAs(nil), WithRoundTripper(airGap{})},
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
