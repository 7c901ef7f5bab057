package license

import (
	"crypto/sha256"
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

// releaseFloor is the earliest request timestamp a clock offset may give:
// the start of this build's release year. A server's time before it is not
// a real server's. Requests are never stamped more than offsetSpan after it.
func releaseFloor() time.Time { return time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC) }

const offsetSpan = 50 * 365 * 24 * time.Hour

// integrity is the client's request-freshness state, guarded by the
// client's lock.
type integrity struct {
	// offset is added to the wall clock for request timestamps. It is kept
	// only once a request sealed with it was accepted: its reply was the
	// server's word (a sealed reply that opened, or, where sealing is off, a
	// spec-shaped answer). A stale-timestamp rejection, which anyone on the
	// path can forge, only proposes an offset for one retry. It never moves
	// a deadline: grace is measured on this machine's clocks alone.
	offset time.Duration
	// lost holds, per endpoint, the last sealed request whose reply was
	// lost (see resendLocked).
	lost map[string]*lostRequest
}

// lostRequest is a sealed request that may have reached the server although
// no answer came back.
type lostRequest struct {
	digest [sha256.Size]byte // of the plaintext
	sealed envelope.Sealed
	body   []byte
	offset time.Duration
	at     time.Time // monotonic: when it was sealed
}

// resendWithin is how long a lost request is resent rather than sealed
// again: well inside the servers' freshness window (FORMAT.md), so that
// the resend is still answered from the replay cache.
const resendWithin = envelope.DefaultWindow / 2

// resendLocked returns the request to send again for endpoint and the
// plaintext with digest, if the last one's reply was lost: the server's
// replay cache answers the same bytes with the stored reply, so a retry
// after a lost begin_session takes no second seat.
func (c *Client) resendLocked(endpoint string, digest [sha256.Size]byte) *lostRequest {
	r := c.integ.lost[endpoint]
	if r == nil || r.digest != digest || time.Since(r.at) >= resendWithin {
		return nil
	}
	return r
}

// noteLostLocked remembers a request for resendLocked when its outcome
// says the server may have processed it without the client learning the
// answer (any unreachable outcome other than an envelope rejection, which
// says the server processed nothing), and forgets it otherwise. Requests
// without a request id (a custom scheme) are never resent.
func (c *Client) noteLostLocked(endpoint string, r *lostRequest, out verdict.Outcome) {
	var rej *EnvelopeError
	if out.Category != verdict.Unreachable || errors.As(out.Err, &rej) || r.sealed.ID == ([envelope.RequestIDSize]byte{}) {
		delete(c.integ.lost, endpoint)
		return
	}
	if c.integ.lost == nil {
		c.integ.lost = make(map[string]*lostRequest)
	}
	c.integ.lost[endpoint] = r
}

// plausible reports whether t may stamp a request: not before the
// release floor, not absurdly far after it.
func (c *Client) plausible(t time.Time) bool {
	floor := releaseFloor()
	if !c.opts.timeFloor.IsZero() {
		floor = c.opts.timeFloor
	}
	return !t.Before(floor) && t.Before(floor.Add(offsetSpan))
}

// requestTime is the timestamp for a new request, with the kept offset.
func (c *Client) requestTime() time.Time { return c.stamp(&c.integ.offset) }

// stamp is the wall clock plus *offset. An offset that would give an
// implausible timestamp is reset to zero first.
func (c *Client) stamp(offset *time.Duration) time.Time {
	wall := c.wallNow()
	if *offset != 0 && !c.plausible(wall.Add(*offset)) {
		*offset = 0
	}
	return wall.Add(*offset)
}

// afterStaleLocked handles a stale-timestamp rejection that carries the
// server's time. The first proposes a clock offset, learned from that time,
// for one more attempt with a fresh envelope (*offset is set; the client
// keeps it only if that attempt is accepted, see call). A server time that
// no correct clock gives (before the release floor, or absurdly far ahead)
// proposes nothing: the one retry uses the offset the client had. The
// second rejection becomes a *ClockSkewError. Every other outcome passes
// through.
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
	if !c.plausible(rej.ServerTime) {
		*offset = c.integ.offset
		c.log.Warn("server rejected the request timestamp with an implausible time of its own; retrying once unchanged",
			"endpoint", endpoint)
		return out, true
	}
	*offset = rej.ServerTime.Sub(c.wallNow())
	c.log.Warn("server rejected the request timestamp; retrying once with a corrected clock offset",
		"endpoint", endpoint, "offset", offset.Round(time.Second).String())
	return out, true
}

// acceptedLocked keeps the offset a request was sealed with once the
// server accepted that request: its outcome is the server's word.
func (c *Client) acceptedLocked(out verdict.Outcome, offset time.Duration) {
	switch out.Category {
	case verdict.Success, verdict.Refused, verdict.AlreadyEnded:
		if offset != c.integ.offset {
			c.integ.offset = offset
			c.log.Info("clock offset confirmed by the server", "offset", offset.Round(time.Second).String())
		}
	}
}
