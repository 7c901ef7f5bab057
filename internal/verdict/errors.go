package verdict

import (
	"cmp"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The sentinels, re-exported by package license under the same names and
// documented there (docs/errors.md has the full table). Every outcome of a
// call that is not a success matches exactly one of the three categories.
var (
	// ErrUnreachable: not the licence server's own word; grace applies.
	ErrUnreachable = errors.New("license: server unreachable")
	// ErrRefused: the licence server's own no; no grace applies.
	ErrRefused = errors.New("license: server refused")
	// ErrClientFault: the call failed on this machine; grace applies.
	ErrClientFault = errors.New("license: client-side failure")
)

// Details of ErrUnreachable. Each also matches ErrUnreachable.
var (
	// ErrIntercepted: a proxy or gateway answered (DetailIntercepted).
	ErrIntercepted error = &sentinel{"license: a proxy or gateway answered instead of the licence server", ErrUnreachable}
	// ErrUnauthenticated: a reply did not open (DetailUnauthenticated).
	ErrUnauthenticated error = &sentinel{"license: unauthenticated reply", ErrUnreachable}
	// ErrMalformedReply: a reply breaks the spec (DetailMalformed or
	// DetailTooLarge).
	ErrMalformedReply error = &sentinel{"license: malformed reply", ErrUnreachable}
)

// Kinds of ErrRefused (see Kind). Each also matches ErrRefused.
var (
	ErrRevoked         error = &sentinel{"license: licence revoked", ErrRefused}
	ErrSeatLimit       error = &sentinel{"license: seat limit reached", ErrRefused}
	ErrExpired         error = &sentinel{"license: licence expired", ErrRefused}
	ErrUnknownInstance error = &sentinel{"license: instance unknown to the server", ErrRefused}
)

// sentinel is a detail error that also matches its category, so that
// errors.Is(ErrIntercepted, ErrUnreachable) holds.
type sentinel struct {
	msg    string
	parent error
}

func (s *sentinel) Error() string        { return s.msg }
func (s *sentinel) Is(target error) bool { return target == s.parent }

// Category is the verdict on one call.
type Category uint8

// The categories of Outcome.
const (
	// Success: the licence server's word, yes. The reply decoded.
	Success Category = iota
	// Refused: the licence server's word, no.
	Refused
	// Unreachable: no trustworthy answer. Grace applies.
	Unreachable
	// ClientFault: the call failed on this machine.
	ClientFault
	// AlreadyEnded: end_session answered with the spec's bare 422, so the
	// session is over either way. It never changes a licence verdict.
	AlreadyEnded
)

var categoryNames = [...]string{"success", "refused", "unreachable", "client fault", "already ended"}

// String returns the category's name, such as "unreachable".
func (c Category) String() string { return enumName(categoryNames[:], c, "Category") }

func enumName[T ~uint8](names []string, v T, typ string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(int(v)) + ")"
}

// Detail refines the Unreachable and ClientFault categories.
type Detail uint8

// The details of an *Error.
const (
	// DetailNone: no finer reason.
	DetailNone Detail = iota
	// DetailNetwork: no reply arrived (dial, reset, DNS, cut body).
	DetailNetwork
	// DetailTimeout: an attempt timed out or the caller's context ended.
	DetailTimeout
	// DetailTLS: the server's certificate did not verify.
	DetailTLS
	// DetailTransient: 5xx, 429 or 408, whatever the body.
	DetailTransient
	// DetailIntercepted: a proxy or gateway answered (see ErrIntercepted).
	DetailIntercepted
	// DetailUnauthenticated: a reply did not open (see ErrUnauthenticated).
	DetailUnauthenticated
	// DetailMalformed: a reply that does not follow the spec.
	DetailMalformed
	// DetailTooLarge: a reply over the response cap.
	DetailTooLarge
	// DetailUnsealable: the request could not be built or sealed.
	DetailUnsealable
	// DetailEnvelopeRejected: the server rejected the request's envelope
	// without processing it (see EnvelopeRejection).
	DetailEnvelopeRejected
)

var detailNames = [...]string{"", "network", "timeout", "tls", "transient status", "intercepted",
	"unauthenticated reply", "malformed reply", "reply too large", "unsealable request", "envelope rejected"}

// EnvelopeRejection is the Cause of an unreachable *Error whose Detail is
// DetailEnvelopeRejected: the server's plain envelope-level rejection (see
// envelope/FORMAT.md). It is never a licence verdict: anyone on the path can
// send one.
type EnvelopeRejection struct {
	// Endpoint is the v2 endpoint.
	Endpoint string
	// Status is the HTTP status.
	Status int
	// Code is the rejection code, such as envelope.CodeStale.
	Code string
	// ServerTime is the server's clock when it rejected the request, or zero.
	ServerTime time.Time
}

// Error implements error.
func (e *EnvelopeRejection) Error() string {
	return "license: " + e.Endpoint + ": server rejected the envelope (HTTP " + strconv.Itoa(e.Status) + ", " + e.Code + ")"
}

// String returns the detail's name, such as "intercepted".
func (d Detail) String() string { return enumName(detailNames[:], d, "Detail") }

// Error is a failed call that is not a refusal: its Category is Unreachable
// or ClientFault. Every text in it went through the client's Redactor.
type Error struct {
	// Endpoint is the v2 endpoint, such as "register_instance", or the
	// local step ("fingerprint") for a client fault.
	Endpoint string
	// Category is Unreachable or ClientFault.
	Category Category
	// Detail is the finer reason.
	Detail Detail
	// Status is the HTTP status of the last reply, 0 when none arrived.
	Status int
	// Attempts is the number of HTTP attempts made.
	Attempts int
	// RetryAfter is the server's Retry-After, capped, or 0.
	RetryAfter time.Duration
	// Reason is a short, redacted description of the cause, such as
	// "connection refused" or "HTML page".
	Reason string
	// Next says what the SDK does next, such as "will retry"; "" to omit.
	Next string
	// Cause is the underlying error (a context, transport, envelope or
	// wire error) for errors.Is and errors.As. Its text is never printed:
	// it may hold unredacted network text.
	Cause error
	// Credentials is set when the server answered but did not
	// authenticate this client (see ErrCredentialsRejected): the error
	// then names the likely causes. The category stays Unreachable.
	Credentials bool
}

// Error renders one line: what failed, why, and what happens next, such as
// "license: register_instance: server unreachable after 3 attempts
// (connection refused); will retry".
func (e *Error) Error() string {
	b := head(e.Endpoint)
	switch {
	case e.Credentials && e.Category == Unreachable:
		b.WriteString(credentialsHead)
	case e.Category == ClientFault && e.Detail == DetailUnsealable:
		b.WriteString("request cannot be sealed")
	case e.Category == ClientFault:
		b.WriteString("client-side failure")
	case e.Detail == DetailIntercepted:
		b.WriteString("a proxy or gateway answered instead of the licence server")
	case e.Detail == DetailUnauthenticated:
		b.WriteString("unauthenticated reply, not from the licence server")
	case e.Detail == DetailMalformed:
		b.WriteString("malformed reply")
	case e.Detail == DetailTooLarge:
		b.WriteString("reply too large")
	default:
		b.WriteString("server unreachable")
	}
	if e.Attempts > 1 {
		b.WriteString(" after " + strconv.Itoa(e.Attempts) + " attempts")
	}
	var paren []string
	if e.Status != 0 {
		paren = append(paren, "HTTP "+strconv.Itoa(e.Status))
	}
	if e.Reason != "" {
		paren = append(paren, e.Reason)
	}
	if len(paren) > 0 {
		b.WriteString(" (" + strings.Join(paren, ": ") + ")")
	}
	if e.Credentials && e.Category == Unreachable {
		b.WriteString(": " + CredentialsCauses)
	}
	if e.Next != "" {
		b.WriteString("; " + e.Next)
	}
	return b.String()
}

// head starts an error text: "license: <endpoint>: ", or "license: ".
func head(endpoint string) *strings.Builder {
	b := &strings.Builder{}
	b.WriteString("license: ")
	if endpoint != "" {
		b.WriteString(endpoint + ": ")
	}
	return b
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is matches the category and the detail sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnreachable:
		return e.Category == Unreachable
	case ErrClientFault:
		return e.Category == ClientFault
	case ErrIntercepted:
		return e.Category == Unreachable && e.Detail == DetailIntercepted
	case ErrUnauthenticated:
		return e.Category == Unreachable && e.Detail == DetailUnauthenticated
	case ErrMalformedReply:
		return e.Category == Unreachable && (e.Detail == DetailMalformed || e.Detail == DetailTooLarge)
	case ErrCredentialsRejected:
		return e.Category == Unreachable && e.Credentials
	}
	return false
}

