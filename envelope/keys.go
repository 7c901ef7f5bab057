package envelope

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	"strconv"
)

// KEM is an HPKE key encapsulation mechanism, identified by its IANA HPKE KEM
// id. The zero value is not a valid KEM.
type KEM uint16

// The supported KEMs.
const (
	// KEMX25519 is DHKEM(X25519, HKDF-SHA256), RFC 9180. It is the default.
	KEMX25519 KEM = 0x0020
	// KEMMLKEM768X25519 is the hybrid post-quantum KEM MLKEM768-X25519
	// (X-Wing), draft-ietf-hpke-pq.
	KEMMLKEM768X25519 KEM = 0x647a
)

// Fixed parts of the cipher suite.
const (
	kdfHKDFSHA256 uint16 = 0x0001
	aeadAES256GCM uint16 = 0x0002
)

type kemParams struct {
	name    string
	pubLen  int
	privLen int
	encLen  int
	hpke    func() hpke.KEM
}

func (k KEM) params() (kemParams, bool) {
	switch k {
	case KEMX25519:
		return kemParams{name: "DHKEM(X25519, HKDF-SHA256)", pubLen: 32, privLen: 32, encLen: 32,
			hpke: func() hpke.KEM { return hpke.DHKEM(ecdh.X25519()) }}, true
	case KEMMLKEM768X25519:
		return kemParams{name: "MLKEM768-X25519", pubLen: 1216, privLen: 32, encLen: 1120, hpke: hpke.MLKEM768X25519}, true
	}
	return kemParams{}, false
}

// String returns the KEM's name, or "KEM(0x....)" for an unsupported id.
func (k KEM) String() string {
	if p, ok := k.params(); ok {
		return p.name
	}
	return fmt.Sprintf("KEM(%#04x)", uint16(k))
}

// Key serialization: FORMAT.md, "Keys".
const (
	kindPublic  byte = 0x01
	kindPrivate byte = 0x02

	pemPublic  = "LICENSEKIT HPKE PUBLIC KEY"
	pemPrivate = "LICENSEKIT HPKE PRIVATE KEY"

	keyIDLen   = 8
	labelKeyID = "licensekit-envelope v2 key id"
)

// PublicKey is a server's HPKE public key (the encapsulation key). It is
// immutable and safe for concurrent use. Build one with ParsePublicKey,
// NewPublicKey or PrivateKey.Public; the zero value is not usable.
type PublicKey struct {
	kem   KEM
	pk    hpke.PublicKey
	raw   []byte
	keyID [keyIDLen]byte
}

// PrivateKey is a server's HPKE private key (the decapsulation key). It is
// immutable and safe for concurrent use. Its String, GoString and LogValue
// methods never reveal key material. The zero value is not usable.
type PrivateKey struct {
	kem KEM
	sk  hpke.PrivateKey
	pub *PublicKey
}

// GenerateKey returns a new random key pair for kem (KEMX25519 or
// KEMMLKEM768X25519).
func GenerateKey(kem KEM) (*PrivateKey, error) {
	p, ok := kem.params()
	if !ok {
		return nil, newError("generate key", "unsupported kem", ErrUnsupportedVersion)
	}
	sk, err := p.hpke().GenerateKey()
	if err != nil {
		return nil, newError("generate key", "key generation failed", err)
	}
	return newPrivate(kem, sk)
}

// NewPublicKey builds a public key from the KEM's raw serialization (32 bytes
// for KEMX25519, 1216 for KEMMLKEM768X25519), for interoperability with keys
// made by other HPKE implementations.
func NewPublicKey(kem KEM, raw []byte) (*PublicKey, error) {
	p, ok := kem.params()
	if !ok {
		return nil, newError("parse key", "unsupported kem", ErrUnsupportedVersion)
	}
	if len(raw) != p.pubLen {
		return nil, newError("parse key", "wrong public key length", ErrMalformed)
	}
	pk, err := p.hpke().NewPublicKey(raw)
	if err != nil {
		return nil, newError("parse key", "invalid public key", ErrMalformed)
	}
	return newPublic(kem, pk), nil
}

