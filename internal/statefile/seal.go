package statefile

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Container layout constants.
const (
	// KeySize is the length in bytes of the key [Seal] and [Open] take.
	KeySize = 32
	// Overhead is how many bytes [Seal] adds to the plaintext: the 5-byte
	// header, the 12-byte nonce and the 16-byte tag.
	Overhead = headerLen + nonceLen + tagLen

	magic      = "LKST"
	version    = 1
	headerLen  = len(magic) + 1
	nonceLen   = 12
	tagLen     = 16
	deriveInfo = "licensekit state v1"
)

// newAEAD returns AES-256-GCM that draws a random nonce per seal and puts it
// in front of the ciphertext, exactly the container's nonce|ciphertext|tag.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// header returns the container header, with room for n more bytes.
func header(n int) []byte {
	return append(append(make([]byte, 0, headerLen+n), magic...), version)
}

// Seal encrypts plaintext into a version 1 container:
//
//	"LKST" | 0x01 | 12-byte random nonce | AES-256-GCM ciphertext | 16-byte tag
//
// The tag also covers "LKST" | 0x01 | aad, so [Open] must be given the same
// aad. key must be [KeySize] bytes, normally from [DeriveKey]; any other
// length is an error that does not match [ErrCorrupt]. The result is
// len(plaintext)+[Overhead] bytes. Seal is safe for concurrent use; a key
// must not seal more than 2^32 states, because nonces are random.
func Seal(key []byte, aad, plaintext []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, &Error{Op: "seal", Err: err}
	}
	out := header(nonceLen + len(plaintext) + tagLen)
	return aead.Seal(out, nil, plaintext, append(header(len(aad)), aad...)), nil
}

// Open checks and decrypts a container made by [Seal] with the same key and
// aad. Anything wrong with blob (too short, unknown magic or version,
// altered bytes, another key or aad) is an error matching [ErrCorrupt];
// Open checks every length before slicing and never panics on any input. A
// key that is not [KeySize] bytes is a caller error that does not match
// ErrCorrupt. Open is safe for concurrent use.
func Open(key []byte, aad, blob []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, &Error{Op: "open", Err: err}
	}
	switch {
	case len(blob) < headerLen:
		return nil, &Error{Op: "open", Err: corrupt("truncated header (%d bytes)", len(blob))}
	case string(blob[:len(magic)]) != magic:
		return nil, &Error{Op: "open", Err: corrupt("not a state container")}
	case blob[len(magic)] != version:
		return nil, &Error{Op: "open", Err: corrupt("unsupported version %d", blob[len(magic)])}
	case len(blob) < Overhead:
		return nil, &Error{Op: "open", Err: corrupt("truncated (%d bytes, need at least %d)", len(blob), Overhead)}
	}
	plaintext, err := aead.Open(nil, nil, blob[headerLen:], append(header(len(aad)), aad...))
	if err != nil {
		return nil, &Error{Op: "open", Err: corrupt("authentication failed (altered, or another key or context)")}
	}
	if plaintext == nil {
		plaintext = []byte{}
	}
	return plaintext, nil
}

// DeriveKey derives a [KeySize]-byte key from parts with HKDF-SHA256 and
// the label "licensekit state v1". Each part is length-prefixed, so
// ("ab", "c") and ("a", "bc") give different keys, and the order of parts
// matters. The result depends only on the parts: the same parts always give
// the same key, which is what lets a restarted process open its state (the
// package documentation says what such a key does and does not protect).
func DeriveKey(parts ...[]byte) []byte {
	// ikm = label | uint64 count | (uint64 length | part)*. Starting with the
	// label keeps ikm above the 112 bits that FIPS 140-only mode requires.
	ikm := binary.BigEndian.AppendUint64([]byte(deriveInfo), uint64(len(parts)))
	for _, p := range parts {
		ikm = binary.BigEndian.AppendUint64(ikm, uint64(len(p)))
		ikm = append(ikm, p...)
	}
	// hkdf.Key fails only for keys over 255 hashes long or, in FIPS 140-only
	// mode, secrets under 112 bits: never here. Its nil key would make Seal
	// and Open fail with a key-length error, not a panic.
	key, _ := hkdf.Key(sha256.New, ikm, nil, deriveInfo, KeySize)
	return key
}
