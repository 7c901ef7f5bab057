package transport

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Match them with errors.Is, never with ==. Do returns a
// *Error whose Is method puts each outcome in at most one of two classes,
// ErrUnreachable and ErrStatus. Neither means "refused": transport knows
// nothing of licences, and whether a reply is the licence server's word is
// for the caller to decide from the Response (see internal/verdict).
var (
	// ErrUnreachable matches an *Error when no final reply could be taken:
	// a network failure, a TLS failure (including a certificate that does
	// not verify), a timeout, a cancelled or expired context, a reply body
	// that could not be read or was over the response cap, or a transient
	// status (HTTP 408, 429 or any 5xx).
	ErrUnreachable = errors.New("transport: server unreachable")

	// ErrStatus matches an *Error when a reply arrived, its body was read,
	// and its status is final and outside 2xx: 1xx, 3xx (see ErrRedirect),
	// or a 4xx other than 408 and 429. It says what happened on the wire,
	// not who answered or what it means.
	ErrStatus = errors.New("transport: unexpected status")

	// ErrResponseTooLarge is the Err of an *Error when the reply body is
	// larger than the response cap (see WithMaxResponseBytes). The body is
	// never read past the cap. It is classed ErrUnreachable: no usable
	// reply was taken.
	ErrResponseTooLarge = errors.New("transport: response too large")

	// ErrRedirect is the Err of an *Error when the server answered with a
	// 3xx status. Redirects are never followed, because a POST body must not
	// be sent somewhere the caller did not choose. It is classed ErrStatus.
	ErrRedirect = errors.New("transport: redirect not followed")

	// ErrInvalidRequest is the Err of an *Error when a Request is malformed
	// (bad endpoint, negative MaxAttempts, unknown Retry). Nothing is sent.
	// It matches neither class: it is the caller's fault.
	ErrInvalidRequest = errors.New("transport: invalid request")
)

// Error describes a failed Do call. Do returns it (as error) for every
// outcome that is not a 2xx reply with a body within the cap. The fields
// are plain data: an Error built by hand classifies the same way as one
// returned by Do.
//
// Neither the fields nor Error() ever hold a request or reply body, an API
// key, token or URL query: no server text is carried. The reply itself, if
// one arrived, is in the *Response that Do returns with the error.
type Error struct {
	// Endpoint is the Request.Endpoint of the call, e.g. "begin_session",
	// or "" when the endpoint was invalid.
	Endpoint string
	// Status is the HTTP status of the last reply, or 0 when no reply
	// arrived.
	Status int
	// Attempts is the number of HTTP requests sent (or tried) for the call.
	// It is 0 when the call failed before the first attempt.
	Attempts int
	// RetryAfter is the server's Retry-After from the last reply, capped by
	// the client's Retry-After cap, or 0 when there was none.
	RetryAfter time.Duration
	// Err is the underlying cause, such as a net error, a context error,
	// ErrRedirect or ErrResponseTooLarge. It is nil when the status alone
	// says what went wrong. It never contains a body.
	Err error
}

// Error formats the failure as
// "transport: <endpoint>: HTTP <status> after <n> attempts: <cause>" ("1
// attempt" for one), where each part is left out when it is empty: the
// endpoint when invalid, the status when no reply arrived, the attempts when
// none was made, the cause when Err is nil (it loses a second
// "transport: "). With nothing to say it is "transport: failed".
func (e *Error) Error() string {
	s, head, detail := "transport: ", "", ""
	if e.Endpoint != "" {
		s += e.Endpoint + ": "
	}
	if e.Status != 0 {
		head = "HTTP " + strconv.Itoa(e.Status)
	}
	if e.Attempts > 0 {
		head = strings.TrimPrefix(head+" after "+strconv.Itoa(e.Attempts)+" attempt", " ")
		if e.Attempts > 1 {
			head += "s"
		}
	}
	if e.Err != nil {
		detail = strings.TrimPrefix(e.Err.Error(), "transport: ")
	}
	if head != "" && detail != "" {
		head += ": "
	}
	return s + cmp.Or(head+detail, "failed")
}

// Unwrap returns Err, so errors.Is and errors.As reach the cause (for
// example context.Canceled or ErrResponseTooLarge).
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the failure is of the unreachable class, that
// is whether errors.Is(e, ErrUnreachable) holds. A cancelled or expired
// context counts as unreachable. It is the single classification rule.
func (e *Error) Temporary() bool {
	switch s := e.Status; {
	case errors.Is(e.Err, ErrInvalidRequest):
		return false
	case errors.Is(e.Err, context.Canceled), errors.Is(e.Err, context.DeadlineExceeded):
		return true
	case s == 0, s == 408, s == 429, s >= 500: // no reply (network, TLS), or transient
		return true
	}
	// A reply with a final status: unreachable only when its body could
	// not be taken.
	return e.Err != nil && e.Err != ErrRedirect
}

// Is reports whether target is ErrUnreachable or ErrStatus and e belongs to
// that class. Other targets are matched through Unwrap.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnreachable:
		return e.Temporary()
	case ErrStatus:
		return !e.Temporary() && e.Status != 0 && (e.Err == nil || e.Err == ErrRedirect)
	}
	return false
}

// IsCertificateError reports whether err comes from verifying the server's
// certificate (an unknown authority, an invalid or expired certificate, a
// host name mismatch, unusable system roots). Do never retries such errors.
func IsCertificateError(err error) bool {
	return is[*tls.CertificateVerificationError](err) || is[x509.UnknownAuthorityError](err) ||
		is[x509.CertificateInvalidError](err) || is[x509.HostnameError](err) || is[x509.SystemRootsError](err)
}

func is[T error](err error) bool {
	_, ok := errors.AsType[T](err)
	return ok
}
