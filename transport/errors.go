package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Match them with errors.Is, never with ==: Do returns a
// *Error whose Is method maps each outcome onto exactly one of ErrUnreachable
// and ErrRefused.
var (
	// ErrUnreachable matches an *Error when the server could not give a
	// definitive answer: a network failure, a timeout, a cancelled or expired
	// context, HTTP 408, 429 or any 5xx status. Retrying later may succeed,
	// so offline grace applies.
	ErrUnreachable = errors.New("transport: server unreachable")

	// ErrRefused matches an *Error when the exchange failed in a way that
	// retrying cannot fix: any other 4xx status, a 3xx redirect (never
	// followed), a TLS certificate that does not verify, a reply larger than
	// the response cap on a 2xx status, or an invalid Request.
	ErrRefused = errors.New("transport: request refused")

	// ErrResponseTooLarge is the Err of an *Error when the reply body is
	// larger than the response cap (see WithMaxResponseBytes). The body is
	// never read past the cap. On a 2xx status the error is classed
	// ErrRefused: the server answered, but not in a shape the protocol
	// allows, and asking again will not change that. On an error status
	// (say a 503 with a large HTML page) the status decides the class.
	ErrResponseTooLarge = errors.New("transport: response too large")

	// ErrRedirect is the Err of an *Error when the server answered with a
	// 3xx status. Redirects are never followed, because a POST body must not
	// be sent somewhere the caller did not choose. It is classed ErrRefused.
	ErrRedirect = errors.New("transport: redirect refused")

	// ErrInvalidRequest is the Err of an *Error when a Request is malformed
	// (bad endpoint, negative MaxAttempts, unknown Retry). Nothing is sent.
	// It is classed ErrRefused.
	ErrInvalidRequest = errors.New("transport: invalid request")
)

// maxMessageLen bounds Error.Message, in bytes.
const maxMessageLen = 256

// Error describes a failed Do call. Do returns it (as error) for every
// outcome that is not a 2xx reply with a body within the cap. The fields
// are plain data: an Error built by hand classifies the same way as one
// returned by Do.
//
// Neither the fields nor Error() ever hold a request or reply body, an API
// key, token or URL query. Message is the one piece of server text carried,
// and Do strips control characters from it, truncates it and redacts any
// string from the request body that the server echoed back.
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
	// Message is the server's "error" text when the last reply body was
	// a JSON object with an "error" string field, else "".
	Message string
	// Err is the underlying cause, such as a net error, a context error,
	// ErrRedirect or ErrResponseTooLarge. It is nil when the status alone
	// says what went wrong. It never contains a body.
	Err error
}

// Error formats the failure as
// "transport: <endpoint>: HTTP <status> after <n> attempts: <detail>", where
// the status part is left out when no reply arrived, and the detail is the
// server's message, else the cause (without a second "transport: ").
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("transport: ")
	if e.Endpoint != "" {
		b.WriteString(e.Endpoint)
		b.WriteString(": ")
	}
	sep := ""
	if e.Status != 0 {
		b.WriteString("HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
		sep = " "
	}
	if e.Attempts > 0 {
		b.WriteString(sep)
		b.WriteString("after ")
		b.WriteString(strconv.Itoa(e.Attempts))
		if e.Attempts == 1 {
			b.WriteString(" attempt")
		} else {
			b.WriteString(" attempts")
		}
		sep = ": "
	} else if sep != "" {
		sep = ": "
	}
	detail := e.Message
	if detail == "" && e.Err != nil {
		detail = strings.TrimPrefix(e.Err.Error(), "transport: ")
	}
	switch {
	case detail != "":
		b.WriteString(sep)
		b.WriteString(detail)
	case sep == "":
		b.WriteString("failed")
	}
	return b.String()
}

// Unwrap returns Err, so errors.Is and errors.As reach the cause (for
// example context.Canceled or ErrResponseTooLarge).
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the failure is of the unreachable class, that
// is whether errors.Is(e, ErrUnreachable) holds. A cancelled or expired
// context counts as unreachable.
func (e *Error) Temporary() bool { return unreachable(e.Status, e.Err) }

// Is reports whether target is ErrUnreachable or ErrRefused and e belongs to
// that class. Other targets are matched through Unwrap.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnreachable:
		return e.Temporary()
	case ErrRefused:
		return !e.Temporary()
	}
	return false
}

// unreachable is the single classification rule behind Temporary and Is.
func unreachable(status int, err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch {
	case status == 408, status == 429, status >= 500:
		return true
	case status >= 300, status > 0 && status < 200:
		return false
	}
	// No reply (status 0), or a 2xx whose body could not be taken.
	switch {
	case errors.Is(err, ErrResponseTooLarge),
		errors.Is(err, ErrRedirect),
		errors.Is(err, ErrInvalidRequest),
		isCertError(err):
		return false
	}
	return true
}

// isCertError reports whether err comes from verifying the server's
// certificate. Such errors are never retried and class as refused.
func isCertError(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.SystemRootsError](err); ok {
		return true
	}
	return false
}
