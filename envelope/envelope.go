package envelope

import (
	"encoding/base64"
	"errors"
)

// MaxDataSize is the largest input, in bytes, that [Opener.Open] accepts as a
// request's data string and that [ReplyOpener.OpenReply] accepts as a sealed
// reply body. Seal and SealReply refuse to produce anything larger, so every
// output of this package can be opened again.
const MaxDataSize = 1 << 20

// Sealer seals request payloads (client side). Implementations are safe for
// concurrent use.
type Sealer interface {
	// Seal encrypts plaintext for a request authenticated by apiKey. It returns
	// the request's "data" value and a ReplyOpener bound to this one request.
	Seal(apiKey string, plaintext []byte) (data string, reply ReplyOpener, err error)
}

// ReplyOpener turns the HTTP reply body of one request into plaintext JSON.
// Implementations are safe for concurrent use and may be used more than once.
type ReplyOpener interface {
	// OpenReply returns the plaintext reply. When the request did not ask for a
	// sealed reply, it returns body unchanged. When it did, a plain or invalid
	// body is an error matching ErrUnauthentic (fail closed).
	OpenReply(body []byte) ([]byte, error)
}

// Opener opens request payloads (server side). Implementations are safe for
// concurrent use.
type Opener interface {
	// Open decrypts the "data" value of a request that carried apiKey. It
	// returns the plaintext and a ReplySealer bound to this one request. The
	// openers of this package return errors that are an [*Error] matching
	// exactly one of ErrMalformed, ErrUnauthentic and ErrUnsupportedVersion.
	Open(apiKey string, data string) (plaintext []byte, reply ReplySealer, err error)
}

// ReplySealer seals the reply to one opened request. Implementations are safe
// for concurrent use.
type ReplySealer interface {
	// Requested reports whether the client asked for a sealed reply (a flag
	// carried in the authenticated header).
	Requested() bool
	// SealReply returns the complete HTTP body for a sealed reply:
	// JSON {"data":"<std base64>"}. Each call draws a fresh response nonce. It
	// fails when the client did not ask for a sealed reply, because such a
	// client could not read it.
	SealReply(plaintext []byte) ([]byte, error)
}

// Option configures a Sealer or an Opener.
type Option func(*options)

type options struct {
	sealedReplies bool
}

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// WithSealedReplies makes a Sealer ask for, and require, sealed replies: every
// request carries the "sealed reply requested" flag, and its ReplyOpener
// rejects any body that is not a valid sealed reply to that very request with
// an error matching ErrUnauthentic.
//
// Given to an Opener, it makes Open refuse (with ErrMalformed) requests that do
// not ask for a sealed reply, for servers that insist on sealed replies.
func WithSealedReplies() Option {
	return func(o *options) { o.sealedReplies = true }
}

// Error categories. Every error returned by this package is an [*Error] whose
// Err field holds one of these (or, for OpenReply, a combination that also
// matches ErrUnauthentic). Match them with errors.Is.
var (
	// ErrMalformed means the input is not a well-formed envelope: bad base64,
	// wrong length, reserved bits set, too large.
	ErrMalformed = errors.New("envelope: malformed")
	// ErrUnauthentic means the input is well formed but does not authenticate:
	// it was sealed to another key, under another API key, or was altered. Every
	// OpenReply failure matches it.
	ErrUnauthentic = errors.New("envelope: unauthentic")
	// ErrUnsupportedVersion means the version byte or the cipher suite is one
	// this opener does not implement.
	ErrUnsupportedVersion = errors.New("envelope: unsupported version")
	// ErrTooLarge means Seal or SealReply was given a plaintext whose envelope
	// would exceed MaxDataSize.
	ErrTooLarge = errors.New("envelope: too large")
	// ErrNotRequested means SealReply was called for a request that did not ask
	// for a sealed reply.
	ErrNotRequested = errors.New("envelope: sealed reply not requested")

	errReplyMalformed   = errors.Join(ErrUnauthentic, ErrMalformed)
	errReplyUnsupported = errors.Join(ErrUnauthentic, ErrUnsupportedVersion)
)

// Error describes a failure of this package. Its text never contains key
// material, API keys or payloads.
type Error struct {
	// Op is the operation that failed: "seal", "open", "seal reply",
	// "open reply", "parse key", "generate key" or "new" (a constructor).
	Op string
	// Reason is a short fixed description, such as "truncated data".
	Reason string
	// Err is the category (ErrMalformed, ErrUnauthentic, ...) or the
	// underlying cause.
	Err error

	// miss marks errors that only say "not for this opener", so MultiOpener
	// can prefer a more specific error from another opener.
	miss missKind
}

type missKind uint8

const (
	missNone missKind = iota // a specific error about the input
	missKey                  // right mode, another key
	missMode                 // another mode or an unknown version
)

// Error returns "envelope: <op>: <reason>", followed by the cause when Err is
// not one of the category sentinels.
func (e *Error) Error() string {
	s := "envelope: " + e.Op + ": " + e.Reason
	if e.Err != nil && !isCategory(e.Err) {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err, so errors.Is matches the category.
func (e *Error) Unwrap() error { return e.Err }

func isCategory(err error) bool {
	switch err {
	case ErrMalformed, ErrUnauthentic, ErrUnsupportedVersion, ErrTooLarge,
		ErrNotRequested, errReplyMalformed, errReplyUnsupported:
		return true
	}
	return false
}

func newError(op, reason string, err error) error {
	return &Error{Op: op, Reason: reason, Err: err}
}

// b64 is the encoding of data values and of sealed reply data: standard
// alphabet, padded, with canonical (zero) padding bits.
var b64 = base64.StdEncoding.Strict()

// decodeData decodes a base64 data string, rejecting anything that is not the
// canonical encoding of its bytes (embedded line breaks, non-zero padding
// bits), and bounds the input size first.
func decodeData(s string) ([]byte, bool) {
	if len(s) == 0 || len(s) > MaxDataSize || len(s)%4 != 0 {
		return nil, false
	}
	raw, err := b64.DecodeString(s)
	if err != nil || len(raw) == 0 || b64.EncodedLen(len(raw)) != len(s) {
		return nil, false
	}
	return raw, true
}

// encodedFits reports whether n raw bytes encode within MaxDataSize.
func encodedFits(n int) bool {
	return n >= 0 && n <= (MaxDataSize/4)*3
}
