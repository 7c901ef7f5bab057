package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"hash"
	"io"
	"slices"
)

// Sealed replies follow Oblivious HTTP (RFC 9458, section 4.4); FORMAT.md,
// "Sealed replies", gives the derivation. data = version || nonce_r || ct.
const (
	labelResponse    = "licensekit-envelope v2 response"
	replySecretLen   = 32
	replyNonceLen    = 32
	gcmNonceLen      = 12
	gcmTagLen        = 16
	replyOverhead    = 1 + replyNonceLen + gcmTagLen
	replyBodyPrefix  = `{"data":"`
	replyBodySuffix  = `"}`
	replyBodyWrapLen = len(replyBodyPrefix) + len(replyBodySuffix)
)

// replyKeys holds what both ends of one request know about its reply: the
// exported secret and the request's binding value (enc or request nonce).
type replyKeys struct {
	version byte
	secret  []byte
	binding []byte
}

func (k *replyKeys) aead(replyNonce []byte) (cipher.AEAD, []byte, error) {
	prk, err := hkdf.Extract(sha256.New, k.secret, slices.Concat(k.binding, replyNonce))
	if err != nil {
		return nil, nil, err
	}
	return gcmFrom(newExpander(prk))
}

// gcmFrom derives an AES-256-GCM AEAD ("key") and its nonce ("nonce") from
// e's prk.
func gcmFrom(e expander) (cipher.AEAD, []byte, error) {
	iv := e.expand(gcmNonceLen, "nonce")
	block, err := aes.NewCipher(e.expand(32, "key"))
	if err != nil {
		return nil, nil, err
	}
	a, err := cipher.NewGCM(block)
	return a, iv, err
}

// expander is HKDF-Expand (RFC 5869) with SHA-256 from one prk, for outputs
// of at most one hash (32 bytes): the first n bytes of
// HMAC(prk, info || 0x01). Its one HMAC serves every output.
type expander struct{ mac hash.Hash }

func newExpander(prk []byte) expander { return expander{mac: hmac.New(sha256.New, prk)} }

// expand returns n (at most 32) bytes for the info made of parts.
func (e expander) expand(n int, parts ...string) []byte {
	e.mac.Reset()
	for _, p := range parts {
		io.WriteString(e.mac, p)
	}
	e.mac.Write([]byte{1})
	return e.mac.Sum(nil)[:n]
}

// replySealer is the server side of a sealed reply.
type replySealer struct {
	keys replyKeys
}

func (s *replySealer) Requested() bool { return true }

func (s *replySealer) SealReply(plaintext []byte) ([]byte, error) {
	const op = "seal reply"
	n := replyOverhead + len(plaintext)
	if len(plaintext) > MaxDataSize || !encodedFits(n) || b64.EncodedLen(n)+replyBodyWrapLen > MaxDataSize {
		return nil, newError(op, "plaintext too large", ErrTooLarge)
	}
	raw := make([]byte, 1+replyNonceLen, n)
	raw[0] = s.keys.version
	if _, err := rand.Read(raw[1:]); err != nil {
		return nil, newError(op, "random source failed", err)
	}
	a, iv, err := s.keys.aead(raw[1:])
	if err != nil {
		return nil, newError(op, "key derivation failed", err)
	}
	raw = a.Seal(raw, iv, plaintext, raw[:1])
	body := make([]byte, 0, b64.EncodedLen(len(raw))+replyBodyWrapLen)
	body = append(body, replyBodyPrefix...)
	body = b64.AppendEncode(body, raw)
	body = append(body, replyBodySuffix...)
	return body, nil
}

type notRequested struct{}

func (notRequested) Requested() bool { return false }

func (notRequested) SealReply([]byte) ([]byte, error) {
	return nil, newError("seal reply", "the client did not ask for a sealed reply", ErrNotRequested)
}

type plainReply struct{}

func (plainReply) OpenReply(body []byte) ([]byte, error) { return body, nil }

// replyOpener is the client side of a sealed reply. It fails closed: anything
// other than a valid sealed reply to this request matches ErrUnauthentic.
type replyOpener struct {
	keys replyKeys
}

func (o *replyOpener) OpenReply(body []byte) ([]byte, error) {
	const op = "open reply"
	if len(body) > MaxDataSize {
		return nil, newError(op, "reply too large", errReplyMalformed)
	}
	data, ok := replyData(body)
	if !ok {
		return nil, newError(op, "reply is not sealed", errReplyMalformed)
	}
	raw, ok := decodeData(data)
	if !ok {
		return nil, newError(op, "invalid base64 in reply", errReplyMalformed)
	}
	switch {
	case raw[0] == o.keys.version:
	case raw[0] == versionReplyHPKE || raw[0] == versionReplySecret:
		return nil, newError(op, "reply sealed in the other mode", errReplyUnsupported)
	default:
		return nil, newError(op, "unsupported reply version", errReplyUnsupported)
	}
	if len(raw) < replyOverhead {
		return nil, newError(op, "truncated reply", errReplyMalformed)
	}
	a, iv, err := o.keys.aead(raw[1 : 1+replyNonceLen])
	if err != nil {
		return nil, newError(op, "key derivation failed", ErrUnauthentic)
	}
	pt, err := a.Open(nil, iv, raw[1+replyNonceLen:], raw[:1])
	if err != nil {
		return nil, newError(op, "reply authentication failed", ErrUnauthentic)
	}
	return pt, nil
}

// replyData extracts the "data" string of a sealed reply body, which must be a
// JSON object with exactly that one member (exact case).
func replyData(body []byte) (string, bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return "", false
	}
	// The form sealers write, {"data":"..."} with only printable ASCII and
	// nothing escaped in the value, is that object as it stands; any other
	// form is left to encoding/json.
	if v, ok := bytes.CutPrefix(body, []byte(replyBodyPrefix)); ok {
		if v, ok := bytes.CutSuffix(v, []byte(replyBodySuffix)); ok && plainString(v) {
			return string(v), true
		}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || len(m) != 1 {
		return "", false
	}
	v, ok := m["data"]
	if !ok || len(v) == 0 || v[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// plainString reports whether b is printable ASCII without '"' or '\\': a
// JSON string's contents that read as they stand.
func plainString(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
