package license

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/transport"
)

// ErrClockSkew matches the error of a call the server rejected as stale
// twice: once with the machine's clock and once more after the client
// corrected its clock offset from the server's time. It is in the
// unreachable category (grace applies); the *ClockSkewError carries the
// detail.
var ErrClockSkew = errors.New("license: clock skew")

// errEnvelopeLevel marks the errors of envelope-level rejections, which are
// in the unreachable category.
var errEnvelopeLevel = errors.New("license: envelope rejected")

// EnvelopeError is the server's envelope-level rejection of a request it did
// not process: the envelope was malformed, did not authenticate, was sealed
// for another endpoint, was stale or repeated a request id (see
// envelope/FORMAT.md). It is never a licence verdict: anyone on the path can
// forge one, so it matches ErrUnreachable, never ErrRefused, and nothing is
// persisted because of it.
type EnvelopeError struct {
	// Endpoint is the v2 endpoint, such as "begin_session".
	Endpoint string
	// Status is the HTTP status.
	Status int
	// Code is the rejection code, such as envelope.CodeStale.
	Code string
	// ServerTime is the server's clock when it rejected the request, or zero.
	ServerTime time.Time
}

// Error implements error.
func (e *EnvelopeError) Error() string {
	return "license: " + e.Endpoint + ": server rejected the envelope (HTTP " + strconv.Itoa(e.Status) + ", " +
		wire.Sanitize(e.Code) + "); treated as unreachable"
}

// Unwrap places the error in the unreachable category.
func (e *EnvelopeError) Unwrap() error { return errEnvelopeLevel }

// Is reports ErrUnreachable.
func (e *EnvelopeError) Is(target error) bool { return target == ErrUnreachable }

// ClockSkewError reports that the server rejected a request's timestamp
// even after the client corrected its clock offset once.
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

// Unwrap places the error in the unreachable category.
func (e *ClockSkewError) Unwrap() error { return errEnvelopeLevel }

// Is reports ErrClockSkew and ErrUnreachable.
func (e *ClockSkewError) Is(target error) bool {
	return target == ErrClockSkew || target == ErrUnreachable
}

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

// sealAndPost seals plain for endpoint, posts it and judges the reply. A
// stale-timestamp rejection that carries the server's time corrects the
// clock offset and is retried once with a fresh envelope; a second one is a
// *ClockSkewError.
func (c *Client) sealAndPost(ctx context.Context, endpoint string, retry transport.Retry, plain []byte) ([]byte, error) {
	var offset time.Duration
	for attempt := 0; ; attempt++ {
		sd, err := c.sealer.Seal(envelope.Request{APIKey: c.cfg.APIKey, Endpoint: endpoint, Time: c.requestTime()}, plain)
		if err != nil {
			return nil, err
		}
		body, err := json.Marshal(wire.Request{Key: sd.Key, Data: sd.Data})
		if err != nil {
			return nil, err
		}
		resp, err := c.tr.Do(ctx, transport.Request{Endpoint: endpoint, Body: body, Retry: retry})
		if resp != nil {
			c.noteDeprecation(resp)
		}
		reply, err := judgeReply(endpoint, resp, err, sd.Reply, c.sealer.RepliesAuthenticated())
		var ee *EnvelopeError
		if !errors.As(err, &ee) || ee.Code != envelope.CodeStale || ee.ServerTime.IsZero() {
			return reply, err
		}
		if attempt > 0 {
			return nil, &ClockSkewError{Endpoint: endpoint, Offset: offset, ServerTime: ee.ServerTime}
		}
		offset = ee.ServerTime.Sub(c.wallNow())
		c.integ.offset = offset
		c.log.Warn("server rejected the request timestamp; correcting the clock offset and retrying once",
			"endpoint", endpoint, "offset", offset.Round(time.Second).String())
	}
}

// judgeReply decides what one HTTP outcome means. It is the client's whole
// rule for replies, kept in one function so that it can move into the
// shared reply classifier:
//
//   - no reply, or a status that is never the licence server's verdict (5xx,
//     429, 408, 407, 3xx, 1xx): the transport error, unreachable;
//   - an envelope-level rejection (plain, "envelope_error"): *EnvelopeError,
//     unreachable;
//   - with authenticated (sealed) replies, the sealed plaintext decides, not
//     the status: a sealed failure is a refusal at 2xx and 4xx alike; a
//     sealed success under a non-2xx status is a protocol error
//     (unreachable); a body that does not open is unauthentic
//     (unreachable);
//   - without them (an explicit opt-out), a 2xx body goes to the decoder and
//     a 4xx is a refusal, as before.
func judgeReply(endpoint string, resp *transport.Response, terr error, ro envelope.ReplyOpener, authenticated bool) ([]byte, error) {
	if resp == nil || (terr != nil && resp.Body == nil) {
		return nil, terr
	}
	status := resp.Status
	switch {
	case status >= 500, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout,
		status == http.StatusProxyAuthRequired, status < 200, status >= 300 && status < 400:
		if terr == nil {
			terr = &wire.ProtocolError{Endpoint: endpoint, Reason: "HTTP " + strconv.Itoa(status)}
		}
		return nil, terr
	}
	plain, oerr := ro.OpenReply(resp.Body)
	if oerr != nil {
		if rej, ok := envelope.ParseRejection(status, resp.Body); ok && status >= 400 {
			return nil, &EnvelopeError{Endpoint: endpoint, Status: status, Code: rej.Code, ServerTime: rej.ServerTime}
		}
		if status >= 400 {
			// A 4xx that does not open: anyone on the path could have sent it.
			return nil, &APIError{Endpoint: endpoint, Status: status, Unauthenticated: true}
		}
		return nil, oerr
	}
	if !authenticated {
		if rej, ok := envelope.ParseRejection(status, plain); ok && status >= 400 {
			return nil, &EnvelopeError{Endpoint: endpoint, Status: status, Code: rej.Code, ServerTime: rej.ServerTime}
		}
		if status >= 400 {
			api := &APIError{Endpoint: endpoint, Status: status}
			if f := wire.DecodeFailure(endpoint, plain); f != nil {
				api.Message = wire.Sanitize(f.Message)
				api.Time = f.Time.Raw
			}
			return nil, api
		}
		return plain, nil
	}
	if f := wire.DecodeFailure(endpoint, plain); f != nil && !f.Success {
		return nil, &APIError{Endpoint: endpoint, Status: status, Message: wire.Sanitize(f.Message), Time: f.Time.Raw}
	}
	if status >= 300 {
		return nil, &wire.ProtocolError{Endpoint: endpoint, Reason: "sealed success under HTTP " + strconv.Itoa(status)}
	}
	return plain, nil
}
