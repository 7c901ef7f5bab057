package envelope_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFormatIndependently opens the valid stored vectors following only the
// text of FORMAT.md, with the standard library and none of this package's
// code, so the documentation and the implementation cannot drift apart.
func TestFormatIndependently(t *testing.T) {
	t.Parallel()
	type reply struct{ Name, Body, Result, Plaintext string }
	type vec struct {
		Name, Data, Result, Plaintext string
		APIKey                        string `json:"api_key"`
		SealedReply                   bool   `json:"sealed_reply"`
		Replies                       []reply
	}
	type file struct {
		Mode, Secret, KEM string
		PrivateKey        string `json:"private_key"`
		KeyID             string `json:"key_id"`
		Vectors           []vec
	}
	std := base64.StdEncoding
	gcm := func(key []byte) cipher.AEAD {
		b, err := aes.NewCipher(key)
		require.NoError(t, err)
		a, err := cipher.NewGCM(b)
		require.NoError(t, err)
		return a
	}
	openReply := func(secret, binding []byte, version byte, body string) string {
		var m map[string]string
		require.NoError(t, json.Unmarshal([]byte(body), &m))
		raw, err := std.DecodeString(m["data"])
		require.NoError(t, err)
		require.Equal(t, version, raw[0])
		salt := append(append([]byte{}, binding...), raw[1:33]...)
		prk, _ := hkdf.Extract(sha256.New, secret, salt)
		key, _ := hkdf.Expand(sha256.New, prk, "key", 32)
		iv, _ := hkdf.Expand(sha256.New, prk, "nonce", 12)
		pt, err := gcm(key).Open(nil, iv, raw[33:], raw[:1])
		require.NoError(t, err)
		return string(pt)
	}

	for _, name := range []string{"public_key_x25519.json", "public_key_mlkem768x25519.json", "shared_secret.json"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "envelope", name))
		require.NoError(t, err)
		var f file
		require.NoError(t, json.Unmarshal(b, &f))
		opened := 0
		for _, v := range f.Vectors {
			if v.Result != "ok" {
				continue
			}
			raw, err := std.DecodeString(v.Data)
			require.NoError(t, err)
			var pt []byte
			var secret, binding []byte
			var replyVersion byte
			switch f.Mode {
			case "public-key":
				kb, err := std.DecodeString(f.PrivateKey)
				require.NoError(t, err)
				require.Equal(t, byte(0x02), kb[0], "private key kind")
				kem, err := hpke.NewKEM(binary.BigEndian.Uint16(kb[1:3]))
				require.NoError(t, err)
				sk, err := kem.NewPrivateKey(kb[3:])
				require.NoError(t, err)
				h := sha256.Sum256(append(append([]byte("licensekit-envelope v1 key id\x00"), kb[1:3]...), sk.PublicKey().Bytes()...))
				require.Equal(t, f.KeyID, hex.EncodeToString(h[:8]))

				require.Equal(t, byte(0x01), raw[0])
				require.Equal(t, kb[1:3], raw[2:4])
				require.Equal(t, []byte{0, 1, 0, 2}, raw[4:8])
				require.Equal(t, f.KeyID, hex.EncodeToString(raw[8:16]))
				encLen := map[uint16]int{0x0020: 32, 0x647a: 1120}[kem.ID()]
				enc := raw[16 : 16+encLen]
				info := []byte("licensekit-envelope v1 request\x00" + v.APIKey)
				r, err := hpke.NewRecipient(enc, sk, hpke.HKDFSHA256(), hpke.AES256GCM(), info)
				require.NoError(t, err)
				pt, err = r.Open(raw[:16], raw[16+encLen:])
				require.NoError(t, err, v.Name)
				secret, err = r.Export("licensekit-envelope v1 response", 32)
				require.NoError(t, err)
				binding, replyVersion = enc, 0x81
			case "shared-secret":
				s, err := std.DecodeString(f.Secret)
				require.NoError(t, err)
				prk, _ := hkdf.Extract(sha256.New, s, []byte("licensekit-envelope v1 shared secret"))
				key, _ := hkdf.Expand(sha256.New, prk, "request key", 32)
				id, _ := hkdf.Expand(sha256.New, prk, "key id", 8)
				require.Equal(t, f.KeyID, hex.EncodeToString(id))
				require.Equal(t, byte(0x02), raw[0])
				require.Equal(t, id, raw[2:10])
				aad := append(append([]byte{}, raw[:22]...), v.APIKey...)
				pt, err = gcm(key).Open(nil, raw[10:22], raw[22:], aad)
				require.NoError(t, err, v.Name)
				secret, _ = hkdf.Expand(sha256.New, prk, "response\x00"+v.APIKey, 32)
				binding, replyVersion = raw[10:22], 0x82
			}
			require.Equal(t, v.Plaintext, string(pt), v.Name)
			require.Equal(t, v.SealedReply, raw[1]&1 == 1)
			opened++
			for _, r := range v.Replies {
				if r.Result == "ok" {
					require.Equal(t, r.Plaintext, openReply(secret, binding, replyVersion, r.Body))
					opened++
				}
			}
		}
		require.GreaterOrEqual(t, opened, 4, name)
	}
}
