package licensetest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/internal/uuid"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/license/licensetest/internal/hook"
)

// maxRequestBody bounds a request body: the largest data string plus room
// for the key and the JSON around them.
const maxRequestBody = envelope.MaxDataSize + 64<<10

// action says how an outcome is delivered.
type action int

const (
	actReply   action = iota // send the reply
	actDrop                  // reset the connection without a reply
	actCut                   // send the headers and half the body, then close
	actAbandon               // the client gave up during latency: send nothing
)

// outcome is the server's answer to one request, whatever carries it (a real
// connection or Transport).
type outcome struct {
	status int
	header http.Header
	body   []byte
	action action
}

// garbage is the body of a FaultGarbage reply: not JSON, not UTF-8.
var garbage = []byte("\x1f\x8b\x08\x00<html>502 Bad Gateway</html>\xff\xfe")

func jsonHeader() http.Header {
	return http.Header{"Content-Type": {"application/json"}}
}

func endpointOf(path string) (string, bool) {
	ep, ok := strings.CutPrefix(path, BasePath+"/")
	return ep, ok && slices.Contains(wire.Endpoints[:], ep)
}

// handle answers one request. ctx comes from inflight.begin.
func (s *Server) handle(ctx context.Context, method, path string, body io.Reader) outcome {
	ep, ok := endpointOf(path)
	if !ok {
		return s.plainFailure(http.StatusNotFound, "unknown endpoint")
	}
	if method != http.MethodPost {
		o := s.plainFailure(http.StatusMethodNotAllowed, "method not allowed")
		o.header.Set("Allow", http.MethodPost)
		return o
	}
	start := time.Now()
	if down, mode := s.faults.isDown(); down && mode == DownUnavailable {
		o := s.plainFailure(http.StatusServiceUnavailable, "service unavailable")
		s.reqlog.add(Request{Endpoint: ep, Time: s.cfg.Clock(), Status: o.status, Down: true, Latency: time.Since(start)})
		s.cfg.Logger.Debug("licensetest: request", slog.String("endpoint", ep), slog.Int("status", o.status), slog.Bool("down", true))
		return o
	}
	set := s.faults.settingsFor(ep)
	if set.latency > 0 && !wait(ctx, set.latency) {
		s.cfg.Logger.Debug("licensetest: request abandoned", slog.String("endpoint", ep))
		return outcome{action: actAbandon}
	}
	now := s.cfg.Clock()
	ts := wire.Timestamp{Raw: wire.FormatTime(now.Add(set.skew))}

	pt, sealer, ticket, early := s.admit(ep, body, now)
	rec := Request{Payload: pt}
	if early != nil {
		rec = early.rec
	}
	rec.Endpoint, rec.Time = ep, now
	if early != nil && !rec.Repeat {
		// Envelope-level rejections consume no queued fault (see Inject). A
		// repeat gets the stored reply below, faults on the path included.
		rec.Status = early.o.status
		s.reqlog.add(rec)
		s.cfg.Logger.Debug("licensetest: request rejected",
			slog.String("endpoint", ep), slog.Int("status", rec.Status), slog.String("rejected", rec.Rejected))
		return early.o
	}
	fault, replay := s.faults.take(ep)

	var o outcome
	switch {
	case fault.Kind == FaultFail:
		// An injected failure instead of processing: a retry of the same
		// request is processed as new.
		ticket.Forget()
		o = s.reply(ep, ts, nil, refuse(fault.Status, fault.Message), sealer, true)
		if ra := cmp.Or(max(fault.RetryAfter, 0), set.retryAfter); ra > 0 {
			o.header.Set("Retry-After", strconv.FormatInt(int64((ra+time.Second-1)/time.Second), 10))
		}
	case fault.Kind == FaultReplay:
		// An attacker's old reply: the server processed nothing.
		ticket.Forget()
		o = outcome{status: http.StatusOK, header: jsonHeader(), body: bytes.Clone(replay)}
	case early != nil:
		o = corrupt(early.o, fault.Kind, rec.Sealed)
	default:
		reply, aerr := s.process(ep, now, ts, set.skew, pt)
		o = s.reply(ep, ts, reply, aerr, sealer, false)
		if o.status == http.StatusInternalServerError {
			ticket.Forget()
		} else {
			// The reply as the server sent it: a retry of this request gets
			// it again, whatever a fault does to it on the way.
			ticket.Done(o.status, o.body)
			if sealer != nil {
				s.faults.remember(ep, o.body)
			}
		}
		o = corrupt(o, fault.Kind, sealer != nil)
	}
	rec.Sealed = rec.Sealed || (sealer != nil && o.status != http.StatusInternalServerError) || fault.Kind == FaultReplay
	rec.Fault = fault.Kind
	if set.contentType != "" {
		o.header.Set("Content-Type", set.contentType)
	}
	rec.Status = o.status
	rec.Latency = time.Since(start)
	s.reqlog.add(rec)
	faultName := ""
	if fault.Kind != 0 {
		faultName = fault.Kind.String()
	}
	s.cfg.Logger.Debug("licensetest: request", slog.String("endpoint", ep), slog.Int("status", o.status),
		slog.Bool("sealed", rec.Sealed), slog.String("fault", faultName))
	return o
}

