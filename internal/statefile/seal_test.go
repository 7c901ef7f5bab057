package statefile

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/statefile/v1.json")

// goldenPath is the compatibility vector: state sealed by this version must
// keep opening, and DeriveKey must keep giving the same key, forever.
var goldenPath = filepath.Join("..", "..", "testdata", "statefile", "v1.json")

type golden struct {
	Comment   string   `json:"comment"`
	Parts     []string `json:"derive_parts"`
	Key       string   `json:"derived_key_hex"`
	AAD       string   `json:"aad"`
	Plaintext string   `json:"plaintext"`
	Nonce     string   `json:"nonce_hex"`
	Blob      string   `json:"blob_hex"`
}

// sealWithNonce builds a version 1 container with a chosen nonce, the way
// Seal does with a random one. Only for writing the golden vector.
func sealWithNonce(t *testing.T, key, nonce, aad, plaintext []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(t, err)
	out := append([]byte(magic), version)
	out = append(out, nonce...)
	return gcm.Seal(out, nonce, plaintext, append([]byte(magic+"\x01"), aad...))
}

func loadGolden(t testing.TB) (g golden, key, blob []byte) {
	t.Helper()
	b, err := os.ReadFile(goldenPath)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &g))
	key, err = hex.DecodeString(g.Key)
	require.NoError(t, err)
	blob, err = hex.DecodeString(g.Blob)
	require.NoError(t, err)
	return g, key, blob
}

func TestGoldenVector(t *testing.T) {
	if *update {
		g := golden{
			Comment:   "statefile v1 compatibility vector: DeriveKey(derive_parts) = derived_key; Open(derived_key, aad, blob) = plaintext. Never change it.",
			Parts:     []string{"product-guid-0001", "LICENCE-KEY-EXAMPLE", "fp1:machine-digest"},
			AAD:       "licensekit state/product-guid-0001",
			Plaintext: `{"instance_guid":"i-1","token":"t-1"}`,
			Nonce:     "000102030405060708090a0b",
		}
		var parts [][]byte
		for _, p := range g.Parts {
			parts = append(parts, []byte(p))
		}
		key := DeriveKey(parts...)
		nonce, _ := hex.DecodeString(g.Nonce)
		g.Key = hex.EncodeToString(key)
		g.Blob = hex.EncodeToString(sealWithNonce(t, key, nonce, []byte(g.AAD), []byte(g.Plaintext)))
		b, err := json.MarshalIndent(g, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(goldenPath, append(b, '\n'), 0o644))
	}
	g, key, blob := loadGolden(t)
	var parts [][]byte
	for _, p := range g.Parts {
		parts = append(parts, []byte(p))
	}
	assert.Equal(t, g.Key, hex.EncodeToString(DeriveKey(parts...)), "DeriveKey(golden parts)")
	got, err := Open(key, []byte(g.AAD), blob)
	require.NoError(t, err, "Open(golden)")
	assert.Equal(t, g.Plaintext, string(got))
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealRoundTrip(t *testing.T) {
	t.Parallel()
	key := testKey(1)
	for _, tc := range []struct {
		name      string
		aad, data []byte
	}{
		{"empty", nil, nil},
		{"no aad", nil, []byte("state")},
		{"aad", []byte("ctx"), []byte("state")},
		{"large", []byte("ctx"), bytes.Repeat([]byte("x"), 64<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			blob, err := Seal(key, tc.aad, tc.data)
			require.NoError(t, err)
			require.Len(t, blob, len(tc.data)+Overhead)
			assert.Equal(t, []byte("LKST\x01"), blob[:5], "header")
			again, err := Seal(key, tc.aad, tc.data)
			require.NoError(t, err)
			assert.NotEqual(t, blob, again, "two seals share a nonce")
			got, err := Open(key, tc.aad, blob)
			require.NoError(t, err)
			assert.NotNil(t, got)
			assert.True(t, bytes.Equal(tc.data, got), "Open(Seal(x)) != x")
		})
	}
}

// requireCorrupt checks Open(key, aad, blob) fails with ErrCorrupt and
// leaks neither plaintext nor key.
func requireCorrupt(t *testing.T, key, aad, blob []byte, what string) {
	t.Helper()
	got, err := Open(key, aad, blob)
	require.ErrorIs(t, err, ErrCorrupt, "Open(%s)", what)
	require.Nil(t, got, "Open(%s) returned plaintext", what)
	var se *Error
	require.ErrorAs(t, err, &se)
	require.Equal(t, "open", se.Op)
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	key, aad, secret := testKey(2), []byte("product"), []byte("secret-token-value")
	blob, err := Seal(key, aad, secret)
	require.NoError(t, err)

	t.Run("every byte flipped", func(t *testing.T) {
		t.Parallel()
		for i := range blob {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				b := bytes.Clone(blob)
				b[i] ^= mask
				requireCorrupt(t, key, aad, b, "blob with byte "+strconv.Itoa(i)+" flipped")
			}
		}
	})
	t.Run("every truncation", func(t *testing.T) {
		t.Parallel()
		for n := range len(blob) {
			requireCorrupt(t, key, aad, blob[:n], "blob cut to "+strconv.Itoa(n))
		}
	})
	t.Run("extended", func(t *testing.T) {
		t.Parallel()
		requireCorrupt(t, key, aad, append(bytes.Clone(blob), 0), "blob plus a byte")
	})
	t.Run("wrong key", func(t *testing.T) {
		t.Parallel()
		requireCorrupt(t, testKey(3), aad, blob, "wrong key")
		other := bytes.Clone(key)
		other[KeySize-1] ^= 1
		requireCorrupt(t, other, aad, blob, "key off by one bit")
	})
	t.Run("wrong aad", func(t *testing.T) {
		t.Parallel()
		requireCorrupt(t, key, []byte("other product"), blob, "wrong aad")
		requireCorrupt(t, key, nil, blob, "missing aad")
	})
	t.Run("bad magic and version", func(t *testing.T) {
		t.Parallel()
		for _, hdr := range []string{"XKST\x01", "lkst\x01", "LKST\x00", "LKST\x02", "LKST\xff"} {
			b := append([]byte(hdr), blob[5:]...)
			requireCorrupt(t, key, aad, b, "header "+hex.EncodeToString([]byte(hdr)))
		}
		_, err := Open(key, aad, append([]byte("LKST\x02"), blob[5:]...))
		assert.ErrorContains(t, err, "unsupported version 2")
	})
	t.Run("no secrets in the message", func(t *testing.T) {
		t.Parallel()
		_, err := Open(testKey(3), aad, blob)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), string(secret))
		assert.NotContains(t, err.Error(), hex.EncodeToString(key))
		assert.NotContains(t, err.Error(), string(aad))
	})
}

