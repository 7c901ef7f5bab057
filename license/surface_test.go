package license

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/license/internal/diag"
)

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
