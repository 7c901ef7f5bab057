package envelope

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSharedSecretPerRequestKeys: shared-secret mode derives a fresh AEAD key
// and nonce for every request from its random salt, so the random-nonce limit
// of one key does not apply to the secret (which the whole install base
// shares). The key of one request does not open another.
func TestSharedSecretPerRequestKeys(t *testing.T) {
	t.Parallel()
	secret, err := GenerateSecret()
	require.NoError(t, err)
	s, err := NewSharedSecretSealer(secret)
	require.NoError(t, err)
	keys, err := deriveSecretKeys(secret)
	require.NoError(t, err)

	type req struct {
		raw, salt, iv []byte
		hlen          int
	}
	var rs []req
	for range 2 {
		sd, err := s.Seal(Request{APIKey: "ak", Endpoint: "begin_session"}, []byte("same plaintext"))
		require.NoError(t, err)
		raw, ok := decodeData(sd.Data)
		require.True(t, ok)
		hlen := secretFixedLen + tailFixedLen + len("begin_session") + secretSaltLen
		salt := raw[hlen-secretSaltLen : hlen]
		_, iv, _, err := keys.perRequest(salt, "ak")
		require.NoError(t, err)
		rs = append(rs, req{raw, salt, iv, hlen})
	}
	require.False(t, bytes.Equal(rs[0].salt, rs[1].salt), "salts repeat")
	require.False(t, bytes.Equal(rs[0].iv, rs[1].iv), "nonces repeat")
	// Request 1's ciphertext does not open under request 0's key and nonce.
	a0, iv0, _, err := keys.perRequest(rs[0].salt, "ak")
	require.NoError(t, err)
	_, err = a0.Open(nil, iv0, rs[1].raw[rs[1].hlen:], secretAAD(rs[1].raw[:rs[1].hlen], "ak"))
	require.Error(t, err, "two requests share a key")
	_, err = a0.Open(nil, iv0, rs[0].raw[rs[0].hlen:], secretAAD(rs[0].raw[:rs[0].hlen], "ak"))
	require.NoError(t, err)
}
