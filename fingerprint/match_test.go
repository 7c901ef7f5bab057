package fingerprint

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mutate returns a deep copy of fp with f applied to the named component.
func mutate(t *testing.T, fp *Fingerprint, name string, f func(*Component)) *Fingerprint {
	t.Helper()
	cp := *fp
	cp.Extra = append([]Component(nil), fp.Extra...)
	for _, c := range []*Component{&cp.CPUID, &cp.MBSerial, &cp.MACAddresses, &cp.VolumeHash, &cp.HostName, &cp.IPAddress} {
		c.Values = append([]string(nil), c.Values...)
		if c.Name == name {
			f(c)
			return &cp
		}
	}
	for i := range cp.Extra {
		if cp.Extra[i].Name == name {
			f(&cp.Extra[i])
			return &cp
		}
	}
	t.Fatalf("no component %s", name)
	return nil
}

func TestMatch(t *testing.T) {
	t.Parallel()
	base := collectFixture(t, "baremetal")
	base.IPAddress = present(NameIPAddress, "10.0.0.5", "udp connect 192.0.2.1:443", Weak)
	// Compared: cpu 1, mb_serial 0 (counted through board_serial/product_uuid), MACs 2, volume 2,
	// host 0.5, ip 0, product_uuid 3, board_serial 3, machine_id 3: total 14.5.
	const total = 14.5
	set := func(v string) func(*Component) { return func(c *Component) { c.Value = v } }

	tests := []struct {
		name        string
		b           *Fingerprint
		wantScore   float64
		wantChanged []string
	}{
		{"identical", base, 1, nil},
		{"new IP only", mutate(t, base, NameIPAddress, set("10.0.0.9")), 1, []string{NameIPAddress}},
		{"renamed host", mutate(t, base, NameHostName, set("renamed")), (total - 0.5) / total, []string{NameHostName}},
		{"reinstall: new volume and machine-id",
			mutate(t, mutate(t, base, NameVolumeHash, set("x")), NameMachineID, set("y")),
			(total - 5) / total, []string{NameVolumeHash, NameMachineID}},
		{"NIC added: sets overlap",
			mutate(t, base, NameMACAddresses, func(c *Component) { c.Values = append(c.Values, "00:11:22:33:44:55") }),
			1, []string{NameMACAddresses}},
		{"NICs replaced",
			mutate(t, base, NameMACAddresses, func(c *Component) { c.Values = []string{"00:11:22:33:44:55"} }),
			(total - 2) / total, []string{NameMACAddresses}},
		{"board swap: mb_serial changes but counts once",
			mutate(t, mutate(t, base, NameBoardSerial, set("NEW")), NameMBSerial, set("NEW")),
			(total - 3) / total, []string{NameMBSerial, NameBoardSerial}},
		{"missing on one side is not compared",
			mutate(t, base, NameProductUUID, func(c *Component) {
				c.Value, c.Missing = "", &MissingError{Component: NameProductUUID, Reason: NeedsPrivilege}
			}), 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			score, changed := Match(base, tt.b)
			assert.InDelta(t, tt.wantScore, score, 1e-9)
			assert.Equal(t, tt.wantChanged, changed)
			score2, changed2 := Match(tt.b, base)
			assert.InDelta(t, score, score2, 1e-9, "symmetric")
			assert.Equal(t, changed, changed2)
		})
	}
}

func TestMatchMBSerialWhenNoExtras(t *testing.T) {
	t.Parallel()
	// A fingerprint from another SDK may carry only the wire fields: mb_serial then counts.
	a := &Fingerprint{CPUID: present(NameCPUID, "c", "", Weak), MBSerial: present(NameMBSerial, "m", "", Strong)}
	b := &Fingerprint{CPUID: present(NameCPUID, "c", "", Weak), MBSerial: present(NameMBSerial, "other", "", Strong)}
	score, changed := Match(a, b)
	assert.InDelta(t, 1.0/4, score, 1e-9)
	assert.Equal(t, []string{NameMBSerial}, changed)
	assert.Equal(t, 1, a.StrongCount())
}

