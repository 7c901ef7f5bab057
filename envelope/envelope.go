package envelope

import (
	"encoding/base64"
	"errors"
	"time"
)

// MaxDataSize is the largest input, in bytes, that [Opener.Open] accepts as a
// request's data string and that [ReplyOpener.OpenReply] accepts as a sealed
// reply body. Seal and SealReply refuse to produce anything larger, so every
// output of this package can be opened again.
const MaxDataSize = 1 << 20

// RequestIDSize is the size of the random request id in every format 2
// request header.
const RequestIDSize = 16

// MaxEndpointLen is the longest endpoint name a request header can carry.
const MaxEndpointLen = 64

// Request names the call a Sealer seals: who sends it, to which endpoint and
// when. Its fields are authenticated by the built-in formats.
type Request struct {
	// APIKey is the client's API key. The built-in modes send it as the
	// request's "key" and bind the envelope to it; a custom scheme may
	// ignore it and put something else in Sealed.Key.
	APIKey string
	// Endpoint is the v2 endpoint the request is posted to, such as
	// "begin_session": 1 to MaxEndpointLen bytes of printable ASCII without
	// spaces. The server rejects the envelope at any other endpoint.
	Endpoint string
	// Time is the client's timestamp, already corrected by any clock offset
	// the client has learned. The zero value means time.Now().
	Time time.Time
	// Carried marks a request that a person carries to the server by file
	// (offline activation): the built-in formats set the "carried" flag in
	// the authenticated header, and a server applies the longer carried
	// window to it (see CarriedWindow). A carried request needs a Sealer
	// built with WithSealedReplies.
	Carried bool
}

// Sealed is one sealed request: the two members of the request body and the
// opener for its reply.
type Sealed struct {
	// Key is the request's "key" value. The built-in modes set it to
	// Request.APIKey; a custom scheme owns it (a wrapped content key, say).
	Key string
	// Data is the request's "data" value.
	Data string
	// ID is the request's random id, zero for schemes that have none.
	ID [RequestIDSize]byte
	// Reply opens the HTTP reply to this one request.
	Reply ReplyOpener
}

// Sealer seals request payloads (client side). Implementations are safe for
// concurrent use.
type Sealer interface {
	// Seal encrypts plaintext for req. The result carries the request's
	// "key" and "data" values and a ReplyOpener bound to this one request.
	// Each call draws fresh randomness, so sealing the same input twice
	// gives two different requests; a client retrying one request resends
	// the same Sealed body.
	Seal(req Request, plaintext []byte) (Sealed, error)
	// RepliesAuthenticated reports whether every ReplyOpener of this Sealer
	// authenticates replies: it accepts only a reply that the holder of the
	// server's key sealed for that very request, and rejects everything else
	// with an error matching ErrUnauthentic. A client may then trust the
	// opened plaintext's verdict whatever the HTTP status said.
	RepliesAuthenticated() bool
}

// ReplyOpener turns the HTTP reply body of one request into plaintext JSON.
// Implementations are safe for concurrent use and may be used more than once.
type ReplyOpener interface {
	// OpenReply returns the plaintext reply. When the request did not ask for a
	// sealed reply, it returns body unchanged. When it did, a plain or invalid
	// body is an error matching ErrUnauthentic (fail closed).
	OpenReply(body []byte) ([]byte, error)
}

// Incoming is one request as a server received it.
type Incoming struct {
	// Key is the request's "key" value.
	Key string
	// Data is the request's "data" value.
	Data string
	// Endpoint is the endpoint the request was posted to, taken from the
	// URL path (such as "extend_session"), never from the request body.
	Endpoint string
}

// Opened is an opened request.
type Opened struct {
	// Plaintext is the request's payload.
	Plaintext []byte
	// Endpoint is the endpoint the client sealed the request for; Open has
	// checked that it equals Incoming.Endpoint.
	Endpoint string
	// Time is the client's authenticated timestamp (whole seconds). A Guard
	// checks it against the server's clock; Open does not.
	Time time.Time
	// ID is the client's authenticated random request id. A Guard uses it to
	// answer repeats from its cache.
	ID [RequestIDSize]byte
	// Carried reports the authenticated "carried" flag: the request was
	// sealed to be carried by file (see Request.Carried and CarriedWindow).
	Carried bool
	// Reply seals the reply to this one request.
	Reply ReplySealer
}

// Opener opens request payloads (server side). Implementations are safe for
// concurrent use.
type Opener interface {
	// Open decrypts and authenticates one request, including the endpoint
	// it was sealed for. The openers of this package return errors that are
	// an [*Error] matching exactly one of ErrMalformed, ErrUnauthentic and
	// ErrUnsupportedVersion. Open does not judge freshness: pass the result
	// to a Guard.
	Open(in Incoming) (*Opened, error)
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
// matches ErrUnauthentic; for Guard.Admit, ErrStale, ErrReplayed or
// ErrInProgress). Match them with errors.Is.
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
	// Op is the operation that failed: "seal", "open", "admit" (a Guard),
	// "seal reply", "open reply", "export reply opener", "import reply
	// opener", "parse key", "marshal key", "generate key" or "new" (a
	// constructor).
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
	switch e.Err {
	case nil, ErrMalformed, ErrUnauthentic, ErrUnsupportedVersion, ErrTooLarge,
		ErrNotRequested, errReplyMalformed, errReplyUnsupported,
		ErrStale, ErrReplayed, ErrInProgress:
		return s
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns Err, so errors.Is matches the category.
func (e *Error) Unwrap() error { return e.Err }

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

func encodedFits(n int) bool {
	return n >= 0 && n <= (MaxDataSize/4)*3
}
