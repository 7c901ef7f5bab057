package envelope_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
)

func TestKeyEncodingRoundTrip(t *testing.T) {
	t.Parallel()
	for _, kem := range []envelope.KEM{envelope.KEMX25519, envelope.KEMMLKEM768X25519} {
		t.Run(kem.String(), func(t *testing.T) {
			t.Parallel()
			priv, err := envelope.GenerateKey(kem)
			require.NoError(t, err)
			pub := priv.Public()
			require.Equal(t, kem, priv.KEM())
			require.Equal(t, kem, pub.KEM())
			require.Len(t, pub.KeyID(), 16)
			_, err = hex.DecodeString(pub.KeyID())
			require.NoError(t, err)
			require.Equal(t, pub.KeyID(), priv.KeyID())

			for _, text := range [][]byte{
				pub.EncodePEM(),
				[]byte(pub.EncodeBase64()),
				[]byte("\n  " + pub.EncodeBase64() + "\n"),
				append([]byte("\r\n"), pub.EncodePEM()...),
			} {
				got, err := envelope.ParsePublicKey(text)
				require.NoError(t, err)
				require.True(t, pub.Equal(got))
				require.Equal(t, pub.KeyID(), got.KeyID())
			}
			for _, text := range [][]byte{priv.EncodePEM(), []byte(priv.EncodeBase64())} {
				got, err := envelope.ParsePrivateKey(text)
				require.NoError(t, err)
				require.True(t, pub.Equal(got.Public()))
				b1, _ := priv.MarshalBinary()
				b2, _ := got.MarshalBinary()
				require.Equal(t, b1, b2)
			}

			// Raw interop constructors.
			got, err := envelope.NewPublicKey(kem, pub.Bytes())
			require.NoError(t, err)
			require.True(t, pub.Equal(got))
			bin, err := priv.MarshalBinary()
			require.NoError(t, err)
			gotPriv, err := envelope.NewPrivateKey(kem, bin[3:])
			require.NoError(t, err)
			require.True(t, pub.Equal(gotPriv.Public()))

			// Binary layout: kind, KEM id, raw key.
			pb, err := pub.MarshalBinary()
			require.NoError(t, err)
			require.Equal(t, byte(0x01), pb[0])
			require.Equal(t, uint16(kem), uint16(pb[1])<<8|uint16(pb[2]))
			require.Equal(t, pub.Bytes(), pb[3:])
			require.Equal(t, byte(0x02), bin[0])

			// A private key is never accepted as a public key, or vice versa.
			_, err = envelope.ParsePublicKey(priv.EncodePEM())
			require.ErrorIs(t, err, envelope.ErrMalformed)
			_, err = envelope.ParsePublicKey([]byte(priv.EncodeBase64()))
			require.ErrorIs(t, err, envelope.ErrMalformed)
			_, err = envelope.ParsePrivateKey(pub.EncodePEM())
			require.ErrorIs(t, err, envelope.ErrMalformed)
			_, err = envelope.ParsePrivateKey([]byte(pub.EncodeBase64()))
			require.ErrorIs(t, err, envelope.ErrMalformed)
		})
	}
}

func TestKeyIDsDiffer(t *testing.T) {
	t.Parallel()
	a, err := envelope.GenerateKey(envelope.KEMX25519)
	require.NoError(t, err)
	b, err := envelope.GenerateKey(envelope.KEMX25519)
	require.NoError(t, err)
	require.NotEqual(t, a.KeyID(), b.KeyID())
	require.False(t, a.Public().Equal(b.Public()))
	require.False(t, a.Public().Equal(nil))
}

