package license

import (
	"errors"
	"time"

	"github.com/licensekit/licensekit-go/internal/verdict"
)

// Sentinel errors name the categories a caller acts on. Match them with
// errors.Is; the typed errors below carry the detail. Every failed call,
// renewals included, matches exactly one of ErrUnreachable, ErrRefused and
// ErrClientFault (see the package doc, Errors, and docs/errors.md).
var (
	// ErrInvalidConfig matches every problem New finds in a Config.
	ErrInvalidConfig = errors.New("license: invalid config")
	// ErrUnreachable matches every outcome that is not the licence server's
	// own word: network errors, timeouts, 5xx, 429, 408, 407, redirects,
	// proxy and gateway pages, replies that are not authenticated (with
	// sealed replies, the default), malformed or oversized replies. Offline
	// grace applies to these only. The details ErrIntercepted,
	// ErrUnauthenticated and ErrMalformedReply say more.
	ErrUnreachable = verdict.ErrUnreachable
	// ErrRefused matches a definitive no from the licence server: a sealed
	// failure reply that opened or, with InsecureUnsealedReplies, the spec's
	// failure shape at 2xx or a 4xx other than 407 and 408. No grace
	// applies. The error is an *APIError.
	ErrRefused = verdict.ErrRefused
	// ErrClientFault matches a call that failed on this machine: the
	// fingerprint could not be read, or the request could not be built or
	// sealed (a custom sealer's error). The server said nothing, so offline
	// grace applies as for ErrUnreachable.
	ErrClientFault = verdict.ErrClientFault

	// ErrIntercepted matches an unreachable outcome where a proxy, gateway,
	// captive portal or firewall answered instead of the licence server: a
	// 407, a redirect, or an HTML page, empty body or JSON of another shape
	// at 2xx or 4xx. It also matches ErrUnreachable.
	ErrIntercepted = verdict.ErrIntercepted
	// ErrUnauthenticated matches a reply that did not open although sealed
	// replies are required (the default): a plain JSON reply, as a fake
	// server sends, or a broken or replayed seal. It also matches
	// ErrUnreachable.
	ErrUnauthenticated = verdict.ErrUnauthenticated
	// ErrMalformedReply matches a reply that does not follow the v2 spec,
	// including one whose token or fields would make the next request too
	// large to seal. It also matches ErrUnreachable.
	ErrMalformedReply = verdict.ErrMalformedReply

	// ErrRevoked, ErrSeatLimit, ErrExpired and ErrUnknownInstance match a
	// refusal of kind RefusalRevoked, RefusalSeatLimit, RefusalExpired and
	// RefusalUnknownInstance. Each also matches ErrRefused.
	ErrRevoked         = verdict.ErrRevoked
	ErrSeatLimit       = verdict.ErrSeatLimit
	ErrExpired         = verdict.ErrExpired
	ErrUnknownInstance = verdict.ErrUnknownInstance

	// ErrGraceExpired reports that the session lapsed and the offline grace
	// period ran out before the server could be reached.
	ErrGraceExpired = errors.New("license: offline grace period expired")
	// ErrClockRollback reports that the wall clock is more than five minutes
	// behind the latest time this machine had seen, so offline allowance is
	// refused until the server is reached again.
	ErrClockRollback = errors.New("license: clock rolled back")
	// ErrStateCorrupt reports a persisted state that was truncated, tampered
	// with, or sealed on another machine. The file is moved aside.
	ErrStateCorrupt = errors.New("license: persisted state corrupt")
	// ErrStateLocked reports that every state slot in the state directory is
	// held by another live client. It also matches ErrClientFault.
	ErrStateLocked = errors.New("license: state directory in use")
	// ErrClosed reports a call on a client after Close.
	ErrClosed = errors.New("license: client closed")
	// ErrNotStarted reports a call that needs a session before one exists.
	ErrNotStarted = errors.New("license: no session")
)

// APIError is a refusal by the licence server. Its fields are Endpoint,
// Status, Message (the server's text, redacted and bounded), Time, Kind
// (what the refusal rules made of Message) and Sealed (whether the refusal
// came in a sealed reply, which nobody on the path can forge). Its Is
// method matches ErrRefused and the sentinel of its Kind.
type APIError = verdict.APIError

// Error is a failed call that is not a refusal: it matches ErrUnreachable
// or ErrClientFault, as its Category says (and a detail such as
// ErrIntercepted or ErrCredentialsRejected). Its fields are Endpoint,
// Category, Detail, Status, Attempts, RetryAfter, Reason (short and
// redacted), Next, Cause (for errors.Is and errors.As; its text is never
// printed) and Credentials (set with ErrCredentialsRejected). Error() is
// one line, such as
// "license: register_instance: server unreachable after 3 attempts
// (connection refused); will retry".
type Error = verdict.Error

