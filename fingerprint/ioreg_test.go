package fingerprint

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseIoreg(t *testing.T) {
	t.Parallel()
	out, err := os.ReadFile(fixtureDir + "/ioreg/macbook.txt")
	require.NoError(t, err)
	props := parseIoreg(out)
	assert.Equal(t, "C02ZK1ABMD6T", props["IOPlatformSerialNumber"], "first occurrence wins")
	assert.Equal(t, "7C1A9E2B-3D4F-5A6B-8C7D-9E0F1A2B3C4D", props["IOPlatformUUID"])
	assert.Equal(t, "Apple Inc.", props["manufacturer"], "data holding a string")
	assert.NotContains(t, props, "serial-number", "hex data is skipped")
	assert.NotContains(t, props, "compatible", "string lists are skipped")

	res := ioregResult(props)
	require.Len(t, res.comps, 3)
	assert.Equal(t, "C02ZK1ABMD6T", res.comps[0].Value, "mb_serial is the platform serial")
	assert.Equal(t, "ioreg IOPlatformSerialNumber", res.comps[0].Source)
	assert.Equal(t, "7c1a9e2b-3d4f-5a6b-8c7d-9e0f1a2b3c4d", res.comps[1].Value)
	assert.Equal(t, Environment{}, res.env.environment())

	out, err = os.ReadFile(fixtureDir + "/ioreg/vmware.txt")
	require.NoError(t, err)
	res = ioregResult(parseIoreg(out))
	assert.Equal(t, Environment{Hypervisor: true, HypervisorVendor: "VMware"}, res.env.environment())

	res = ioregResult(parseIoreg(nil))
	assert.Equal(t, NotPresent, reasonOf(res.comps[0]))
	assert.Equal(t, NotPresent, reasonOf(res.comps[1]))
}

func FuzzParseIoreg(f *testing.F) {
	for _, n := range []string{"macbook.txt", "vmware.txt"} {
		b, err := os.ReadFile(fixtureDir + "/ioreg/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = ioregResult(parseIoreg(b))
	})
}
