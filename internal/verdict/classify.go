package verdict

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/text"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/transport"
)

// ReplyOpener opens the reply to one request (envelope.ReplyOpener).
type ReplyOpener interface {
	OpenReply(body []byte) ([]byte, error)
}

// Input is everything known about one call once the transport is done.
type Input struct {
	// Endpoint is the v2 endpoint called.
	Endpoint string
	// Resp and Err are what transport.Client.Do returned. Resp is nil when
	// no reply arrived.
	Resp *transport.Response
	Err  error
	// Opener opens the reply of this request. Nil means the body is used as
	// it is (which only makes sense with Sealed false).
	Opener ReplyOpener
	// Sealed is true when replies must open as sealed replies: the secure
	// default. False only when the vendor opted out of sealed replies.
	Sealed bool
	// Decode checks and decodes a success plaintext; an error makes the
	// reply malformed. It must fail on anything but one valid JSON object
	// (as json.Unmarshal into a struct does): Classify does not check
	// again. Nil accepts any JSON object.
	Decode func(plain []byte) error
	// Kinds names a refusal's kind from its endpoint and text. Nil uses
	// DefaultRules.
	Kinds func(endpoint, msg string) Kind
	// Redactor removes the client's secrets from every network text.
	Redactor *Redactor
	// Extra are request values (see PayloadValues) also removed.
	Extra []string
	// Payload is the request's plaintext. When Extra is nil, its values
	// (PayloadValues) are removed too; they are extracted only when a text
	// is kept, never on a success.
	Payload []byte
}

func (in *Input) extra() []string {
	if in.Extra == nil && in.Payload != nil {
		in.Extra = PayloadValues(in.Payload)
		in.Payload = nil // extracted once, even when it holds no value
	}
	return in.Extra
}

// Outcome is the verdict on one call.
type Outcome struct {
	// Category is the verdict.
	Category Category
	// Err is nil for Success and AlreadyEnded, an *APIError for Refused and
	// an *Error otherwise.
	Err error
}

