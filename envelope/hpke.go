package envelope

import (
	"bytes"
	"crypto/hpke"
	"encoding/binary"
)

// Public-key mode: FORMAT.md, "Public-key mode request". The fixed header is
// version, flags, KEM, KDF and AEAD ids and key id; enc follows the tail.
const (
	hpkeFixedLen = 16
	labelRequest = "licensekit-envelope v2 request"
)

func requestInfo(key string) []byte {
	return []byte(labelRequest + "\x00" + key)
}

type hpkeSealer struct {
	pub    *PublicKey
	encLen int
	fixed  []byte // its flags byte says whether replies are sealed
}

// NewSealer returns the client side of public-key mode: requests are sealed
// with HPKE (RFC 9180, base mode) to pub, using pub's KEM with HKDF-SHA256 and
// AES-256-GCM. Only the holder of the private key can open them. The Sealer is
// safe for concurrent use. See WithSealedReplies for authenticated replies.
func NewSealer(pub *PublicKey, opts ...Option) (Sealer, error) {
	if pub == nil || pub.pk == nil {
		return nil, newError("new", "nil public key", ErrMalformed)
	}
	p, _ := pub.kem.params() // a key with pk set was built for a supported KEM
	o := buildOptions(opts)
	suite := binary.BigEndian.AppendUint16(nil, uint16(pub.kem))
	suite = binary.BigEndian.AppendUint16(suite, kdfHKDFSHA256)
	suite = binary.BigEndian.AppendUint16(suite, aeadAES256GCM)
	return &hpkeSealer{
		pub:    pub,
		encLen: p.encLen,
		fixed:  fixedHeader(versionHPKE, o.sealedReplies, append(suite, pub.keyID[:]...)...),
	}, nil
}

// RepliesAuthenticated reports whether the Sealer was built with
// WithSealedReplies.
func (s *hpkeSealer) RepliesAuthenticated() bool { return s.fixed[1]&flagSealedReply != 0 }

func (s *hpkeSealer) Seal(req Request, plaintext []byte) (Sealed, error) {
	const op = "seal"
	tail, raw, err := sealStart(req, s.fixed, 0, s.encLen, len(plaintext))
	if err != nil {
		return Sealed{}, err
	}
	enc, sender, err := hpke.NewSender(s.pub.pk, hpke.HKDFSHA256(), hpke.AES256GCM(), requestInfo(req.APIKey))
	if err != nil {
		return Sealed{}, newError(op, "hpke setup failed", err)
	}
	ct, err := sender.Seal(raw, plaintext)
	if err != nil {
		return Sealed{}, newError(op, "hpke seal failed", err)
	}
	var reply ReplyOpener = plainReply{}
	if s.RepliesAuthenticated() {
		secret, err := sender.Export(labelResponse, replySecretLen)
		if err != nil {
			return Sealed{}, newError(op, "hpke export failed", err)
		}
		reply = &replyOpener{keys: replyKeys{version: versionReplyHPKE, secret: secret, binding: enc}}
	}
	raw = append(raw, enc...)
	raw = append(raw, ct...)
	return Sealed{Key: req.APIKey, Data: b64.EncodeToString(raw), ID: tail.id, Reply: reply}, nil
}

type hpkeOpener struct {
	priv          *PrivateKey
	encLen        int
	requireSealed bool
}

// NewOpener returns the server side of public-key mode for priv. The Opener is
// safe for concurrent use.
func NewOpener(priv *PrivateKey, opts ...Option) (Opener, error) {
	if priv == nil || priv.sk == nil || priv.pub == nil {
		return nil, newError("new", "nil private key", ErrMalformed)
	}
	p, _ := priv.kem.params() // as in NewSealer
	o := buildOptions(opts)
	return &hpkeOpener{priv: priv, encLen: p.encLen, requireSealed: o.sealedReplies}, nil
}

func (o *hpkeOpener) Open(in Incoming) (*Opened, error) { return openData(o, in) }

func (o *hpkeOpener) precheck(raw []byte) error {
	const op = "open"
	if err := checkFixed(raw, versionHPKE, hpkeFixedLen); err != nil {
		return err
	}
	kem := KEM(binary.BigEndian.Uint16(raw[2:4]))
	if binary.BigEndian.Uint16(raw[4:6]) != kdfHKDFSHA256 || binary.BigEndian.Uint16(raw[6:8]) != aeadAES256GCM {
		return newError(op, "unsupported cipher suite", ErrUnsupportedVersion)
	}
	if _, ok := kem.params(); !ok {
		return newError(op, "unsupported kem", ErrUnsupportedVersion)
	}
	if kem != o.priv.kem || [keyIDLen]byte(raw[8:16]) != o.priv.pub.keyID {
		return errUnknownKey()
	}
	return nil
}

func (o *hpkeOpener) openRaw(in Incoming, raw []byte) (*Opened, error) {
	const op = "open"
	tail, hlen, sealed, err := openStart(in, raw, hpkeFixedLen, 0, o.encLen, o.requireSealed)
	if err != nil {
		return nil, err
	}
	header, rest := raw[:hlen], raw[hlen:]
	enc, ct := rest[:o.encLen], rest[o.encLen:]
	r, err := hpke.NewRecipient(enc, o.priv.sk, hpke.HKDFSHA256(), hpke.AES256GCM(), requestInfo(in.Key))
	if err != nil {
		return nil, newError(op, "decapsulation failed", ErrUnauthentic)
	}
	pt, err := r.Open(header, ct)
	if err != nil {
		return nil, newError(op, "authentication failed", ErrUnauthentic)
	}
	if !sealed {
		return tail.opened(pt, notRequested{}), nil
	}
	secret, err := r.Export(labelResponse, replySecretLen)
	if err != nil {
		return nil, newError(op, "hpke export failed", ErrUnauthentic)
	}
	// Copy enc so the reply sealer does not keep the whole request alive.
	return tail.opened(pt, &replySealer{keys: replyKeys{version: versionReplyHPKE, secret: secret, binding: bytes.Clone(enc)}}), nil
}

func openData(o rawOpener, in Incoming) (*Opened, error) {
	raw, err := decodeRequest(in.Data)
	if err != nil {
		return nil, err
	}
	if err := o.precheck(raw); err != nil {
		return nil, err
	}
	return o.openRaw(in, raw)
}

// checkFixed checks the version, length and flags of a fixed header of
// fixedLen bytes at the start of raw (never empty: see decodeData).
func checkFixed(raw []byte, version byte, fixedLen int) error {
	if v := raw[0]; v != version {
		reason := "unsupported version"
		switch v {
		case versionHPKE:
			reason = "public-key mode data given to a shared-secret opener"
		case versionSecret:
			reason = "shared-secret mode data given to a public-key opener"
		}
		return &Error{Op: "open", Reason: reason, Err: ErrUnsupportedVersion, miss: missMode}
	}
	if len(raw) < fixedLen {
		return newError("open", "truncated header", ErrMalformed)
	}
	return checkFlags(raw[1])
}

// errUnknownKey says a request is in this opener's mode but for another key.
func errUnknownKey() error {
	return &Error{Op: "open", Reason: "unknown key id", Err: ErrUnauthentic, miss: missKey}
}

func decodeRequest(data string) ([]byte, error) {
	if len(data) > MaxDataSize {
		return nil, newError("open", "data too large", ErrMalformed)
	}
	if len(data) == 0 {
		return nil, newError("open", "empty data", ErrMalformed)
	}
	raw, ok := decodeData(data)
	if !ok {
		return nil, newError("open", "invalid base64", ErrMalformed)
	}
	return raw, nil
}