// early is the answer to a request the server does not process: an
// envelope-level rejection or a repeat answered from the replay cache.
type early struct {
	o   outcome
	rec Request
}

// admit reads and opens a request posted to ep and checks its freshness and
// replay (partitioned by store.scope). It returns the opened plaintext, the
// reply sealer (nil unless the reply must be sealed) and the Guard's ticket,
// or early when the request is not to be processed.
func (s *Server) admit(ep string, body io.Reader, now time.Time) ([]byte, envelope.ReplySealer, *envelope.Ticket, *early) {
	raw, err := io.ReadAll(io.LimitReader(body, maxRequestBody+1))
	req, ok := decodeOuter(raw)
	if err != nil || len(raw) > maxRequestBody || !ok {
		// Not a request body at all: an envelope-level rejection too.
		return nil, nil, nil, s.rejection(envelope.ErrMalformed, now, nil)
	}
	in := envelope.Incoming{Key: req.Key, Data: req.Data, Endpoint: ep}
	if subtle.ConstantTimeCompare([]byte(req.Key), []byte(s.cfg.APIKey)) != 1 {
		return nil, nil, nil, s.rejection(envelope.ErrUnauthentic, now, nil)
	}
	op, err := s.opener.Open(in)
	if err != nil {
		return nil, nil, nil, s.rejection(err, now, nil)
	}
	sealer := op.Reply
	if !sealer.Requested() {
		if s.cfg.SealedReplies {
			return nil, nil, nil, s.rejection(envelope.ErrMalformed, now, op.Plaintext)
		}
		sealer = nil
	}
	guard := s.guard
	if op.Carried {
		guard = s.carried
	}
	ticket, cached, err := guard.Admit(op, in.Data, now, s.store.scope(ep, op.Plaintext))
	switch {
	case err != nil:
		return nil, nil, nil, s.rejection(err, now, op.Plaintext)
	case cached != nil:
		o := outcome{status: cached.Status, header: jsonHeader(), body: cached.Body}
		return nil, nil, nil, &early{o: o, rec: Request{Payload: op.Plaintext, Repeat: true, Sealed: sealer != nil}}
	}
	return op.Plaintext, sealer, ticket, nil
}

// rejection is the plain envelope-level rejection for err of a request
// whose opened payload, if any, is pt.
func (s *Server) rejection(err error, now time.Time, pt []byte) *early {
	status, body := envelope.RejectionReply(err, now)
	r, _ := envelope.ParseRejection(status, body)
	o := outcome{status: status, header: jsonHeader(), body: body}
	if status == http.StatusServiceUnavailable {
		o.header.Set("Retry-After", "1")
	}
	return &early{o: o, rec: Request{Rejected: r.Code, Payload: pt}}
}