// APIError is a refusal by the licence server: a failure reply that opened
// (sealed mode) or the spec's failure shape (unsealed mode). Its Is method
// matches ErrRefused and the sentinel of its Kind.
type APIError struct {
	// Endpoint is the v2 endpoint, such as "begin_session".
	Endpoint string
	// Status is the HTTP status the refusal came with (200 is possible).
	Status int
	// Message is the server's error text, redacted, bounded and printable.
	Message string
	// Time is the server's time text, redacted and bounded.
	Time string
	// Kind is what the refusal rules made of Message.
	Kind Kind
	// Sealed reports whether the refusal came in a sealed reply, which
	// nobody on the path can forge.
	Sealed bool
}

// Error renders "license: <endpoint>: refused by the licence server (HTTP
// <status>): <message>".
func (e *APIError) Error() string {
	b := head(e.Endpoint)
	b.WriteString("refused by the licence server")
	if e.Status != 0 && e.Status != 200 {
		b.WriteString(" (HTTP " + strconv.Itoa(e.Status) + ")")
	}
	b.WriteString(": " + cmp.Or(e.Message, "no reason given"))
	return b.String()
}

// Is matches ErrRefused, and the kind's sentinel.
func (e *APIError) Is(target error) bool {
	if target == ErrRefused {
		return true
	}
	return target != nil && int(e.Kind) < len(kindSentinels) && target == kindSentinels[e.Kind]
}
