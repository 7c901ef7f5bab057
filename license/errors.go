package license

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/transport"
)

// Sentinel errors name the categories a caller acts on. Match them with
// errors.Is; the typed errors below carry the detail.
var (
	// ErrInvalidConfig matches every problem New finds in a Config.
	ErrInvalidConfig = errors.New("license: invalid config")
	// ErrUnreachable matches failures to get an answer from the server:
	// network errors, timeouts, 5xx, 429 and 408, and replies that cannot
	// be trusted (malformed, or failing the sealed-reply check). Offline
	// grace applies to these only.
	ErrUnreachable = errors.New("license: server unreachable")
	// ErrRefused matches a definitive no from the server. No grace applies.
	ErrRefused = errors.New("license: server refused")
	// ErrRevoked matches a refusal whose message says the licence was
	// revoked.
	ErrRevoked = errors.New("license: licence revoked")
	// ErrSeatLimit matches a refusal whose message says every seat is in use.
	ErrSeatLimit = errors.New("license: seat limit reached")
	// ErrExpired matches a refusal whose message says the licence expired.
	ErrExpired = errors.New("license: licence expired")
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
	// held by another live client.
	ErrStateLocked = errors.New("license: state directory in use")
	// ErrClosed reports a call on a client after Close.
	ErrClosed = errors.New("license: client closed")
	// ErrNotStarted reports a call that needs a session before one exists.
	ErrNotStarted = errors.New("license: no session")
)

// APIError is a refusal from the server: an HTTP 4xx status, or a reply of
// the spec's failure shape (success:false with an error text). Its Is method
// maps it onto ErrRefused and, by the server's message, onto ErrRevoked,
// ErrSeatLimit or ErrExpired.
type APIError struct {
	// Endpoint is the v2 endpoint, such as "begin_session".
	Endpoint string
	// Status is the HTTP status, 200 when a success status carried a
	// failure body.
	Status int
	// Message is the server's error text, bounded and sanitised.
	Message string
	// Time is the server's time text from the reply, if any.
	Time string
	// Unauthenticated is set when the client asked for sealed replies but
	// the refusal did not open: anyone on the path could have forged it, so
	// it counts as unreachable, not refused.
	Unauthenticated bool
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("license: ")
	b.WriteString(e.Endpoint)
	if e.Unauthenticated {
		b.WriteString(": unauthenticated refusal")
	} else {
		b.WriteString(": server refused")
	}
	if e.Status != 0 && e.Status != 200 {
		b.WriteString(" (HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is maps the refusal onto the sentinel categories.
func (e *APIError) Is(target error) bool {
	if e.Unauthenticated {
		return target == ErrUnreachable
	}
	msg := strings.ToLower(e.Message)
	switch target {
	case ErrRefused:
		return true
	case ErrRevoked:
		return strings.Contains(msg, "revoked")
	case ErrSeatLimit:
		return strings.Contains(msg, "seat")
	case ErrExpired:
		return strings.Contains(msg, "expired") && !strings.Contains(msg, "session")
	}
	return false
}

// Error wraps a failed operation with its name. Its category comes from the
// cause: errors.Is(err, ErrUnreachable) holds for transport failures and
// untrustworthy replies.
type Error struct {
	// Op is the operation, such as "begin session".
	Op string
	// Err is the cause: a *transport.Error, *APIError, protocol error or
	// context error.
	Err error
}

// Error implements error.
func (e *Error) Error() string { return "license: " + e.Op + ": " + trimPrefix(e.Err.Error()) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports ErrUnreachable for causes in the unreachable class.
func (e *Error) Is(target error) bool {
	return target == ErrUnreachable && unreachable(e.Err)
}

// trimPrefix drops a repeated "license: " so wrapped messages read once.
func trimPrefix(s string) string { return strings.TrimPrefix(s, "license: ") }

// unreachable reports whether err means no trustworthy answer arrived:
// every transport failure that is not a refusal (network, timeout, 5xx,
// 429, 408, TLS certificate errors, redirects), malformed or oversized
// replies, replies that fail the envelope's checks, unauthenticated
// refusals and context errors. TLS and redirect failures count here because
// the licence server itself was never reached.
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	var api *APIError
	if errors.As(err, &api) {
		return api.Unauthenticated
	}
	var te *transport.Error
	return errors.As(err, &te) ||
		errors.Is(err, transport.ErrUnreachable) ||
		errors.Is(err, wire.ErrProtocol) ||
		errors.Is(err, envelope.ErrUnauthentic) ||
		errors.Is(err, envelope.ErrMalformed) ||
		errors.Is(err, envelope.ErrUnsupportedVersion) ||
		errors.Is(err, errEnvelopeLevel) ||
		errors.Is(err, transport.ErrResponseTooLarge) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled)
}

// refused reports whether err is a definitive answer from the server.
func refused(err error) bool {
	var api *APIError
	return errors.As(err, &api) && !api.Unauthenticated
}

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
func (e *stateError) Unwrap() error        { return e.err }
func (e *stateError) Is(target error) bool { return target == e.kind }