// process decodes an opened request strictly and runs it against the
// store. Every field the spec lists must be present with its JSON type
// (duration is optional), so the mock catches a client that drifts from the
// spec; unknown fields are ignored.
func (s *Server) process(ep string, now time.Time, ts wire.Timestamp, skew time.Duration, pt []byte) (any, *apiError) {
	o, err := parseObject(pt)
	if err != nil {
		return nil, err
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	switch ep {
	case Register:
		req := wire.RegisterRequest{ProductGUID: o.str("product_guid", true), LicenseKey: o.str("license_key", true),
			Machine: o.machine(), Name: o.str("name", false), Email: o.str("email", false), UserHash: o.strMap("user_hash")}
		if o.err == nil {
			return s.store.register(now, ts, skew, &req, uuid.New())
		}
	case Begin:
		req := wire.BeginRequest{ProductGUID: o.str("product_guid", true), LicenseKey: o.str("license_key", true),
			InstanceGUID: o.str("instance_guid", true), Machine: o.machine(), UserHash: o.strMap("user_hash"), Duration: o.seconds("duration")}
		if o.err == nil {
			return s.store.begin(now, ts, &req, hook.RandomToken(32), hook.RandomToken(32))
		}
	case Extend:
		req := wire.ExtendRequest{Token: o.str("token", true), Duration: o.seconds("duration")}
		if o.err == nil { // the new token is used only with Config.TokenRotation
			return s.store.extend(now, ts, &req, hook.RandomToken(32))
		}
	default:
		req := wire.EndRequest{Token: o.str("token", true)}
		if o.err == nil {
			return s.store.end(now, ts, &req)
		}
	}
	return nil, o.err
}

// reply builds the reply to a request: reply on success or the failure
// shape for aerr (reply is then ignored), sealed when sealer is not nil. An
// end_session refusal is 422 unless injected.
func (s *Server) reply(ep string, ts wire.Timestamp, reply any, aerr *apiError, sealer envelope.ReplySealer, injected bool) outcome {
	status := http.StatusOK
	if aerr != nil {
		status = aerr.status
		if ep == End && !injected {
			status = http.StatusUnprocessableEntity
		}
		reply = &wire.Failure{Success: false, Time: ts, Message: aerr.msg}
	}
	body, err := json.Marshal(reply)
	if err == nil && sealer != nil {
		body, err = sealer.SealReply(body)
	}
	if err != nil {
		s.cfg.Logger.Error("licensetest: cannot encode reply", slog.String("endpoint", ep), slog.Any("error", err))
		return s.plainFailure(http.StatusInternalServerError, "internal error")
	}
	return outcome{status: status, header: jsonHeader(), body: body}
}

// plainFailure is a failure reply that is never sealed.
func (s *Server) plainFailure(status int, msg string) outcome {
	ts := wire.Timestamp{Raw: wire.FormatTime(s.cfg.Clock().Add(s.faults.settingsFor("").skew))}
	return s.reply("", ts, nil, refuse(status, msg), nil, true)
}

// corrupt applies a fault that spoils a processed reply; other kinds leave
// it as it is.
func corrupt(o outcome, kind FaultKind, sealed bool) outcome {
	switch kind {
	case FaultTruncate:
		o.body = o.body[:len(o.body)/2]
	case FaultGarbage:
		o.body = bytes.Clone(garbage)
	case FaultDrop:
		o.action = actDrop
	case FaultCutBody:
		o.action = actCut
	case FaultBadSeal:
		o.body = badSeal(o.body, sealed)
	}
	return o
}

// badSeal returns a sealed-looking body that does not authenticate: the
// sealed reply with its last ciphertext byte flipped, or, for a plain reply,
// random bytes of a plausible length.
func badSeal(body []byte, sealed bool) []byte {
	var v struct {
		Data string `json:"data"`
	}
	var raw []byte
	if sealed && json.Unmarshal(body, &v) == nil {
		raw, _ = base64.StdEncoding.DecodeString(v.Data)
	}
	if len(raw) == 0 {
		raw = []byte(hook.RandomToken(49 + len(body)))
	} else {
		raw[len(raw)-1] ^= 0x01
	}
	v.Data = base64.StdEncoding.EncodeToString(raw)
	out, _ := json.Marshal(v)
	return out
}

// serveHTTP is the handler of the real server and of Handler.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if down, mode := s.faults.isDown(); down && mode != DownUnavailable {
		abortRequest(w)
		return
	}
	ctx, done, ok := s.flight.begin(r.Context())
	if !ok {
		abortRequest(w)
		return
	}
	defer done()
	replyReady := s.extendDeadlines(w, r)
	o := s.handle(ctx, r.Method, r.URL.Path, r.Body)
	replyReady()
	switch o.action {
	case actAbandon:
		return
	case actDrop:
		abortRequest(w)
		return
	}
	h := w.Header()
	maps.Copy(h, o.header)
	h.Set("Content-Length", strconv.Itoa(len(o.body)))
	if o.action == actCut {
		h.Set("Connection", "close")
	}
	w.WriteHeader(o.status)
	if o.action != actCut {
		_, _ = w.Write(o.body)
		return
	}
	_, _ = w.Write(o.body[:len(o.body)/2])
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	if c, _, err := rc.Hijack(); err == nil {
		_ = c.Close()
		return
	}
	panic(http.ErrAbortHandler)
}

// abortRequest drops the request's connection without a reply, with a reset
// where possible.
func abortRequest(w http.ResponseWriter) {
	if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
		abort(c)
		return
	}
	panic(http.ErrAbortHandler)
}