func TestParseKeyRejects(t *testing.T) {
	t.Parallel()
	priv, err := envelope.GenerateKey(envelope.KEMX25519)
	require.NoError(t, err)
	pb, _ := priv.Public().MarshalBinary()
	enc := base64.StdEncoding.EncodeToString
	for name, text := range map[string][]byte{
		"empty":          nil,
		"garbage":        []byte("hello, world"),
		"short":          []byte(enc([]byte{1, 0})),
		"unknown kind":   []byte(enc(append([]byte{9}, pb[1:]...))),
		"unknown kem":    []byte(enc(append([]byte{1, 0, 0x21}, pb[3:]...))),
		"short key":      []byte(enc(pb[:len(pb)-1])),
		"long key":       []byte(enc(append(bytes.Clone(pb), 0))),
		"wrong pem type": bytes.Replace(priv.Public().EncodePEM(), []byte("LICENSEKIT HPKE"), []byte("RSA"), 2),
		"broken pem":     []byte("-----BEGIN LICENSEKIT HPKE PUBLIC KEY-----\nAAAA\n"),
		"trailing data":  append(priv.Public().EncodePEM(), "junk"...),
		"two pem blocks": append(priv.Public().EncodePEM(), priv.Public().EncodePEM()...),
		"huge":           bytes.Repeat([]byte("A"), 1<<20),
	} {
		_, err := envelope.ParsePublicKey(text)
		require.Error(t, err, name)
		require.True(t, strings.HasPrefix(err.Error(), "envelope: parse key: "), "%s: %v", name, err)
	}
	_, err = envelope.GenerateKey(0)
	require.ErrorIs(t, err, envelope.ErrUnsupportedVersion)
	_, err = envelope.NewPublicKey(envelope.KEMX25519, make([]byte, 31))
	require.ErrorIs(t, err, envelope.ErrMalformed)
	_, err = envelope.NewPrivateKey(envelope.KEM(7), make([]byte, 32))
	require.ErrorIs(t, err, envelope.ErrUnsupportedVersion)
}

func TestPrivateKeyRedacted(t *testing.T) {
	t.Parallel()
	for _, kem := range []envelope.KEM{envelope.KEMX25519, envelope.KEMMLKEM768X25519} {
		priv, err := envelope.GenerateKey(kem)
		require.NoError(t, err)
		bin, err := priv.MarshalBinary()
		require.NoError(t, err)
		raw := bin[3:]
		secrets := []string{
			priv.EncodeBase64(),
			base64.StdEncoding.EncodeToString(raw),
			base64.StdEncoding.EncodeToString(raw)[:20],
			hex.EncodeToString(raw)[:20],
			fmt.Sprint(raw)[1:40],
		}
		var logged bytes.Buffer
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("key", "priv", priv, "value", *priv)
		wrapped := struct {
			K envelope.PrivateKey
			k *envelope.PrivateKey
		}{*priv, priv}
		outputs := []string{
			priv.String(),
			fmt.Sprint(priv),
			fmt.Sprintf("%v %+v %#v %s", priv, priv, priv, priv),
			fmt.Sprintf("%v %+v %#v", *priv, *priv, *priv),
			fmt.Sprintf("%v %+v %#v", wrapped, wrapped, wrapped),
			logged.String(),
		}
		for _, out := range outputs {
			require.Contains(t, priv.String(), "REDACTED")
			for _, s := range secrets {
				require.NotContains(t, out, s, "output %q leaks key material", out)
			}
		}
		require.Contains(t, priv.String(), priv.KeyID())
	}
}

func TestKEMString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "DHKEM(X25519, HKDF-SHA256)", envelope.KEMX25519.String())
	require.Equal(t, "MLKEM768-X25519", envelope.KEMMLKEM768X25519.String())
	require.Equal(t, "KEM(0x0021)", envelope.KEM(0x21).String())
}

func TestGenerateSecret(t *testing.T) {
	t.Parallel()
	a, err := envelope.GenerateSecret()
	require.NoError(t, err)
	b, err := envelope.GenerateSecret()
	require.NoError(t, err)
	require.Len(t, a, envelope.SecretSize)
	require.NotEqual(t, a, b)
}