// NewPrivateKey builds a private key from the KEM's raw serialization (32
// bytes for both supported KEMs; for KEMMLKEM768X25519 it is the seed).
func NewPrivateKey(kem KEM, raw []byte) (*PrivateKey, error) {
	p, ok := kem.params()
	if !ok {
		return nil, newError("parse key", "unsupported kem", ErrUnsupportedVersion)
	}
	if len(raw) != p.privLen {
		return nil, newError("parse key", "wrong private key length", ErrMalformed)
	}
	sk, err := p.hpke().NewPrivateKey(raw)
	if err != nil {
		return nil, newError("parse key", "invalid private key", ErrMalformed)
	}
	return newPrivate(kem, sk)
}

func newPublic(kem KEM, pk hpke.PublicKey) *PublicKey {
	raw := bytes.Clone(pk.Bytes())
	return &PublicKey{kem: kem, pk: pk, raw: raw, keyID: hpkeKeyID(kem, raw)}
}

func newPrivate(kem KEM, sk hpke.PrivateKey) (*PrivateKey, error) {
	if _, err := sk.Bytes(); err != nil {
		// Keys that cannot be serialized (e.g. hardware keys) are not supported.
		return nil, newError("parse key", "private key is not serializable", err)
	}
	return &PrivateKey{kem: kem, sk: sk, pub: newPublic(kem, sk.PublicKey())}, nil
}

// hpkeKeyID is the first 8 bytes of
// SHA-256("licensekit-envelope v2 key id" || 0x00 || kem_id || pkR).
func hpkeKeyID(kem KEM, raw []byte) [keyIDLen]byte {
	sum := sha256.Sum256(append(binary.BigEndian.AppendUint16([]byte(labelKeyID+"\x00"), uint16(kem)), raw...))
	return [keyIDLen]byte(sum[:keyIDLen])
}

// KEM returns the key's KEM.
func (k *PublicKey) KEM() KEM { return k.kem }

// KeyID returns the 8-byte key id carried in every envelope sealed to this key,
// as 16 lower-case hex digits.
func (k *PublicKey) KeyID() string { return hex.EncodeToString(k.keyID[:]) }

// Bytes returns a copy of the KEM's raw serialization of the key, without the
// kind and KEM prefix that MarshalBinary adds.
func (k *PublicKey) Bytes() []byte { return bytes.Clone(k.raw) }

// Equal reports whether k and other are the same key for the same KEM.
func (k *PublicKey) Equal(other *PublicKey) bool {
	return other != nil && k.kem == other.kem && bytes.Equal(k.raw, other.raw)
}

// MarshalBinary returns kind (0x01) || KEM id (2 bytes, big endian) || Bytes().
// It never fails.
func (k *PublicKey) MarshalBinary() ([]byte, error) {
	return marshalKey(kindPublic, k.kem, k.raw), nil
}

// EncodeBase64 returns the standard base64 encoding of MarshalBinary, a single
// line suitable for embedding in a product's configuration.
func (k *PublicKey) EncodeBase64() string {
	return b64.EncodeToString(marshalKey(kindPublic, k.kem, k.raw))
}

// EncodePEM returns a "LICENSEKIT HPKE PUBLIC KEY" PEM block holding
// MarshalBinary, with informational KEM and Key-Id headers.
func (k *PublicKey) EncodePEM() []byte {
	return encodePEM(pemPublic, k, marshalKey(kindPublic, k.kem, k.raw))
}

func encodePEM(typ string, k *PublicKey, b []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Headers: map[string]string{"KEM": k.kem.String(), "Key-Id": k.KeyID()}, Bytes: b})
}

// String returns a short description: KEM and key id.
func (k *PublicKey) String() string {
	return "envelope.PublicKey{" + k.kem.String() + ", key id " + k.KeyID() + "}"
}

// Public returns the matching public key.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// KEM returns the key's KEM.
func (k *PrivateKey) KEM() KEM { return k.kem }

// KeyID returns the key id of the matching public key.
func (k *PrivateKey) KeyID() string { return k.pub.KeyID() }

// MarshalBinary returns kind (0x02) || KEM id (2 bytes, big endian) || the
// KEM's raw private key serialization. The result is secret.
func (k *PrivateKey) MarshalBinary() ([]byte, error) {
	raw, err := k.sk.Bytes()
	if err != nil {
		return nil, newError("marshal key", "private key is not serializable", err)
	}
	return marshalKey(kindPrivate, k.kem, raw), nil
}

// EncodeBase64 returns the standard base64 encoding of MarshalBinary. The
// result is secret.
func (k *PrivateKey) EncodeBase64() string {
	b, _ := k.MarshalBinary() // nil (so "") for a key that cannot be serialized
	return b64.EncodeToString(b)
}

