// Package scheme is the part of the legacyscheme example that a vendor
// imports, in the product and in the server: an existing licence server's
// own encryption, an RSA-OAEP envelope scheme made up for the example but
// shaped like the schemes such servers use, plugged into the SDK with
// license.WithSealer on the client and served with an envelope.Opener (and
// envelope.Guard) on the server. The program one directory up shows both
// sides.
//
// # The scheme
//
// The server holds an RSA key pair (2048 bits or more); the product is built
// with its public key, a PEM "PUBLIC KEY" block. For every request the client
// draws a fresh 32-byte AES-256 content key K and sends
//
//	key  = base64(RSA-OAEP-SHA256(server public key, K, label KeyLabel))
//	data = base64(version 0x01 ‖ timestamp (8, big-endian Unix seconds) ‖ request id (16) ‖
//	              nonce (12) ‖ AES-256-GCM(K, nonce, aad, payload))
//	aad  = RequestLabel ‖ 0x00 ‖ endpoint ‖ 0x00 ‖ the first 25 bytes of data
//
// so the request's "key" field belongs to the scheme: it carries the wrapped
// content key, not Config.APIKey. The endpoint, the timestamp and the request
// id are authenticated: an envelope posted to another endpoint does not open,
// and the server checks the timestamp against a window and keeps the request
// ids it has seen (envelope.Guard), answering a repeat with its first reply.
//
// The reply, success and refusal alike, is the JSON body {"data": base64(r)}:
//
//	r        = 0x81 ‖ response nonce (32) ‖ AES-256-GCM(rk, rn, 0x81, reply JSON)
//	rk ‖ rn  = HKDF-SHA256(secret K, salt request id ‖ response nonce,
//	                       info ReplyLabel ‖ 0x00 ‖ endpoint), 32 + 12 bytes
//
// Only the holder of the RSA private key learns K, so only the licence server
// can seal a reply, and a reply is bound to its request (K is fresh for every
// request; the salt names the request id) and endpoint. The Sealer therefore
// reports RepliesAuthenticated true and the client runs with the secure
// default: a plain or forged reply is "unreachable", never a verdict. The
// byte-level description a server in any language follows is in
// docs/server.md, section 6.
//
// license.New still requires Config.APIKey; this scheme does not send it.
package scheme

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
)

// Labels and version bytes of the scheme.
const (
	// KeyLabel is the RSA-OAEP label under which the content key is wrapped.
	KeyLabel = "legacyscheme v1 content key"
	// RequestLabel starts the associated data of a request.
	RequestLabel = "legacyscheme v1 request"
	// ReplyLabel starts the HKDF info of a reply key.
	ReplyLabel = "legacyscheme v1 reply"
	// Version is the first byte of a request's data.
	Version = 0x01
	// ReplyVersion is the first byte of a sealed reply.
	ReplyVersion = 0x81
	// MinRSABits is the smallest RSA modulus the scheme accepts.
	MinRSABits = 2048
)

const (
	contentKeyLen = 32
	nonceLen      = 12
	headerLen     = 1 + 8 + envelope.RequestIDSize // version, timestamp, request id
	replyNonceLen = 32
	tagLen        = 16
)

var b64 = base64.StdEncoding.Strict()

// ParsePublicKey parses a PEM "PUBLIC KEY" block (PKIX, as `openssl pkey
// -pubout` writes it) holding an RSA key of at least MinRSABits.
func ParsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("legacyscheme: no PEM PUBLIC KEY block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("legacyscheme: public key does not parse")
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("legacyscheme: not an RSA public key")
	}
	if pub.N.BitLen() < MinRSABits {
		return nil, errors.New("legacyscheme: RSA key shorter than 2048 bits")
	}
	return pub, nil
}

// ParsePrivateKey parses a PEM "PRIVATE KEY" (PKCS #8) or "RSA PRIVATE KEY"
// (PKCS #1) block holding an RSA key of at least MinRSABits.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("legacyscheme: no PEM block")
	}
	var priv *rsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("legacyscheme: private key does not parse")
		}
		p, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("legacyscheme: not an RSA private key")
		}
		priv = p
	case "RSA PRIVATE KEY":
		p, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("legacyscheme: private key does not parse")
		}
		priv = p
	default:
		return nil, errors.New("legacyscheme: no PEM private key block")
	}
	if priv.N.BitLen() < MinRSABits {
		return nil, errors.New("legacyscheme: RSA key shorter than 2048 bits")
	}
	return priv, nil
}

// Sealer is the client side of the scheme. It is safe for concurrent use.
type Sealer struct {
	pub *rsa.PublicKey
}

