package license

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/fingerprint"
)

// TestInspectStateStore reads a custom store without changing it, and
// names the component that changed since registration.
func TestInspectStateStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{session: time.Hour, grace: 2 * time.Hour})
	c := e.newClient(e.config())
	insp, err := c.inspectState(context.Background(), e.fp)
	require.NoError(t, err)
	assert.True(t, insp.Store)
	require.Len(t, insp.Slots, 1)
	assert.False(t, insp.Slots[0].Saved)

	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	saved := e.store.Bytes()

	d := e.newClient(e.config())
	insp, err = d.inspectState(context.Background(), e.fp)
	require.NoError(t, err)
	s := insp.Slots[0]
	require.NoError(t, s.Err)
	assert.True(t, s.Saved)
	assert.True(t, s.SessionLive)
	assert.Equal(t, c.Status().InstanceGUID, s.InstanceGUID)
	assert.Equal(t, time.Hour, s.SessionDuration)
	assert.Equal(t, s.Sent.Add(3*time.Hour), s.GraceDeadline)
	assert.False(t, s.HardwareChanged)
	assert.Equal(t, saved, e.store.Bytes(), "InspectState changed the store")

	moved := *e.fp
	moved.MACAddresses.Values = []string{"00:1b:21:ff:ff:ff"}
	moved.HostName.Value = "renamed-box"
	insp, err = d.inspectState(context.Background(), &moved)
	require.NoError(t, err)
	assert.True(t, insp.Slots[0].HardwareChanged)
	assert.Equal(t, []string{fingerprint.NameMACAddresses, fingerprint.NameHostName}, insp.Slots[0].Changed)

	// Other strong components: the state is sealed for other hardware.
	other := *e.fp
	other.Extra = []fingerprint.Component{{Name: fingerprint.NameMachineID, Value: "another", Strength: fingerprint.Strong}}
	insp, err = d.inspectState(context.Background(), &other)
	require.NoError(t, err)
	assert.ErrorIs(t, insp.Slots[0].Err, ErrStateCorrupt)
}

// TestProbeTakesNoSeat: the probe is refused as an unknown token, carries
// the server's time, and leaves the server untouched.
func TestProbeTakesNoSeat(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	e.srv.SetClockSkew(time.Hour)
	c := e.newClient(e.config())
	res := c.probe(context.Background())
	assert.ErrorIs(t, res.Err, ErrRefused)
	assert.InDelta(t, time.Hour.Seconds(), res.Skew.Seconds(), 2)
	assert.False(t, res.ServerTime.IsZero())
	assert.Zero(t, e.srv.SeatsInUse(testProduct, testLicense))
	assert.Empty(t, e.srv.Instances())
	assert.Nil(t, e.store.Bytes(), "Probe saved state")
	require.NoError(t, c.Close(context.Background()))
}
