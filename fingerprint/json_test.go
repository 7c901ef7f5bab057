package fingerprint

import (
	"encoding/json"
	"errors"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fp := collectFixture(t, name)
			b, err := json.Marshal(fp)
			require.NoError(t, err)
			var back Fingerprint
			require.NoError(t, json.Unmarshal(b, &back))
			b2, err := json.Marshal(&back)
			require.NoError(t, err)
			assert.JSONEq(t, string(b), string(b2))
			assert.Equal(t, fp.Digest(), back.Digest())
			assert.Equal(t, fp.StrongCount(), back.StrongCount())
			assert.Equal(t, fp.Environment, back.Environment)
			score, changed := Match(fp, &back)
			if fp.StrongCount() > 0 || fp.CPUID.Present() {
				assert.Equal(t, 1.0, score)
			}
			assert.Empty(t, changed)
			for _, c := range fp.Components() {
				bc, ok := back.Component(c.Name)
				require.True(t, ok)
				if c.Missing != nil {
					require.NotNil(t, bc.Missing, c.Name)
					assert.Equal(t, c.Missing.Reason, bc.Missing.Reason)
					assert.Equal(t, c.Missing.Error(), bc.Missing.Error(), "same text after a round trip")
				}
			}
		})
	}
}

func TestTextEncodings(t *testing.T) {
	t.Parallel()
	for _, r := range []Reason{NeedsPrivilege, NotPresent, Placeholder, Unsupported, TimedOut} {
		b, err := r.MarshalText()
		require.NoError(t, err)
		var back Reason
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, r, back)
		require.NoError(t, back.UnmarshalText([]byte(r.String())), "the human form is accepted")
		assert.Equal(t, r, back)
	}
	assert.Equal(t, "needs privilege", NeedsPrivilege.String())
	assert.Equal(t, "timed out", TimedOut.String())
	assert.Equal(t, "reason(0)", Reason(0).String())
	_, err := Reason(0).MarshalText()
	assert.Error(t, err)
	var r Reason
	assert.Error(t, r.UnmarshalText([]byte("bogus")))

	for _, s := range []Strength{Weak, Medium, Strong} {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var back Strength
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, s, back)
	}
	assert.Equal(t, "strong", Strong.String())
	_, err = Strength(7).MarshalText()
	assert.Error(t, err)
	var s Strength
	assert.Error(t, s.UnmarshalText([]byte("huge")))

	var fp Fingerprint
	assert.Error(t, json.Unmarshal([]byte(`{"cpu_id":{"missing":{"reason":"nope"}}}`), &fp))
}

func TestMissingError(t *testing.T) {
	t.Parallel()
	cause := &fs.PathError{Op: "open", Path: "/sys/class/dmi/id/board_serial", Err: fs.ErrPermission}
	e := &MissingError{Component: NameBoardSerial, Reason: NeedsPrivilege, Err: cause}
	assert.Equal(t, "fingerprint: board_serial: needs privilege: open /sys/class/dmi/id/board_serial: permission denied", e.Error())
	assert.ErrorIs(t, e, fs.ErrPermission)
	var target *MissingError
	assert.True(t, errors.As(error(e), &target))
	assert.Equal(t, "fingerprint: cpu_id: timed out", (&MissingError{Component: NameCPUID, Reason: TimedOut}).Error())
}

func TestDigest(t *testing.T) {
	t.Parallel()
	fp := collectFixture(t, "baremetal")
	d := fp.Digest()
	assert.Len(t, d, 64)
	withIP := mutate(t, fp, NameIPAddress, func(c *Component) { c.Value, c.Missing = "10.0.0.1", nil })
	assert.Equal(t, d, withIP.Digest(), "ip_address is not part of the digest")
	renamed := mutate(t, fp, NameHostName, func(c *Component) { c.Value = "other" })
	assert.NotEqual(t, d, renamed.Digest())
	reason := mutate(t, fp, NameCPUID, func(c *Component) {
		c.Value, c.Missing = "", &MissingError{Component: NameCPUID, Reason: TimedOut}
	})
	reason2 := mutate(t, fp, NameCPUID, func(c *Component) {
		c.Value, c.Missing = "", &MissingError{Component: NameCPUID, Reason: NotPresent}
	})
	assert.Equal(t, reason.Digest(), reason2.Digest(), "reasons are not digested")
	assert.NotEqual(t, d, reason.Digest())
}