// NewSealer returns a Sealer for the server's public key, for
// license.WithSealer.
func NewSealer(pub *rsa.PublicKey) (*Sealer, error) {
	if pub == nil || pub.N == nil || pub.N.BitLen() < MinRSABits {
		return nil, errors.New("legacyscheme: an RSA public key of at least 2048 bits is required")
	}
	return &Sealer{pub: pub}, nil
}

// RepliesAuthenticated reports true: every reply opener of this Sealer
// accepts only a reply sealed under the request's own content key.
func (s *Sealer) RepliesAuthenticated() bool { return true }

// Seal wraps a fresh content key into the request's "key" and encrypts
// plaintext into its "data", binding req.Endpoint and req.Time. It ignores
// req.APIKey.
func (s *Sealer) Seal(req envelope.Request, plaintext []byte) (envelope.Sealed, error) {
	if !validEndpoint(req.Endpoint) {
		return envelope.Sealed{}, fail("seal", "invalid endpoint name", envelope.ErrMalformed)
	}
	if b64Len(headerLen+nonceLen+len(plaintext)+tagLen) > envelope.MaxDataSize {
		return envelope.Sealed{}, fail("seal", "plaintext too large", envelope.ErrTooLarge)
	}
	t := req.Time
	if t.IsZero() {
		t = time.Now()
	}
	var k [contentKeyLen]byte
	rand.Read(k[:])
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, s.pub, k[:], []byte(KeyLabel))
	if err != nil {
		return envelope.Sealed{}, fail("seal", "cannot wrap the content key", err)
	}
	raw := make([]byte, headerLen+nonceLen, headerLen+nonceLen+len(plaintext)+tagLen)
	raw[0] = Version
	binary.BigEndian.PutUint64(raw[1:9], uint64(t.Unix()))
	rand.Read(raw[9:headerLen]) // request id
	rand.Read(raw[headerLen:])  // nonce
	var id [envelope.RequestIDSize]byte
	copy(id[:], raw[9:headerLen])
	aead, err := newGCM(k[:])
	if err != nil {
		return envelope.Sealed{}, fail("seal", "cannot make the cipher", err)
	}
	raw = aead.Seal(raw, raw[headerLen:], plaintext, requestAAD(req.Endpoint, raw[:headerLen]))
	return envelope.Sealed{
		Key:   b64.EncodeToString(wrapped),
		Data:  b64.EncodeToString(raw),
		ID:    id,
		Reply: &replyKey{k: k, id: id, endpoint: req.Endpoint},
	}, nil
}

// Opener is the server side of the scheme: it unwraps the content key with
// the RSA private key and opens the request. It is safe for concurrent use.
// Pass what it opens to an envelope.Guard for the timestamp window and the
// replay cache, and answer its errors with envelope.RejectionReply.
type Opener struct {
	priv *rsa.PrivateKey
}

// NewOpener returns an Opener for the server's private key.
func NewOpener(priv *rsa.PrivateKey) (*Opener, error) {
	if priv == nil || priv.N == nil || priv.N.BitLen() < MinRSABits {
		return nil, errors.New("legacyscheme: an RSA private key of at least 2048 bits is required")
	}
	return &Opener{priv: priv}, nil
}

// Open unwraps in.Key and opens in.Data for in.Endpoint. Its errors are
// *envelope.Error values matching ErrMalformed, ErrUnsupportedVersion or
// ErrUnauthentic. A key that does not unwrap and data that does not
// authenticate give the same error, so that a caller cannot tell the two
// apart.
func (o *Opener) Open(in envelope.Incoming) (*envelope.Opened, error) {
	if len(in.Key) != b64Len(o.priv.Size()) {
		return nil, fail("open", "malformed key", envelope.ErrMalformed)
	}
	wrapped, err := b64.DecodeString(in.Key)
	if err != nil || len(wrapped) != o.priv.Size() {
		return nil, fail("open", "malformed key", envelope.ErrMalformed)
	}
	if len(in.Data) > envelope.MaxDataSize {
		return nil, fail("open", "data too large", envelope.ErrMalformed)
	}
	raw, err := b64.DecodeString(in.Data)
	if err != nil || len(raw) < headerLen+nonceLen+tagLen {
		return nil, fail("open", "malformed data", envelope.ErrMalformed)
	}
	if raw[0] != Version {
		return nil, fail("open", "unknown version", envelope.ErrUnsupportedVersion)
	}
	if binary.BigEndian.Uint64(raw[1:9]) > 1<<62 {
		return nil, fail("open", "timestamp out of range", envelope.ErrMalformed)
	}
	if !validEndpoint(in.Endpoint) {
		return nil, fail("open", "request does not authenticate", envelope.ErrUnauthentic)
	}
	k, err := rsa.DecryptOAEP(sha256.New(), nil, o.priv, wrapped, []byte(KeyLabel))
	if err != nil || len(k) != contentKeyLen {
		return nil, fail("open", "request does not authenticate", envelope.ErrUnauthentic)
	}
	aead, err := newGCM(k)
	if err != nil {
		return nil, fail("open", "cannot make the cipher", err)
	}
	pt, err := aead.Open(nil, raw[headerLen:headerLen+nonceLen], raw[headerLen+nonceLen:],
		requestAAD(in.Endpoint, raw[:headerLen]))
	if err != nil {
		return nil, fail("open", "request does not authenticate", envelope.ErrUnauthentic)
	}
	rk := &replyKey{endpoint: in.Endpoint}
	copy(rk.k[:], k)
	copy(rk.id[:], raw[9:headerLen])
	return &envelope.Opened{
		Plaintext: pt,
		Endpoint:  in.Endpoint,
		Time:      time.Unix(int64(binary.BigEndian.Uint64(raw[1:9])), 0),
		ID:        rk.id,
		Reply:     rk,
	}, nil
}

