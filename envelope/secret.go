package envelope

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
)

// Shared-secret mode request layout:
//
//	offset  size  field
//	0       1     version = 0x02
//	1       1     flags: 0x01 = sealed reply requested, other bits zero
//	2       8     key id = HKDF-Expand(prk, "key id", 8)
//	10      12    nonce (random)
//	22      rest  ciphertext = AES-256-GCM(request key, nonce,
//	                  aad = bytes 0..21 || api_key, plaintext)
//
// where prk = HKDF-Extract(SHA-256, salt = "licensekit-envelope v1 shared secret",
// ikm = secret) and request key = HKDF-Expand(prk, "request key", 32).
const (
	secretHeaderLen = 22
	labelSecretSalt = "licensekit-envelope v1 shared secret"
)

// secretKeys is what both sides derive from a shared secret. The secret itself
// is not kept.
type secretKeys struct {
	prk   []byte
	aead  cipher.AEAD
	keyID [keyIDLen]byte
}

func deriveSecretKeys(secret []byte) (*secretKeys, error) {
	if len(secret) < SecretSize {
		return nil, newError("new", "shared secret shorter than 32 bytes", ErrMalformed)
	}
	prk, err := hkdf.Extract(sha256.New, secret, []byte(labelSecretSalt))
	if err != nil {
		return nil, newError("new", "key derivation failed", err)
	}
	key, err := hkdf.Expand(sha256.New, prk, "request key", 32)
	if err != nil {
		return nil, newError("new", "key derivation failed", err)
	}
	id, err := hkdf.Expand(sha256.New, prk, "key id", keyIDLen)
	if err != nil {
		return nil, newError("new", "key derivation failed", err)
	}
	a, err := newGCM(key)
	if err != nil {
		return nil, newError("new", "key derivation failed", err)
	}
	return &secretKeys{prk: prk, aead: a, keyID: [keyIDLen]byte(id)}, nil
}

// replySecret is HKDF-Expand(prk, "response" || 0x00 || apiKey, 32).
func (k *secretKeys) replySecret(apiKey string) ([]byte, error) {
	return hkdf.Expand(sha256.New, k.prk, "response\x00"+apiKey, replySecretLen)
}

func secretAAD(header []byte, apiKey string) []byte {
	aad := make([]byte, 0, len(header)+len(apiKey))
	aad = append(aad, header...)
	return append(aad, apiKey...)
}

type secretSealer struct {
	keys   *secretKeys
	sealed bool
}

// NewSharedSecretSealer returns the client side of shared-secret mode:
// AES-256-GCM under a key derived with HKDF-SHA256 from secret, which must be
// at least 32 bytes (see GenerateSecret). The secret is not retained. The
// Sealer is safe for concurrent use.
//
// Each request draws a random 96-bit nonce, so one secret should seal no more
// than 2^32 requests; rotate it long before that.
func NewSharedSecretSealer(secret []byte, opts ...Option) (Sealer, error) {
	keys, err := deriveSecretKeys(secret)
	if err != nil {
		return nil, err
	}
	return &secretSealer{keys: keys, sealed: buildOptions(opts).sealedReplies}, nil
}

func (s *secretSealer) Seal(apiKey string, plaintext []byte) (string, ReplyOpener, error) {
	const op = "seal"
	n := secretHeaderLen + len(plaintext) + gcmTagLen
	if len(plaintext) > MaxDataSize || !encodedFits(n) {
		return "", nil, newError(op, "plaintext too large", ErrTooLarge)
	}
	raw := make([]byte, secretHeaderLen, n)
	raw[0] = versionSecret
	if s.sealed {
		raw[1] = flagSealedReply
	}
	copy(raw[2:10], s.keys.keyID[:])
	if _, err := rand.Read(raw[10:22]); err != nil {
		return "", nil, newError(op, "random source failed", err)
	}
	raw = s.keys.aead.Seal(raw, raw[10:22], plaintext, secretAAD(raw[:secretHeaderLen], apiKey))
	var reply ReplyOpener = plainReply{}
	if s.sealed {
		secret, err := s.keys.replySecret(apiKey)
		if err != nil {
			return "", nil, newError(op, "key derivation failed", err)
		}
		reply = &replyOpener{keys: replyKeys{version: versionReplySecret, secret: secret, binding: bytes.Clone(raw[10:22])}}
	}
	return b64.EncodeToString(raw), reply, nil
}

type secretOpener struct {
	keys          *secretKeys
	requireSealed bool
}

// NewSharedSecretOpener returns the server side of shared-secret mode for
// secret (at least 32 bytes). The secret is not retained. The Opener is safe
// for concurrent use.
func NewSharedSecretOpener(secret []byte, opts ...Option) (Opener, error) {
	keys, err := deriveSecretKeys(secret)
	if err != nil {
		return nil, err
	}
	return &secretOpener{keys: keys, requireSealed: buildOptions(opts).sealedReplies}, nil
}

func (o *secretOpener) Open(apiKey string, data string) ([]byte, ReplySealer, error) {
	raw, err := decodeRequest(data)
	if err != nil {
		return nil, nil, err
	}
	return o.openRaw(apiKey, raw)
}

// precheck validates the header of raw and reports whether it is addressed to
// this opener's secret, without any cryptography.
func (o *secretOpener) precheck(raw []byte) error {
	const op = "open"
	if err := checkVersion(raw, versionSecret); err != nil {
		return err
	}
	if len(raw) < secretHeaderLen {
		return newError(op, "truncated header", ErrMalformed)
	}
	if raw[1]&^flagSealedReply != 0 {
		return newError(op, "reserved flag bits set", ErrMalformed)
	}
	if [keyIDLen]byte(raw[2:10]) != o.keys.keyID {
		return &Error{Op: op, Reason: "unknown key id", Err: ErrUnauthentic, miss: missKey}
	}
	if len(raw) < secretHeaderLen+gcmTagLen {
		return newError(op, "truncated data", ErrMalformed)
	}
	if o.requireSealed && raw[1]&flagSealedReply == 0 {
		return newError(op, "request does not ask for a sealed reply", ErrMalformed)
	}
	return nil
}

func (o *secretOpener) openRaw(apiKey string, raw []byte) ([]byte, ReplySealer, error) {
	const op = "open"
	if err := o.precheck(raw); err != nil {
		return nil, nil, err
	}
	header := raw[:secretHeaderLen]
	sealed := header[1]&flagSealedReply != 0
	nonce := header[10:22]
	pt, err := o.keys.aead.Open(nil, nonce, raw[secretHeaderLen:], secretAAD(header, apiKey))
	if err != nil {
		return nil, nil, newError(op, "authentication failed", ErrUnauthentic)
	}
	if !sealed {
		return pt, notRequested{}, nil
	}
	secret, err := o.keys.replySecret(apiKey)
	if err != nil {
		return nil, nil, newError(op, "key derivation failed", ErrUnauthentic)
	}
	return pt, &replySealer{keys: replyKeys{version: versionReplySecret, secret: secret, binding: bytes.Clone(nonce)}}, nil
}
