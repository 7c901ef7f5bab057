package transport

import (
	"errors"
	"net"
)

// placeholderAddr is the address in the URL of a licensetest.Server that is
// not listening (NewUnstartedServer without Start): an IP literal, so nothing
// resolves it, and port 9 (discard), which is closed on almost every
// machine. Only the server's in-memory Transport serves that URL, so a dial
// to it means the client was built without that transport, the most common
// mistake in a testing/synctest test. license/licensetest/testclient tests
// that this stays in step with licensetest.
const placeholderAddr = "127.0.0.1:9"

// placeholderHint is appended to the error of a dial to placeholderAddr.
const placeholderHint = placeholderAddr + " is the placeholder address of an unstarted licensetest.Server: " +
	"send requests through its Transport(), e.g. license.WithRoundTripper(srv.Transport()), or call srv.Start()"

// hintError adds placeholderHint to a dial error. Unwrap keeps errors.Is and
// errors.As working on the cause (syscall.ECONNREFUSED, *net.OpError).
type hintError struct{ err error }

func (e *hintError) Error() string { return e.err.Error() + " (" + placeholderHint + ")" }
func (e *hintError) Unwrap() error { return e.err }

// withPlaceholderHint returns err with placeholderHint when err is a failed
// dial to placeholderAddr, and err unchanged otherwise.
func withPlaceholderHint(err error) error {
	op, ok := errors.AsType[*net.OpError](err)
	if !ok || op.Op != "dial" || op.Addr == nil || op.Addr.String() != placeholderAddr {
		return err
	}
	return &hintError{err: err}
}

// Hint returns the advice a transport error carries for the person reading
// it (today only the placeholder-address hint), or "" when it has none.
// Classifiers that shorten a network error to a few words keep it with this.
func Hint(err error) string {
	if _, ok := errors.AsType[*hintError](err); ok {
		return placeholderHint
	}
	return ""
}
