package doctor

import (
	"errors"
	"fmt"

	"github.com/licensekit/licensekit-go/internal/verdict"
	"github.com/licensekit/licensekit-go/license"
)

// replyKind is who answered a request, as the doctor reports it.
type replyKind int

const (
	// replyNone: no answer (network error, timeout).
	replyNone replyKind = iota
	// replyServer: the licence server itself answered, with a success or a
	// refusal.
	replyServer
	// replyGateway: something else on the path answered: a proxy's 407, a
	// redirect, an HTML page, any body without the spec's shape.
	replyGateway
	// replyServerError: 5xx, 429 or 408: the server or a gateway failed.
	replyServerError
	// replyUnauthentic: a reply that does not open with the client's keys.
	replyUnauthentic
	// replyMalformed: a reply that opened but does not follow the v2 spec.
	replyMalformed
	// replyTLS: the server's certificate did not verify.
	replyTLS
	// replyLocal: the request failed on this machine (a client fault).
	replyLocal
	// replyCredentials: the server answered but did not authenticate this
	// client (license.ErrCredentialsRejected): a configuration fault.
	replyCredentials
)

// reading is the doctor's reading of one outcome.
type reading struct {
	kind    replyKind
	status  int    // HTTP status, 0 when none arrived
	message string // the server's refusal text, already redacted by the SDK
	detail  string // one phrase for a finding
}

// classify is the one place where the doctor reads a verdict on a reply.
// It decides nothing itself: the SDK's classifier (internal/verdict, which
// every call of the client goes through) has already said whether the
// licence server answered (an *APIError), and if not, why (the Detail and
// Reason of its *Error). classify only turns that into the doctor's words.
func classify(err error) reading {
	if err == nil {
		return reading{kind: replyServer, detail: "the server accepted the request"}
	}
	var api *license.APIError
	if errors.As(err, &api) {
		return reading{kind: replyServer, status: api.Status, message: api.Message,
			detail: "the licence server refused: " + api.Message}
	}
	r := reading{kind: replyNone, detail: errText(err)}
	var ve *license.Error
	if !errors.As(err, &ve) {
		return r
	}
	r.status = ve.Status
	if ve.Reason != "" {
		r.detail = ve.Reason
	}
	if ve.Category == verdict.ClientFault {
		r.kind = replyLocal
		return r
	}
	if errors.Is(err, license.ErrCredentialsRejected) {
		r.kind = replyCredentials
		return r
	}
	switch ve.Detail {
	case verdict.DetailIntercepted:
		r.kind = replyGateway
		switch {
		case r.status == 407:
			r.detail = "the proxy requires authentication (HTTP 407)"
		case r.status != 0:
			r.detail = fmt.Sprintf("HTTP %d, %s", r.status, ve.Reason)
		}
	case verdict.DetailTransient:
		r.kind, r.detail = replyServerError, "HTTP "+statusText(r.status)
	case verdict.DetailUnauthenticated:
		r.kind = replyUnauthentic
	case verdict.DetailMalformed, verdict.DetailTooLarge:
		r.kind = replyMalformed
	case verdict.DetailTLS:
		r.kind = replyTLS
	}
	return r
}
