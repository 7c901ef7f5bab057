package fingerprint

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHMACKnownAnswer(t *testing.T) {
	t.Parallel()
	m := hmac.New(sha256.New, []byte("product-key"))
	m.Write([]byte("fp1\x00cpu_id\x00GenuineIntel/000906ea/x"))
	assert.Equal(t, hex.EncodeToString(m.Sum(nil)), hmacHex([]byte("product-key"), "cpu_id", "GenuineIntel/000906ea/x"))
	assert.NotEqual(t, hmacHex([]byte("k"), "board_serial", "X"), hmacHex([]byte("k"), "product_uuid", "X"),
		"the name is part of the input")
}

func TestHashedIdentifiers(t *testing.T) {
	t.Parallel()
	key := []byte("vendor-a product key")
	raw := collectFixture(t, "baremetal")
	hashed := collectFixture(t, "baremetal", WithHashedIdentifiers(key))
	assert.True(t, hashed.Hashed)
	assert.False(t, raw.Hashed)

	rawJSON, err := json.Marshal(hashed)
	require.NoError(t, err)
	for _, rc := range raw.Components() {
		hc, ok := hashed.Component(rc.Name)
		require.True(t, ok)
		assert.Equal(t, rc.Source, hc.Source)
		assert.Equal(t, rc.Missing, hc.Missing, "reasons are kept")
		if rc.Value != "" {
			assert.Equal(t, hmacHex(key, rc.Name, rc.Value), hc.Value, rc.Name)
			assert.Len(t, hc.Value, 64)
			assert.NotContains(t, string(rawJSON), rc.Value, "raw %s leaks", rc.Name)
		}
		if len(rc.Values) > 0 {
			want := make([]string, len(rc.Values))
			for i, v := range rc.Values {
				want[i] = hmacHex(key, rc.Name, v)
				assert.NotContains(t, string(rawJSON), v)
			}
			slices.Sort(want)
			assert.Equal(t, want, hc.Values, "each MAC hashed on its own, sorted")
		}
	}

	// Stable for one product, uncorrelatable across products.
	again := collectFixture(t, "baremetal", WithHashedIdentifiers(key))
	score, changed := Match(hashed, again)
	assert.Equal(t, 1.0, score)
	assert.Empty(t, changed)
	assert.Equal(t, hashed.Digest(), again.Digest())
	other := collectFixture(t, "baremetal", WithHashedIdentifiers([]byte("vendor-b product key")))
	score, _ = Match(hashed, other)
	assert.Zero(t, score)
	assert.NotEqual(t, hashed.Digest(), raw.Digest())

	// A NIC added after registration still overlaps in hashed form.
	grown := mutate(t, hashed, NameMACAddresses, func(c *Component) {
		c.Values = append(c.Values, hmacHex(key, NameMACAddresses, "00:11:22:33:44:55"))
	})
	score, _ = Match(hashed, grown)
	assert.Equal(t, 1.0, score)

	// The key is copied.
	k := []byte("mutable")
	opt := WithHashedIdentifiers(k)
	k[0] = 'X'
	o := newOptions([]Option{opt})
	assert.Equal(t, "mutable", string(o.key))
}
