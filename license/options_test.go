package license

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/internal/diag"
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