func TestSealBadKeyLength(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 31, 33, 64} {
		_, err := Seal(make([]byte, n), nil, []byte("x"))
		requireStateErr(t, err, "seal", nil)
		assert.NotErrorIs(t, err, ErrCorrupt, "Seal with a %d-byte key", n)
		_, err = Open(make([]byte, n), nil, make([]byte, 64))
		requireStateErr(t, err, "open", nil)
		assert.NotErrorIs(t, err, ErrCorrupt, "Open with a %d-byte key is a caller error", n)
	}
}

func TestDeriveKey(t *testing.T) {
	t.Parallel()
	k := func(parts ...string) string {
		var b [][]byte
		for _, p := range parts {
			b = append(b, []byte(p))
		}
		key := DeriveKey(b...)
		require.Len(t, key, KeySize)
		return hex.EncodeToString(key)
	}
	assert.Equal(t, k("a", "b"), k("a", "b"), "deterministic")
	distinct := [][]string{
		{}, {""}, {"", ""}, {"ab", "c"}, {"a", "bc"}, {"abc"}, {"c", "ab"}, {"a", "b", "c"}, {"a\x00", "bc"},
	}
	seen := map[string][]string{}
	for _, parts := range distinct {
		key := k(parts...)
		if prev, ok := seen[key]; ok {
			t.Errorf("DeriveKey(%q) = DeriveKey(%q); want different keys", parts, prev)
		}
		seen[key] = parts
	}
	// The derived key seals and opens.
	key := DeriveKey([]byte("p"), []byte("l"), []byte("m"))
	blob, err := Seal(key, nil, []byte("x"))
	require.NoError(t, err)
	_, err = Open(DeriveKey([]byte("p"), []byte("l"), []byte("other machine")), nil, blob)
	assert.ErrorIs(t, err, ErrCorrupt, "state from another machine")
}
