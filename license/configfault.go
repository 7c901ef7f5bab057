package license

import (
	"github.com/licensekit/licensekit-go/internal/verdict"
)

// ErrCredentialsRejected matches an unreachable outcome in which the server
// answered but did not authenticate this client: an envelope-level
// "unauthentic" rejection, any other HTTP 401, or a 403 in the spec's
// failure shape that did not open as a sealed reply. The usual causes are a
// wrong APIKey, ServerPublicKey or SharedSecret, or a key id the server
// does not hold; the error's text names them. It is a configuration fault
// the vendor must fix, not a licence verdict: anything on the path can send
// such a reply, so offline grace applies as for every ErrUnreachable. The
// client reports it in Status.ConfigFault, with an EventConfigFault and an
// error-level log line at its first occurrence.
var ErrCredentialsRejected = verdict.ErrCredentialsRejected