func TestMatchWeakMACs(t *testing.T) {
	t.Parallel()
	a := collectFixture(t, "placeholder") // only weak MACs and a host placeholder
	b := mutate(t, a, NameMACAddresses, func(c *Component) { c.Values = []string{"02:00:00:00:00:09"} })
	score, changed := Match(a, b)
	assert.Equal(t, 0.0, score, "only the MAC set is comparable and it differs")
	assert.Equal(t, []string{NameMACAddresses}, changed)
	assert.Equal(t, 1.0, Weight(NameCPUID))
	assert.Equal(t, 0.0, Weight(NameIPAddress))
	assert.Equal(t, 0.5, Weight(NameHostName))
}

func TestMatchEdgeCases(t *testing.T) {
	t.Parallel()
	fp := collectFixture(t, "vm")
	score, changed := Match(nil, fp)
	assert.Zero(t, score)
	assert.Nil(t, changed)
	score, changed = Match(&Fingerprint{}, &Fingerprint{})
	assert.Zero(t, score, "nothing comparable")
	assert.Nil(t, changed)

	hashed := collectFixture(t, "vm", WithHashedIdentifiers([]byte("k")))
	score, changed = Match(fp, hashed)
	assert.Zero(t, score, "raw and hashed never match")
	require.NotEmpty(t, changed)
	assert.Contains(t, changed, NameCPUID)
}

// TestMatchSameOnEveryOS scores fixture pairs the way a product and a vendor's server meet them, and
// wants the same exact score on every OS: the server may run Linux while the client runs Windows.
// The pairs come from the public paths, a tree read through WithRoot (as the examples do) and
// want.json decoded as a server decodes a request, so nothing of the host running the test may leak
// in. It once did: below a root, volume_hash came from stat/statfs of the checkout, present on Linux
// and Unsupported on Windows, and ExampleMatch printed 0.96 on one and 0.95 on the other.
func TestMatchSameOnEveryOS(t *testing.T) {
	t.Parallel()
	tree := func(name string) *Fingerprint {
		t.Helper()
		fp, err := Collect(context.Background(), WithRoot(fixtureDir+"/"+name+"/root"), withoutNetwork())
		require.NoError(t, err, "Collect(WithRoot(%s))", name)
		return fp
	}
	decoded := func(name string) *Fingerprint {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(fixtureDir, name, "want.json"))
		require.NoError(t, err)
		var fp Fingerprint
		require.NoError(t, json.Unmarshal(b, &fp), name)
		return &fp
	}
	renamed := func(fp *Fingerprint) *Fingerprint {
		return mutate(t, fp, NameHostName, func(c *Component) { c.Value = "workstation-02" })
	}

	bare := tree("baremetal")
	require.NotNil(t, bare.VolumeHash.Missing, "volume_hash below a root")
	assert.Equal(t, Unsupported, bare.VolumeHash.Missing.Reason, "volume_hash below a root")
	// The whole fingerprint of a tree is the same on every OS, not only its score.
	assert.Equal(t, "f0b5aea2a60a57fdf8996c356c33c8404b01d41418dbab4d4ce2886c2502ea9b", bare.Digest(),
		"Digest() of the baremetal tree")

	tests := []struct {
		name    string
		a, b    *Fingerprint
		score   float64
		changed []string
	}{
		// cpu 1, mb_serial 0 (counted through board_serial and product_uuid), host 0.5, product_uuid 3,
		// board_serial 3, machine_id 3; no MACs without the fixture's device links, no volume below a root.
		{"tree, host renamed", bare, renamed(bare), 10 / 10.5, []string{NameHostName}},
		// The same plus MACs 2 and volume 2.
		{"decoded, host renamed", decoded("baremetal"), renamed(decoded("baremetal")), 14 / 14.5, []string{NameHostName}},
		{"tree against decoded, same machine", bare, decoded("baremetal"), 1, nil},
		{"two machines", bare, tree("vm"), 0,
			[]string{NameCPUID, NameMBSerial, NameHostName, NameProductUUID, NameMachineID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			score, changed := Match(tt.a, tt.b)
			assert.Equal(t, tt.score, score, "Match() score")
			assert.Equal(t, tt.changed, changed, "Match() changed")
		})
	}
}