// RefusalKind is what a refusal means beyond "no", decided by refusal rules
// on the server's text (see WithRefusalRules).
type RefusalKind = verdict.Kind

// The refusal kinds.
const (
	RefusalOther           = verdict.KindOther
	RefusalRevoked         = verdict.KindRevoked
	RefusalSeatLimit       = verdict.KindSeatLimit
	RefusalExpired         = verdict.KindExpired
	RefusalUnknownInstance = verdict.KindUnknownInstance
)

// RefusalRule maps refusal texts to a kind: Phrase matches whole words in
// order, ignoring case and punctuation, optionally only on one Endpoint.
type RefusalRule = verdict.Rule

// RefusalRules is an ordered table of refusal rules; the first match wins
// and no match is RefusalOther. Its Classify method is a RefusalClassifier.
type RefusalRules = verdict.Rules

// RefusalClassifier names the kind of a refusal from the endpoint and the
// server's error text. It must be safe for concurrent use.
type RefusalClassifier func(endpoint, message string) RefusalKind

// DefaultRefusalRules returns a fresh copy of the default refusal rules.
// They match these phrases, whole words, case-insensitively:
//
//	revoked           "revoked", "revocation"
//	seat limit        "seat limit", "seats in use", "no seats", "no free
//	                  seats", "all seats", "too many seats",
//	                  "too many sessions", "session limit"
//	expired           "license expired", "licence expired", "license has
//	                  expired", "licence has expired", "license is expired",
//	                  "licence is expired", "expired license", "expired
//	                  licence"
//	unknown instance  "unknown instance", "instance not found", "no such
//	                  instance", "instance unknown"
//
// So "license expired; session not created" is RefusalExpired, "session
// expired" is RefusalOther, and "seatbelt required" is RefusalOther. A
// vendor whose server words its refusals otherwise passes its own table to
// WithRefusalRules, possibly appended to these.
func DefaultRefusalRules() RefusalRules { return verdict.DefaultRules() }

// refused reports whether err is a definitive answer from the server.
func refused(err error) bool { return errors.Is(err, ErrRefused) }

// stateError carries a state-category sentinel with its cause.
type stateError struct {
	kind error
	msg  string
	err  error
}

func (e *stateError) Error() string {
	s := e.kind.Error()
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}
func (e *stateError) Unwrap() error { return e.err }
func (e *stateError) Is(target error) bool {
	// Every state slot held by another client is a fault on this machine.
	return target == e.kind || (e.kind == ErrStateLocked && target == ErrClientFault)
}

// notSentError reports a call given a context that had already ended. It
// matches the context's error.
type notSentError struct {
	op  string
	err error
}

func (e *notSentError) Error() string {
	return "license: " + e.op + ": nothing was sent: the context had already ended (" + e.err.Error() + ")"
}
func (e *notSentError) Unwrap() error { return e.err }

// ErrClockSkew matches the error of a call the server rejected as stale
// twice: once with the machine's clock and once more after the client
// corrected its clock offset from the server's time. It is in the
// unreachable category (grace applies); the *ClockSkewError carries the
// detail.
var ErrClockSkew = errors.New("license: clock skew")

// EnvelopeError is the server's envelope-level rejection of a request it did
// not process: the envelope was malformed, did not authenticate, was sealed
// for another endpoint, was stale or repeated a request id (see
// envelope/FORMAT.md). It is the Cause of an unreachable *Error: never a
// licence verdict, since anyone on the path can forge one, and nothing is
// persisted because of it.
type EnvelopeError = verdict.EnvelopeRejection

// ClockSkewError reports that the server rejected a request's timestamp
// even after the client corrected its clock offset once. It is the Cause of
// an unreachable *Error.
type ClockSkewError struct {
	// Endpoint is the v2 endpoint.
	Endpoint string
	// Offset is the correction the client applied: the server's time minus
	// this machine's wall clock, as learned from the first rejection.
	Offset time.Duration
	// ServerTime is the server's time in the last rejection.
	ServerTime time.Time
}

// Error implements error.
func (e *ClockSkewError) Error() string {
	return "license: " + e.Endpoint + ": request timestamp rejected as stale even after correcting the clock offset by " +
		e.Offset.Round(time.Second).String() + "; check this machine's clock"
}

// Is reports ErrClockSkew.
func (e *ClockSkewError) Is(target error) bool { return target == ErrClockSkew }