// classify is Classify before the credentials mark (credentials.go).
func classify(in Input) Outcome {
	e := &Error{Endpoint: in.Endpoint, Category: Unreachable, Next: "will retry", Cause: in.Err}
	te, _ := errors.AsType[*transport.Error](in.Err)
	if te != nil {
		e.Attempts, e.RetryAfter = te.Attempts, te.RetryAfter
	} else if in.Resp != nil {
		e.Attempts = in.Resp.Attempts
	}
	if in.Resp == nil {
		return noReply(in, e)
	}
	status := in.Resp.Status
	e.Status = status
	if in.Err != nil && (te == nil || (te.Err != nil && !errors.Is(te.Err, transport.ErrRedirect))) {
		// The reply started but its body could not be taken.
		switch {
		case errors.Is(in.Err, transport.ErrResponseTooLarge):
			return e.unreachable(DetailTooLarge, "over the response cap")
		case isCtx(in.Err):
			return e.ctxEnded(in.Err)
		}
		return e.unreachable(DetailNetwork, "reply cut short")
	}
	body := in.Resp.Body
	switch {
	case status >= 500, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		// Any text in the body is left out: whoever sent it, it is not a
		// verdict, and "HTTP 503: license revoked" would read like one.
		return e.unreachable(DetailTransient, strings.ToLower(http.StatusText(status)))
	case status == http.StatusProxyAuthRequired:
		return e.unreachable(DetailIntercepted, "proxy authentication required")
	case status >= 300 && status < 400:
		if loc := location(in.Resp.Header.Get("Location")); loc != "" {
			return e.unreachable(DetailIntercepted, "redirect to "+in.Redactor.Text(loc, MaxExcerpt, in.extra()...))
		}
		return e.unreachable(DetailIntercepted, "redirect")
	case status < 200:
		return e.unreachable(DetailIntercepted, "unexpected status")
	case in.Endpoint == wire.End && status == http.StatusUnprocessableEntity && (!in.Sealed || in.Opener == nil):
		// The spec's only failure form for end_session: the token is gone.
		// With sealed replies it counts only once it opens (below): a
		// plain 422 from the path would drop a token whose session still
		// holds a seat.
		return Outcome{Category: AlreadyEnded}
	}
	if status >= 400 {
		if rej, ok := envelope.ParseRejection(status, body); ok {
			// An envelope-level rejection (only ever a 4xx or 5xx): the server
			// did not process the request. Plain and forgeable, so never a
			// verdict.
			e.Cause = &EnvelopeRejection{Endpoint: in.Endpoint, Status: status, Code: rej.Code, ServerTime: rej.ServerTime}
			return e.unreachable(DetailEnvelopeRejected, "server rejected the envelope: "+in.Redactor.Text(rej.Code, 64, in.extra()...))
		}
	}
	// A 2xx or a 4xx (other than 407, 408, 429): the licence server's word,
	// if it is authentic and has the spec's shape.
	plain := body
	if in.Opener != nil {
		p, err := in.Opener.OpenReply(body)
		if err != nil {
			e.Cause = errors.Join(in.Err, err)
			switch {
			case looksV2(body):
				return e.unreachable(DetailUnauthenticated, "did not open as a sealed reply to this request")
			case startsJSON(body) && !isObject(body):
				return e.unreachable(DetailMalformed, "truncated or invalid JSON")
			}
			return e.unreachable(DetailIntercepted, describe(in, body))
		}
		plain = p
		if in.Endpoint == wire.End && status == http.StatusUnprocessableEntity {
			return Outcome{Category: AlreadyEnded} // the server's own 422, whatever it sealed
		}
	}
	// Whether plain is one JSON object is settled lazily: parseFailure and
	// Decode each reject invalid JSON themselves, so a success is spared a
	// separate validating pass.
	obj := startsObject(plain)
	if msg, ts, ok := parseFailure(plain, obj); ok {
		kinds := in.Kinds
		if kinds == nil {
			kinds = DefaultRules().Classify
		}
		return Outcome{Category: Refused, Err: &APIError{
			Endpoint: in.Endpoint,
			Status:   status,
			Message:  in.Redactor.Text(msg, MaxMessage, in.extra()...),
			Time:     in.Redactor.Text(ts, 64, in.extra()...),
			Kind:     kinds(in.Endpoint, msg),
			Sealed:   in.Sealed,
		}}
	}
	if obj && status < 400 && in.Decode != nil {
		err := in.Decode(plain)
		if err == nil {
			return Outcome{Category: Success}
		}
		if isObject(plain) {
			e.Cause = errors.Join(in.Err, err)
			return e.unreachable(DetailMalformed, reasonOf(in, err))
		}
	}
	obj = obj && isObject(plain)
	switch {
	case obj && status < 400:
		return Outcome{Category: Success}
	case !obj && (in.Sealed || startsJSON(plain)):
		// It opened, so the licence server sent it: malformed.
		return e.unreachable(DetailMalformed, "truncated or invalid JSON")
	case in.Sealed:
		return e.unreachable(DetailMalformed, "not a v2 reply")
	}
	return e.unreachable(DetailIntercepted, describe(in, plain))
}

func (e *Error) unreachable(d Detail, reason string) Outcome {
	e.Detail, e.Reason = d, reason
	return Outcome{Category: Unreachable, Err: e}
}

func noReply(in Input, e *Error) Outcome {
	err := in.Err
	switch {
	case err == nil:
		e.Category, e.Detail, e.Reason, e.Next = ClientFault, DetailNone, "no reply and no error", ""
	case errors.Is(err, transport.ErrInvalidRequest):
		e.Category, e.Detail, e.Reason, e.Next = ClientFault, DetailUnsealable, "invalid request", ""
	case isCtx(err):
		return e.ctxEnded(err)
	case transport.IsCertificateError(err):
		return e.unreachable(DetailTLS, "TLS certificate not trusted: "+in.Redactor.Text(certText(err), MaxExcerpt, in.extra()...))
	default:
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return e.unreachable(DetailTimeout, "timed out")
		}
		return e.unreachable(DetailNetwork, netReason(in, err))
	}
	return Outcome{Category: ClientFault, Err: e}
}

