package doctor

import (
	"cmp"
	"errors"
	"fmt"

	"github.com/licensekit/licensekit-go/internal/verdict"
	"github.com/licensekit/licensekit-go/license"
)

// reading is the doctor's reading of one outcome, in the SDK's own
// classification (internal/verdict): the doctor keeps no reply kinds of its
// own.
type reading struct {
	answered    bool           // the licence server answered: a success or an *APIError
	fault       bool           // the request failed on this machine (verdict.ClientFault)
	credentials bool           // license.ErrCredentialsRejected: a configuration fault
	why         verdict.Detail // the *license.Error's Detail; DetailNone without one
	status      int            // HTTP status, 0 when none arrived
	message     string         // the server's refusal text, already redacted by the SDK
	detail      string         // one phrase for a finding
}

// gateway reports whether a proxy or gateway answered in the server's place.
func (r reading) gateway() bool {
	return !r.answered && !r.fault && !r.credentials && r.why == verdict.DetailIntercepted
}

// classify is the one place where the doctor reads a verdict on a reply.
// It decides nothing: the SDK's classifier has said whether the licence
// server answered (an *APIError) and if not, why (the *Error's Detail and
// Reason); classify only puts that in the doctor's words.
func classify(err error) reading {
	if err == nil {
		return reading{answered: true, detail: "the server accepted the request"}
	}
	if api, ok := errors.AsType[*license.APIError](err); ok {
		return reading{answered: true, status: api.Status, message: api.Message,
			detail: "the licence server refused: " + api.Message}
	}
	r := reading{detail: errText(err)}
	ve, ok := errors.AsType[*license.Error](err)
	if !ok {
		return r
	}
	r.status, r.why = ve.Status, ve.Detail
	r.detail = cmp.Or(ve.Reason, r.detail)
	switch {
	case ve.Category == verdict.ClientFault:
		r.fault = true
	case errors.Is(err, license.ErrCredentialsRejected):
		r.credentials = true
	case ve.Detail == verdict.DetailIntercepted && r.status == 407:
		r.detail = "the proxy requires authentication (HTTP 407)"
	case ve.Detail == verdict.DetailIntercepted && r.status != 0:
		r.detail = fmt.Sprintf("HTTP %d, %s", r.status, ve.Reason)
	case ve.Detail == verdict.DetailTransient:
		r.detail = "HTTP " + statusText(r.status)
	}
	return r
}
