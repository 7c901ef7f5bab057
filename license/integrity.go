package license

import (
	"errors"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/verdict"
)

// ErrClockSkew matches the error of a call the server rejected as stale
// twice: once with the machine's clock and once more after the client
// corrected its clock offset from the server's time. It is in the
// unreachable category (grace applies); the *ClockSkewError carries the
// detail.
var ErrClockSkew = errors.New("license: clock skew")

// EnvelopeError is the server's envelope-level rejection of a request it did
// not process: the envelope was malformed, did not authenticate, was sealed
// for another endpoint, was stale or repeated a request id (see
// envelope/FORMAT.md). It is the Cause of an unreachable *Error: never a
// licence verdict, since anyone on the path can forge one, and nothing is
// persisted because of it.
type EnvelopeError = verdict.EnvelopeRejection

// ClockSkewError reports that the server rejected a request's timestamp
// even after the client corrected its clock offset once. It is the Cause of
// an unreachable *Error.
type ClockSkewError struct {
	// Endpoint is the v2 endpoint.
	Endpoint string
	// Offset is the correction the client applied: the server's time minus
	// this machine's wall clock, as learned from the first rejection.
	Offset time.Duration
	// ServerTime is the server's time in the last rejection.
	ServerTime time.Time
}

// Error implements error.
func (e *ClockSkewError) Error() string {
	return "license: " + e.Endpoint + ": request timestamp rejected as stale even after correcting the clock offset by " +
		e.Offset.Round(time.Second).String() + "; check this machine's clock"
}

// Is reports ErrClockSkew.
func (e *ClockSkewError) Is(target error) bool { return target == ErrClockSkew }

// integrity is the client's request-freshness state, guarded by the
// client's lock.
type integrity struct {
	// offset is added to the wall clock for request timestamps. It is
	// learned from a stale-timestamp rejection and kept for the life of the
	// client. It never moves a deadline: grace is measured on this machine's
	// clocks alone.
	offset time.Duration
}

// requestTime is the timestamp for a new request.
func (c *Client) requestTime() time.Time { return c.wallNow().Add(c.integ.offset) }

// afterStaleLocked handles a stale-timestamp rejection that carries the
// server's time: the first corrects the clock offset and asks for one more
// attempt with a fresh envelope; the second becomes a *ClockSkewError.
// Every other outcome passes through.
func (c *Client) afterStaleLocked(endpoint string, out verdict.Outcome, attempt int, offset *time.Duration) (verdict.Outcome, bool) {
	var rej *EnvelopeError
	if out.Category != verdict.Unreachable || !errors.As(out.Err, &rej) || rej.Code != envelope.CodeStale || rej.ServerTime.IsZero() {
		return out, false
	}
	if attempt > 0 {
		var ve *verdict.Error
		if errors.As(out.Err, &ve) {
			ce := *ve
			ce.Reason = "request timestamp rejected as stale even after correcting the clock offset by " +
				offset.Round(time.Second).String() + "; check this machine's clock"
			ce.Cause = errors.Join(&ClockSkewError{Endpoint: endpoint, Offset: *offset, ServerTime: rej.ServerTime}, rej)
			out.Err = &ce
		}
		return out, false
	}
	*offset = rej.ServerTime.Sub(c.wallNow())
	c.integ.offset = *offset
	c.log.Warn("server rejected the request timestamp; correcting the clock offset and retrying once",
		"endpoint", endpoint, "offset", offset.Round(time.Second).String())
	return out, true
}