// replyKey holds one request's content key, request id and endpoint. On the
// client it opens the reply (envelope.ReplyOpener); on the server it seals
// it (envelope.ReplySealer).
type replyKey struct {
	k        [contentKeyLen]byte
	id       [envelope.RequestIDSize]byte
	endpoint string
}

// Requested reports true: every request of this scheme wants a sealed reply.
func (r *replyKey) Requested() bool { return true }

// SealReply returns the body {"data": base64(reply)} under a fresh response
// nonce.
func (r *replyKey) SealReply(plaintext []byte) ([]byte, error) {
	if len(`{"data":""}`)+b64Len(1+replyNonceLen+len(plaintext)+tagLen) > envelope.MaxDataSize {
		return nil, fail("seal reply", "plaintext too large", envelope.ErrTooLarge)
	}
	out := make([]byte, 1+replyNonceLen, 1+replyNonceLen+len(plaintext)+tagLen)
	out[0] = ReplyVersion
	rand.Read(out[1:])
	aead, nonce, err := r.replyCipher(out[1:])
	if err != nil {
		return nil, fail("seal reply", "cannot derive the reply key", err)
	}
	out = aead.Seal(out, nonce, plaintext, []byte{ReplyVersion})
	return json.Marshal(struct {
		Data string `json:"data"`
	}{b64.EncodeToString(out)})
}

// OpenReply accepts only a reply sealed for this request; anything else is
// an error matching envelope.ErrUnauthentic.
func (r *replyKey) OpenReply(body []byte) ([]byte, error) {
	if len(body) > envelope.MaxDataSize {
		return nil, fail("open reply", "reply too large", envelope.ErrUnauthentic)
	}
	var msg struct {
		Data *string `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(&msg) != nil || msg.Data == nil || dec.More() {
		return nil, fail("open reply", "not a sealed reply", envelope.ErrUnauthentic)
	}
	raw, err := b64.DecodeString(*msg.Data)
	if err != nil || len(raw) < 1+replyNonceLen+tagLen || raw[0] != ReplyVersion {
		return nil, fail("open reply", "not a sealed reply", envelope.ErrUnauthentic)
	}
	aead, nonce, err := r.replyCipher(raw[1 : 1+replyNonceLen])
	if err != nil {
		return nil, fail("open reply", "cannot derive the reply key", err)
	}
	pt, err := aead.Open(nil, nonce, raw[1+replyNonceLen:], raw[:1])
	if err != nil {
		return nil, fail("open reply", "reply does not authenticate", envelope.ErrUnauthentic)
	}
	return pt, nil
}

// replyCipher derives the reply's AES-256-GCM key and nonce.
func (r *replyKey) replyCipher(responseNonce []byte) (cipher.AEAD, []byte, error) {
	salt := append(r.id[:len(r.id):len(r.id)], responseNonce...)
	okm, err := hkdf.Key(sha256.New, r.k[:], salt, ReplyLabel+"\x00"+r.endpoint, 32+nonceLen)
	if err != nil {
		return nil, nil, err
	}
	aead, err := newGCM(okm[:32])
	return aead, okm[32:], err
}

func requestAAD(endpoint string, header []byte) []byte {
	aad := make([]byte, 0, len(RequestLabel)+1+len(endpoint)+1+len(header))
	aad = append(aad, RequestLabel...)
	aad = append(aad, 0)
	aad = append(aad, endpoint...)
	aad = append(aad, 0)
	return append(aad, header...)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// b64Len is the length of the standard base64 encoding of n bytes.
func b64Len(n int) int { return 4 * ((n + 2) / 3) }

// validEndpoint accepts 1 to envelope.MaxEndpointLen bytes of printable
// ASCII without spaces, as the built-in formats do.
func validEndpoint(s string) bool {
	if len(s) == 0 || len(s) > envelope.MaxEndpointLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func fail(op, reason string, err error) error {
	return &envelope.Error{Op: op, Reason: reason, Err: err}
}
