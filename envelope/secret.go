package envelope

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"slices"
)

// Shared-secret mode: FORMAT.md, "Shared-secret mode request" and "Labels".
// The fixed header is version, flags and key id; the salt follows the tail,
// and every request derives its own key and nonce from it.
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
	e := newExpander(prk)
	return &secretKeys{requestSecret: e.expand(32, "request"), keyID: [keyIDLen]byte(e.expand(keyIDLen, "key id"))}, nil
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
	return slices.Concat(header, []byte(apiKey))
}

// secretMode is both sides of shared-secret mode. sealed is
// WithSealedReplies: the Sealer asks for sealed replies, the Opener
// requires them.
type secretMode struct {
	keys   *secretKeys
	fixed  []byte // version, flags and key id
	sealed bool
}

func newSecretMode(secret []byte, opts []Option) (*secretMode, error) {
	keys, err := deriveSecretKeys(secret)
	if err != nil {
		return nil, err
	}
	m := &secretMode{keys: keys, sealed: buildOptions(opts).sealedReplies}
	m.fixed = fixedHeader(versionSecret, m.sealed, keys.keyID[:]...)
	return m, nil
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
	m, err := newSecretMode(secret, opts)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// RepliesAuthenticated reports whether the Sealer was built with
// WithSealedReplies. In this mode a sealed reply proves that the holder of
// the shared secret sealed it, which includes every install.
func (s *secretMode) RepliesAuthenticated() bool { return s.sealed }

func (s *secretMode) Seal(req Request, plaintext []byte) (Sealed, error) {
	const op = "seal"
	tail, raw, err := sealStart(req, s.fixed, secretSaltLen, 0, len(plaintext))
	if err != nil {
		return Sealed{}, err
	}
	hlen := len(raw) + secretSaltLen
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

// NewSharedSecretOpener returns the server side of shared-secret mode for
// secret (at least 32 bytes). The secret is not retained. The Opener is safe
// for concurrent use.
func NewSharedSecretOpener(secret []byte, opts ...Option) (Opener, error) {
	m, err := newSecretMode(secret, opts)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (o *secretMode) Open(in Incoming) (*Opened, error) { return openData(o, in) }

func (o *secretMode) precheck(raw []byte) error {
	if err := checkFixed(raw, versionSecret, secretFixedLen); err != nil {
		return err
	}
	if [keyIDLen]byte(raw[2:10]) != o.keys.keyID {
		return errUnknownKey()
	}
	return nil
}

func (o *secretMode) openRaw(in Incoming, raw []byte) (*Opened, error) {
	const op = "open"
	tail, hlen, sealed, err := openStart(in, raw, secretFixedLen, secretSaltLen, 0, o.sealed)
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
