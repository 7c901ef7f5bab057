package verdict

import (
	"errors"
	"net/http"

	"github.com/licensekit/licensekit-go/envelope"
)

// ErrCredentialsRejected: the server answered but did not authenticate this
// client (see credentialsRejected; license documents it). It also matches
// ErrUnreachable.
var ErrCredentialsRejected error = &sentinel{"license: the server did not authenticate this client", ErrUnreachable}

// CredentialsCauses names what to check when the server does not
// authenticate a client; an *Error with Credentials set ends with it.
const CredentialsCauses = "check the API key, the server public key or shared secret, and the key id against the server's settings"

const credentialsHead = "the server did not authenticate this client"

// Classify turns one call's outcome into exactly one category and one typed
// error (see the package documentation). docs/errors.md ("Outcome →
// category → state") lists every outcome in the order classify applies its
// rules, with its category, detail and state effect. An unreachable outcome
// in which the server did not authenticate the client is marked
// (Error.Credentials, ErrCredentialsRejected).
func Classify(in Input) Outcome {
	out := classify(in)
	if e, ok := out.Err.(*Error); ok && e.Category == Unreachable && credentialsRejected(e) {
		e.Credentials = true
	}
	return out
}

// credentialsRejected reports whether an unreachable error is a server's
// refusal to authenticate the client rather than a failure of the path or
// of the request's freshness.
func credentialsRejected(e *Error) bool {
	if rej, ok := errors.AsType[*EnvelopeRejection](e.Cause); ok {
		// Stale, replayed, malformed or in-progress requests are not a
		// credentials problem, whatever their status.
		return rej.Code == envelope.CodeUnauthentic
	}
	switch e.Status {
	case http.StatusUnauthorized:
		// Any answer read in full; a body cut short or too large says
		// nothing about who sent it.
		return e.Detail == DetailIntercepted || e.Detail == DetailUnauthenticated || e.Detail == DetailMalformed
	case http.StatusForbidden:
		// A plain v2 failure at 403 where a sealed reply was due: a server
		// that could not open the request cannot seal its answer. Other 403
		// pages are a firewall's or gateway's (ErrIntercepted).
		return e.Detail == DetailUnauthenticated
	}
	return false
}
