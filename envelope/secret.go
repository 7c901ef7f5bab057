package envelope

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
)

// Shared-secret mode request layout, format 2:
//
//	offset  size  field
//	0       1     version = 0x22
//	1       1     flags: 0x01 = sealed reply requested, 0x02 = carried, other bits zero
//	2       8     key id = HKDF-Expand(prk, "key id", 8)
//	10      8     timestamp, Unix seconds
//	18      16    request id
//	34      1     L, endpoint length
//	35      L     endpoint
//	35+L    32    salt (random)
//	67+L    rest  ciphertext = AES-256-GCM(key_q, iv_q,
//	                  aad = bytes 0..66+L || api_key, plaintext)
//
// where
//
//	prk     = HKDF-Extract(salt = "licensekit-envelope v2 shared secret", ikm = secret)
//	prk_q   = HKDF-Extract(salt = salt, ikm = HKDF-Expand(prk, "request", 32))
//	key_q   = HKDF-Expand(prk_q, "key", 32)
//	iv_q    = HKDF-Expand(prk_q, "nonce", 12)
//
// so every request has its own key and the nonce limit of one key does not
// apply to the secret.
const (
	secretFixedLen  = 10
	secretSaltLen   = 32
	labelSecretSalt = "licensekit-envelope v2 shared secret"
)

// secretKeys is what both sides derive from a shared secret. The secret itself
// is not kept.
type secretKeys struct {
	requestSecret []byte
	keyID         [keyIDLen]byte
}

func deriveSecretKeys(secret []byte) (*secretKeys, error) {
	if len(secret) < SecretSize {
		return nil, newError("new", "shared secret shorter than 32 bytes", ErrMalformed)
	}
	prk, err := hkdf.Extract(sha256.New, secret, []byte(labelSecretSalt))
	if err != nil {
		return nil, newError("new", "key derivation failed", err)
	}
	rs, err := hkdf.Expand(sha256.New, prk, "request", 32)
	if err != nil {
		return nil, newError("new", "key derivation failed", err)
	}
	id, err := hkdf.Expand(sha256.New, prk, "key id", keyIDLen)
	if err != nil {
		return nil, newError("new", "key derivation failed", err)
	}
	return &secretKeys{requestSecret: rs, keyID: [keyIDLen]byte(id)}, nil
}

// perRequest derives one request's AEAD, nonce and reply secret from its salt.
func (k *secretKeys) perRequest(salt []byte, apiKey string) (cipher.AEAD, []byte, []byte, error) {
	prk, err := hkdf.Extract(sha256.New, k.requestSecret, salt)
	if err != nil {
		return nil, nil, nil, err
	}
	e := newExpander(prk)
	reply := e.expand(replySecretLen, "response\x00", apiKey)
	a, iv, err := gcmFrom(e)
	if err != nil {
		return nil, nil, nil, err
	}
	return a, iv, reply, nil
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
// AES-256-GCM under a fresh per-request key derived with HKDF-SHA256 from
// secret and a random 32-byte salt. secret must be at least 32 bytes (see
// GenerateSecret) and is not retained. The Sealer is safe for concurrent
// use.
//
// Every install holding the secret can open every request sealed with it
// and seal replies that other installs accept: the secret gives the power to
// answer as the server. See docs/security.md.
func NewSharedSecretSealer(secret []byte, opts ...Option) (Sealer, error) {
	keys, err := deriveSecretKeys(secret)
	if err != nil {
		return nil, err
	}
	return &secretSealer{keys: keys, sealed: buildOptions(opts).sealedReplies}, nil
}

// RepliesAuthenticated reports whether the Sealer was built with
// WithSealedReplies. In this mode a sealed reply proves that the holder of
// the shared secret sealed it, which includes every install.
func (s *secretSealer) RepliesAuthenticated() bool { return s.sealed }

func (s *secretSealer) Seal(req Request, plaintext []byte) (Sealed, error) {
	const op = "seal"
	tail, hlen, n, err := sealStart(req, s.sealed, secretFixedLen, secretSaltLen, 0, len(plaintext))
	if err != nil {
		return Sealed{}, err
	}
	raw := make([]byte, secretFixedLen, n)
	raw[0] = versionSecret
	if s.sealed {
		raw[1] = flagSealedReply
	}
	if req.Carried {
		raw[1] |= flagCarried
	}
	copy(raw[2:10], s.keys.keyID[:])
	raw = tail.appendTo(raw)
	raw = raw[:hlen]
	salt := raw[hlen-secretSaltLen:]
	if _, err := rand.Read(salt); err != nil {
		return Sealed{}, newError(op, "random source failed", err)
	}
	a, iv, replySecret, err := s.keys.perRequest(salt, req.APIKey)
	if err != nil {
		return Sealed{}, newError(op, "key derivation failed", err)
	}
	raw = a.Seal(raw, iv, plaintext, secretAAD(raw[:hlen], req.APIKey))
	var reply ReplyOpener = plainReply{}
	if s.sealed {
		reply = &replyOpener{keys: replyKeys{version: versionReplySecret, secret: replySecret, binding: bytes.Clone(salt)}}
	}
	return Sealed{Key: req.APIKey, Data: b64.EncodeToString(raw), ID: tail.id, Reply: reply}, nil
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

func (o *secretOpener) Open(in Incoming) (*Opened, error) { return openData(o, in) }

// precheck validates the fixed header of raw and reports whether it is
// addressed to this opener's secret, without any cryptography.
func (o *secretOpener) precheck(raw []byte) error {
	if err := checkFixed(raw, versionSecret, secretFixedLen); err != nil {
		return err
	}
	if [keyIDLen]byte(raw[2:10]) != o.keys.keyID {
		return errUnknownKey()
	}
	return nil
}

func (o *secretOpener) openRaw(in Incoming, raw []byte) (*Opened, error) {
	const op = "open"
	if err := o.precheck(raw); err != nil {
		return nil, err
	}
	tail, hlen, sealed, err := openStart(in, raw, secretFixedLen, secretSaltLen, 0, o.requireSealed)
	if err != nil {
		return nil, err
	}
	header := raw[:hlen]
	salt := header[hlen-secretSaltLen:]
	a, iv, replySecret, err := o.keys.perRequest(salt, in.Key)
	if err != nil {
		return nil, newError(op, "key derivation failed", ErrUnauthentic)
	}
	pt, err := a.Open(nil, iv, raw[hlen:], secretAAD(header, in.Key))
	if err != nil {
		return nil, newError(op, "authentication failed", ErrUnauthentic)
	}
	if !sealed {
		return tail.opened(pt, notRequested{}), nil
	}
	return tail.opened(pt, &replySealer{keys: replyKeys{version: versionReplySecret, secret: replySecret, binding: bytes.Clone(salt)}}), nil
}