// EncodePEM returns a "LICENSEKIT HPKE PRIVATE KEY" PEM block holding
// MarshalBinary. The result is secret. It returns nil if the key cannot be
// serialized, which cannot happen for keys made by this package.
func (k *PrivateKey) EncodePEM() []byte {
	b, err := k.MarshalBinary()
	if err != nil {
		return nil
	}
	return encodePEM(pemPrivate, k.pub, b)
}

// String returns a description that names the KEM and key id and redacts the
// key material.
func (k PrivateKey) String() string {
	id := "?"
	if k.pub != nil {
		id = k.pub.KeyID()
	}
	return "envelope.PrivateKey{" + k.kem.String() + ", key id " + id + ", REDACTED}"
}

// GoString is like String, so %#v redacts too.
func (k PrivateKey) GoString() string { return k.String() }

// LogValue implements slog.LogValuer with the redacted String.
func (k PrivateKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

func marshalKey(kind byte, kem KEM, raw []byte) []byte {
	b := make([]byte, 0, 3+len(raw))
	b = append(b, kind)
	b = binary.BigEndian.AppendUint16(b, uint16(kem))
	return append(b, raw...)
}

// ParsePublicKey parses a public key from a "LICENSEKIT HPKE PUBLIC KEY" PEM
// block or from the base64 text of EncodeBase64. Surrounding white space is
// ignored. Private keys are rejected.
func ParsePublicKey(text []byte) (*PublicKey, error) {
	kem, raw, err := parseKeyText(text, kindPublic, pemPublic)
	if err != nil {
		return nil, err
	}
	return NewPublicKey(kem, raw)
}

// ParsePrivateKey parses a private key from a "LICENSEKIT HPKE PRIVATE KEY" PEM
// block or from the base64 text of EncodeBase64. Surrounding white space is
// ignored. Public keys are rejected.
func ParsePrivateKey(text []byte) (*PrivateKey, error) {
	kem, raw, err := parseKeyText(text, kindPrivate, pemPrivate)
	if err != nil {
		return nil, err
	}
	return NewPrivateKey(kem, raw)
}

func parseKeyText(text []byte, kind byte, pemType string) (KEM, []byte, error) {
	const op = "parse key"
	if len(text) > 64<<10 {
		return 0, nil, newError(op, "key text too large", ErrMalformed)
	}
	text = bytes.TrimSpace(text)
	var bin []byte
	if bytes.HasPrefix(text, []byte("-----BEGIN ")) {
		block, rest := pem.Decode(text)
		if block == nil {
			return 0, nil, newError(op, "invalid pem", ErrMalformed)
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return 0, nil, newError(op, "trailing data after pem block", ErrMalformed)
		}
		if block.Type != pemType {
			return 0, nil, newError(op, "pem type "+strconv.Quote(block.Type)+", want "+strconv.Quote(pemType), ErrMalformed)
		}
		bin = block.Bytes
	} else {
		var err error
		bin, err = b64.DecodeString(string(text))
		if err != nil {
			return 0, nil, newError(op, "key is neither pem nor base64", ErrMalformed)
		}
	}
	if len(bin) < 3 {
		return 0, nil, newError(op, "truncated key", ErrMalformed)
	}
	if bin[0] != kind {
		names := map[byte]string{kindPublic: "public", kindPrivate: "private"}
		if got, ok := names[bin[0]]; ok {
			return 0, nil, newError(op, "got a "+got+" key, want a "+names[kind]+" key", ErrMalformed)
		}
		return 0, nil, newError(op, "unknown key kind", ErrUnsupportedVersion)
	}
	kem := KEM(binary.BigEndian.Uint16(bin[1:3]))
	if _, ok := kem.params(); !ok {
		return 0, nil, newError(op, "unsupported kem", ErrUnsupportedVersion)
	}
	return kem, bin[3:], nil
}

// SecretSize is the size of a secret made by GenerateSecret, and the minimum
// size of a shared secret.
const SecretSize = 32

// GenerateSecret returns SecretSize random bytes for shared-secret mode.
func GenerateSecret() ([]byte, error) {
	s := make([]byte, SecretSize)
	if _, err := rand.Read(s); err != nil {
		return nil, newError("generate key", "random source failed", err)
	}
	return s, nil
}
