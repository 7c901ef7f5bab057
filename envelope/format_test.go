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
	"time"

	"github.com/stretchr/testify/require"
)

// TestFormatIndependently is a second implementation of the receiver steps of
// FORMAT.md (format 2), written from that text with the standard library and
// none of this package's code. It opens every stored vector, positive and
// negative, and must reach the stored result; it also opens the sealed
// replies and applies the freshness rule, so the documentation and the
// implementation cannot drift apart.
func TestFormatIndependently(t *testing.T) {
	t.Parallel()
	type reply struct{ Name, Body, Result, Plaintext string }
	type vec struct {
		Name, Data, Result, Plaintext, Endpoint, Time string
		APIKey                                        string `json:"api_key"`
		PostedTo                                      string `json:"posted_to"`
		RequestID                                     string `json:"request_id"`
		SealedReply                                   bool   `json:"sealed_reply"`
		ServerTime                                    string `json:"server_time"`
		Admit                                         string
		Replies                                       []reply
	}
	type file struct {
		Mode, Secret, KEM string
		PrivateKey        string `json:"private_key"`
		KeyID             string `json:"key_id"`
		Vectors           []vec
	}
	std := base64.StdEncoding.Strict()
	gcm := func(key []byte) cipher.AEAD {
		b, err := aes.NewCipher(key)
		require.NoError(t, err)
		a, err := cipher.NewGCM(b)
		require.NoError(t, err)
		return a
	}
	// FORMAT.md, "Sealed replies", receiver steps.
	openReply := func(secret, binding []byte, version byte, body string) (string, string) {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &m) != nil || len(m) != 1 {
			return "", "malformed"
		}
		var data string
		if json.Unmarshal(m["data"], &data) != nil {
			return "", "malformed"
		}
		raw, err := std.DecodeString(data)
		if err != nil || len(raw) == 0 || len(data) > 1<<20 || std.EncodeToString(raw) != data {
			return "", "malformed"
		}
		if raw[0] != version {
			return "", "unsupported_version"
		}
		if len(raw) < 1+32+16 {
			return "", "malformed"
		}
		salt := append(append([]byte{}, binding...), raw[1:33]...)
		prk, _ := hkdf.Extract(sha256.New, secret, salt)
		key, _ := hkdf.Expand(sha256.New, prk, "key", 32)
		iv, _ := hkdf.Expand(sha256.New, prk, "nonce", 12)
		pt, err := gcm(key).Open(nil, iv, raw[33:], []byte{raw[0]}) // aad = the byte at offset 0
		if err != nil {
			return "", "unauthentic"
		}
		return string(pt), "ok"
	}
	// validEndpoint: 1..64 bytes in 0x21..0x7e.
	validEndpoint := func(b []byte) bool {
		if len(b) == 0 || len(b) > 64 {
			return false
		}
		for _, c := range b {
			if c < 0x21 || c > 0x7e {
				return false
			}
		}
		return true
	}

	for _, name := range []string{"public_key_x25519.json", "public_key_mlkem768x25519.json", "shared_secret.json"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "envelope", name))
		require.NoError(t, err)
		var f file
		require.NoError(t, json.Unmarshal(b, &f))

		// Keys, from FORMAT.md "Keys" and "Labels".
		var sk hpke.PrivateKey
		var kemID []byte
		var encLen int
		var reqSecret, keyID []byte
		switch f.Mode {
		case "public-key":
			kb, err := std.DecodeString(f.PrivateKey)
			require.NoError(t, err)
			require.Equal(t, byte(0x02), kb[0], "private key kind")
			kemID = kb[1:3]
			kem, err := hpke.NewKEM(binary.BigEndian.Uint16(kemID))
			require.NoError(t, err)
			sk, err = kem.NewPrivateKey(kb[3:])
			require.NoError(t, err)
			h := sha256.Sum256(append(append([]byte("licensekit-envelope v2 key id\x00"), kemID...), sk.PublicKey().Bytes()...))
			keyID = h[:8]
			encLen = map[uint16]int{0x0020: 32, 0x647a: 1120}[kem.ID()]
		case "shared-secret":
			s, err := std.DecodeString(f.Secret)
			require.NoError(t, err)
			prk, _ := hkdf.Extract(sha256.New, s, []byte("licensekit-envelope v2 shared secret"))
			keyID, _ = hkdf.Expand(sha256.New, prk, "key id", 8)
			reqSecret, _ = hkdf.Expand(sha256.New, prk, "request", 32)
		}
		require.Equal(t, f.KeyID, hex.EncodeToString(keyID))

		opened := 0
		for _, v := range f.Vectors {
			// The receiver steps of FORMAT.md, in order.
			var result, gotPT string
			var secret, binding []byte
			var replyVersion byte
			var ts uint64
			var rid, ep []byte
			func() {
				if len(v.Data) == 0 || len(v.Data) > 1<<20 {
					result = "malformed"
					return
				}
				raw, err := std.DecodeString(v.Data)
				if err != nil || len(raw) == 0 || std.EncodeToString(raw) != v.Data { // canonical only

					result = "malformed"
					return
				}
				fixed, version := 16, byte(0x21)
				if f.Mode == "shared-secret" {
					fixed, version = 10, 0x22
				}
				if raw[0] != version {
					result = "unsupported_version"
					return
				}
				if len(raw) < fixed || raw[1]&^1 != 0 {
					result = "malformed"
					return
				}
				kid := raw[2:10]
				if f.Mode == "public-key" {
					if binary.BigEndian.Uint16(raw[4:6]) != 1 || binary.BigEndian.Uint16(raw[6:8]) != 2 ||
						(binary.BigEndian.Uint16(raw[2:4]) != 0x0020 && binary.BigEndian.Uint16(raw[2:4]) != 0x647a) {
						result = "unsupported_version"
						return
					}
					if string(raw[2:4]) != string(kemID) {
						result = "unauthentic"
						return
					}
					kid = raw[8:16]
				}
				if string(kid) != string(keyID) {
					result = "unauthentic"
					return
				}
				if len(raw) < fixed+25 {
					result = "malformed"
					return
				}
				ts = binary.BigEndian.Uint64(raw[fixed : fixed+8])
				rid = raw[fixed+8 : fixed+24]
				l := int(raw[fixed+24])
				if len(raw) < fixed+25+l || !validEndpoint(raw[fixed+25:fixed+25+l]) || ts > 1<<62 {
					result = "malformed"
					return
				}
				ep = raw[fixed+25 : fixed+25+l]
				h := fixed + 25 + l // header length before enc / salt
				switch f.Mode {
				case "public-key":
					if len(raw) < h+encLen+16 {
						result = "malformed"
						return
					}
					if string(ep) != v.PostedTo {
						result = "unauthentic"
						return
					}
					enc := raw[h : h+encLen]
					info := []byte("licensekit-envelope v2 request\x00" + v.APIKey)
					r, err := hpke.NewRecipient(enc, sk, hpke.HKDFSHA256(), hpke.AES256GCM(), info)
					if err != nil {
						result = "unauthentic"
						return
					}
					pt, err := r.Open(raw[:h], raw[h+encLen:])
					if err != nil {
						result = "unauthentic"
						return
					}
					gotPT = string(pt)
					secret, _ = r.Export("licensekit-envelope v2 response", 32)
					binding, replyVersion = enc, 0xA1
				case "shared-secret":
					if len(raw) < h+32+16 {
						result = "malformed"
						return
					}
					if string(ep) != v.PostedTo {
						result = "unauthentic"
						return
					}
					salt := raw[h : h+32]
					prkQ, _ := hkdf.Extract(sha256.New, reqSecret, salt)
					key, _ := hkdf.Expand(sha256.New, prkQ, "key", 32)
					iv, _ := hkdf.Expand(sha256.New, prkQ, "nonce", 12)
					aad := append(append([]byte{}, raw[:h+32]...), v.APIKey...)
					pt, err := gcm(key).Open(nil, iv, raw[h+32:], aad)
					if err != nil {
						result = "unauthentic"
						return
					}
					gotPT = string(pt)
					secret, _ = hkdf.Expand(sha256.New, prkQ, "response\x00"+v.APIKey, 32)
					binding, replyVersion = salt, 0xA2
				}
				result = "ok"
				if raw[1]&1 != 1 {
					secret = nil
				}
			}()
			require.Equal(t, v.Result, result, "%s: %s", name, v.Name)
			if result != "ok" {
				continue
			}
			require.Equal(t, v.Plaintext, gotPT, v.Name)
			require.Equal(t, v.SealedReply, secret != nil, v.Name)
			require.Equal(t, v.Endpoint, string(ep))
			require.Equal(t, v.Time, time.Unix(int64(ts), 0).UTC().Format(time.RFC3339))
			require.Equal(t, v.RequestID, hex.EncodeToString(rid))
			if v.Admit != "" {
				// Freshness: accepted when now-300 <= timestamp <= now+30.
				now, err := time.Parse(time.RFC3339, v.ServerTime)
				require.NoError(t, err)
				d := now.Unix() - int64(ts)
				got := "ok"
				if d > 300 || d < -30 {
					got = "stale"
				}
				require.Equal(t, v.Admit, got, v.Name)
			}
			opened++
			for _, r := range v.Replies {
				pt, res := openReply(secret, binding, replyVersion, r.Body)
				want := r.Result
				require.Equal(t, want, res, "%s: %s / %s", name, v.Name, r.Name)
				if res == "ok" {
					require.Equal(t, r.Plaintext, pt)
					opened++
				}
			}
		}
		require.GreaterOrEqual(t, opened, 6, name)
	}
}
