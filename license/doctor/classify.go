package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/transport"
)

// replyKind is who answered a request, as the doctor reports it.
type replyKind int

const (
	// replyNone: no answer (network error, timeout).
	replyNone replyKind = iota
	// replyServer: the licence server itself answered, with a success or a
	// refusal in the spec's failure shape (or a sealed one).
	replyServer
	// replyGateway: something else on the path answered: a proxy's 407, a
	// redirect, an HTML page, any body without the spec's shape.
	replyGateway
	// replyServerError: 5xx, 429 or 408: the server or a gateway failed.
	replyServerError
	// replyUnauthentic: a reply that does not open with the client's keys.
	replyUnauthentic
	// replyTLS: the server's certificate did not verify.
	replyTLS
)

// reading is the doctor's reading of one outcome.
type reading struct {
	kind    replyKind
	status  int    // HTTP status, 0 when none arrived
	message string // the server's refusal text, already sanitised by the SDK
	detail  string // one phrase for a finding
}

// classify is the one place where the doctor reads the SDK's verdict on a
// reply, so that it never decides on its own who answered. It relies on the
// license package's classification (ErrRefused for the licence server's
// own word, ErrUnreachable for everything else) and only adds the detail a
// diagnosis needs: which kind of "unreachable" it was.
//
// When the SDK's reply classifier (internal/verdict) is on main, re-point
// this function to it; nothing else in the package inspects replies.
func classify(err error) reading {
	if err == nil {
		return reading{kind: replyServer, detail: "the server accepted the request"}
	}
	r := reading{kind: replyNone, detail: errText(err)}
	var api *license.APIError
	var te *transport.Error
	if errors.As(err, &te) {
		r.status = te.Status
	}
	if errors.As(err, &api) {
		r.status, r.message = api.Status, api.Message
	}
	switch {
	case r.status == 407:
		// Never the licence server's word, whatever the SDK's category.
		r.kind, r.detail = replyGateway, "the proxy requires authentication (HTTP 407)"
	case errors.Is(err, transport.ErrRedirect) || (r.status >= 300 && r.status < 400):
		r.kind, r.detail = replyGateway, fmt.Sprintf("a redirect (HTTP %d) instead of a reply", r.status)
	case api != nil && api.Unauthenticated:
		r.kind, r.detail = replyUnauthentic, "a refusal that is not sealed by the server"
	case api != nil && api.Message == "":
		// A 4xx without the spec's failure shape: a proxy's or gateway's
		// page, not the licence server's word.
		r.kind, r.detail = replyGateway, fmt.Sprintf("HTTP %d with a body that is not a licence server reply", r.status)
	case errors.Is(err, license.ErrRefused):
		r.kind, r.detail = replyServer, "the licence server refused: "+r.message
	case r.status == 408 || r.status == 429 || r.status >= 500:
		r.kind, r.detail = replyServerError, "HTTP "+statusText(r.status)
	case errors.Is(err, envelope.ErrUnauthentic):
		r.kind, r.detail = replyUnauthentic, "the reply's seal does not verify"
	case errors.Is(err, envelope.ErrMalformed) || errors.Is(err, envelope.ErrUnsupportedVersion) ||
		errors.Is(err, transport.ErrResponseTooLarge) || errors.Is(err, wire.ErrProtocol):
		r.kind, r.detail = replyGateway, "the reply is not in the licence server's shape (an HTML or other page)"
	case isCert(err):
		r.kind = replyTLS
	case errors.Is(err, context.DeadlineExceeded):
		r.detail = "timed out"
	}
	return r
}

func isCert(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var hn x509.HostnameError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn)
}