func isCtx(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (e *Error) ctxEnded(err error) Outcome {
	if errors.Is(err, context.Canceled) {
		e.Next = ""
		return e.unreachable(DetailTimeout, "cancelled")
	}
	return e.unreachable(DetailTimeout, "timed out")
}

// netReason names a network failure in a few words and, for a failed dial,
// the address dialled: a wrong host or port, or a placeholder address that
// says what to do (licensetest's unstarted server), shows in the error.
func netReason(in Input, err error) string {
	op, dial := errors.AsType[*net.OpError](err)
	dial = dial && op.Op == "dial"
	var words string
	_, dns := errors.AsType[*net.DNSError](err)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		words = "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		words = "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		words = "connection closed"
	case dns:
		words = "host name not found"
	case dial:
		words = "cannot connect"
	default:
		if te, ok := errors.AsType[*transport.Error](err); ok && te.Err != nil {
			err = te.Err
		}
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return in.Redactor.Text(err.Error(), MaxExcerpt, in.extra()...)
	}
	if dial && op.Addr != nil {
		return words + " dialling " + op.Addr.String()
	}
	return words
}

func certText(err error) string {
	if ce, ok := errors.AsType[*tls.CertificateVerificationError](err); ok && ce.Err != nil {
		return ce.Err.Error()
	}
	if te, ok := errors.AsType[*transport.Error](err); ok && te.Err != nil {
		return te.Err.Error()
	}
	return err.Error()
}

// location returns the scheme and host of a redirect target: enough to say
// where the path leads, without the path or query.
func location(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// parseFailure reports whether b is the spec's failure shape, a JSON object
// with "success" exactly false and "error" a string, and returns its error
// and time texts. obj is startsObject(b) (the decode below rejects invalid
// JSON). This is the one failure-body parser of the client.
func parseFailure(b []byte, obj bool) (msg, time string, ok bool) {
	if !obj {
		return "", "", false
	}
	// Without an "error" member, in any case (encoding/json matches names
	// case-insensitively; no non-ASCII letter folds to one of "error"'s)
	// and unescaped, it is not a failure: most replies are successes, and
	// this spares them a second decode.
	if bytes.IndexByte(b, '\\') < 0 && text.IndexFold(b, `"error"`) < 0 {
		return "", "", false
	}
	var v struct {
		Success json.RawMessage `json:"success"`
		Error   json.RawMessage `json:"error"`
		Time    wire.Timestamp  `json:"time"`
	}
	if json.Unmarshal(b, &v) != nil || string(v.Success) != "false" {
		return "", "", false
	}
	if len(v.Error) == 0 || v.Error[0] != '"' || json.Unmarshal(v.Error, &msg) != nil {
		return "", "", false
	}
	return msg, v.Time.Raw, true
}

func isObject(b []byte) bool { return startsObject(b) && json.Valid(b) }

func startsObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// v2Keys are the members of v2 replies and of sealed replies.
var v2Keys = [...]string{"data", "success", "status", "token", "guid", "session_key", "control_options", "time"}

// looksV2 reports whether b is a JSON object with a v2 or sealed-reply
// member: a reply that claims to be the licence server's. Other JSON
// objects are some proxy's or gateway's.
func looksV2(b []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	return slices.ContainsFunc(v2Keys[:], func(k string) bool { return m[k] != nil }) // a member's raw value is never empty
}

func startsJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// describe says what a body that is not a v2 reply looks like, with a short
// redacted excerpt.
func describe(in Input, body []byte) string {
	t := bytes.TrimSpace(body)
	switch {
	case len(t) == 0:
		return "empty body"
	case isObject(t):
		return "JSON of another shape"
	case startsJSON(t):
		return "JSON that is not a v2 reply"
	}
	if t[0] == '<' || text.IndexFold(t, "<html") >= 0 {
		if i := text.IndexFold(t, "<title>"); i >= 0 {
			rest := t[i+len("<title>"):]
			if j := text.IndexFold(rest, "</title>"); j >= 0 {
				if title := in.Redactor.Text(string(rest[:j]), MaxExcerpt, in.extra()...); title != "" {
					return "HTML page: " + title
				}
			}
		}
		return "HTML page"
	}
	return "non-JSON body: " + in.Redactor.Text(string(t[:min(len(t), 4*MaxExcerpt)]), MaxExcerpt/2, in.extra()...)
}

// reasonOf is a decode error's redacted text, without package prefixes.
func reasonOf(in Input, err error) string {
	if pe, ok := errors.AsType[*wire.ProtocolError](err); ok {
		return in.Redactor.Text(pe.Reason, MaxExcerpt, in.extra()...)
	}
	if _, ok := errors.AsType[*wire.Failure](err); ok {
		return "failure without an error text"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return in.Redactor.Text(s, MaxExcerpt, in.extra()...)
}
