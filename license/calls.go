package license

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/internal/uuid"
	"github.com/licensekit/licensekit-go/internal/verdict"
	"github.com/licensekit/licensekit-go/internal/wire"
	"github.com/licensekit/licensekit-go/transport"
)

// Registration is the result of register_instance.
type Registration struct {
	// InstanceGUID identifies this product instance on the server.
	InstanceGUID string
	// FirstRegisteredAt is when the server first saw this instance.
	FirstRegisteredAt time.Time
	// SessionDuration and GracePeriod are the server's control options.
	SessionDuration, GracePeriod time.Duration
}

// Register sends register_instance for this machine and stores the
// instance. The server returns the same instance for the same hardware and
// user, so Register is safe to repeat. Start calls it when needed; products
// that drive the lifecycle by hand call it first.
func (c *Client) Register(ctx context.Context) (Registration, error) {
	var reg Registration
	err := c.manual(ctx, func(ctx context.Context) error {
		if err := c.machineLocked(ctx); err != nil {
			return err
		}
		if err := c.registerLocked(ctx); err != nil {
			return err
		}
		c.saveLocked(ctx)
		c.publishLocked()
		reg = Registration{
			InstanceGUID:      c.st.InstanceGUID,
			FirstRegisteredAt: wire.ParseTimestamp(c.st.FirstRegisteredAt).Time,
			SessionDuration:   c.session(),
			GracePeriod:       c.grace(),
		}
		return nil
	})
	return reg, err
}

// BeginSession sends begin_session (registering first if this machine has
// no instance yet or its hardware changed, and once more if the server no
// longer knows the stored instance) and makes the new session current. It
// does not start background renewal; Start does.
func (c *Client) BeginSession(ctx context.Context) error {
	return c.manual(ctx, func(ctx context.Context) error {
		err := c.beginLocked(ctx)
		if refused(err) {
			c.refusedLocked(err) // final unless about capacity
		}
		return c.afterManualLocked(err)
	})
}

// ExtendSession sends extend_session for the current session and adopts
// the reply's token and control options. With no session it returns
// ErrNotStarted.
func (c *Client) ExtendSession(ctx context.Context) error {
	return c.manual(ctx, func(ctx context.Context) error {
		if c.st.Token == "" {
			return ErrNotStarted
		}
		return c.afterManualLocked(c.extendLocked(ctx))
	})
}

// EndSession sends end_session for the current session and returns the
// client to Idle; with no session it does nothing. An unknown token counts
// as already ended. Background renewal, if running, begins a new session at
// its next attempt; to stop for good, use Close.
func (c *Client) EndSession(ctx context.Context) error {
	return c.manual(ctx, func(ctx context.Context) error {
		if c.st.Token == "" {
			return nil
		}
		if err := c.endLocked(ctx); err != nil {
			return err
		}
		c.enterLocked(Idle, nil)
		return nil
	})
}

// manual runs an explicit call under the client's lock, after loading the
// state.
func (c *Client) manual(ctx context.Context, f func(context.Context) error) error {
	if c.closing.Load() {
		return ErrClosed
	}
	if c.sh != nil {
		return errSharedManual // shared.go
	}
	if err := c.Err(); err != nil {
		return err // finished for good: refused while running
	}
	return c.loadedCall(ctx, f)
}

// loadedCall runs f under the client's lock after loading the state, and
// drops the retry promise from its error.
func (c *Client) loadedCall(ctx context.Context, f func(context.Context) error) error {
	return toCaller(c.locked(ctx, func(ctx context.Context) error {
		if err := c.loadLocked(ctx); err != nil {
			return err
		}
		return f(ctx)
	}))
}

func (c *Client) afterManualLocked(err error) error {
	if err == nil {
		c.enterLocked(Active, nil)
		return nil
	}
	c.lastErr = err
	if refused(err) {
		c.enterLocked(Refused, err)
	} else {
		c.publishLocked()
	}
	return err
}

// beginLocked registers if needed, then begins a session and adopts it.
func (c *Client) beginLocked(ctx context.Context) error {
	if err := c.machineLocked(ctx); err != nil {
		return err
	}
	if c.st.InstanceGUID == "" || c.st.FingerprintDigest != machineDigest(c.machine) {
		if err := c.registerLocked(ctx); err != nil {
			return err
		}
	}
	req := c.beginRequest()
	sent := time.Now()
	reply, err := exchange(c, ctx, wire.Begin, transport.RetryUnsent, req, wire.DecodeBegin, beginNext)
	if err != nil && errors.Is(err, ErrUnknownInstance) {
		// The server lost the stored instance (a reset database, another
		// server): register again, once, rather than refuse for good.
		c.log.Info("server does not know the stored instance; registering again")
		if err := c.registerLocked(ctx); err != nil {
			return err
		}
		req.InstanceGUID = c.st.InstanceGUID
		sent = time.Now()
		reply, err = exchange(c, ctx, wire.Begin, transport.RetryUnsent, req, wire.DecodeBegin, beginNext)
	}
	if err != nil {
		return err
	}
	c.redact.AddLive(reply.Token, reply.SessionKey)
	c.st.Token = reply.Token
	c.st.Features = reply.Features
	c.adoptLocked(sent, reply.Time, reply.ControlOptions)
	return nil
}

// exchange sends one v2 call and returns its decoded reply; next (fitsNext)
// checks the request the reply leads to. Every failure is an *Error or an
// *APIError from the one classifier; an end_session that finds the session
// already ended returns nil, nil.
func exchange[R any](c *Client, ctx context.Context, endpoint string, retry transport.Retry, payload any,
	decode func([]byte) (*R, error), next func(*R) error) (*R, error) {
	var reply *R
	out := c.call(ctx, endpoint, retry, payload, func(plain []byte) error {
		r, err := decode(plain)
		if err == nil && next != nil {
			if err = next(r); err != nil && c.warnedUnsealable.CompareAndSwap(false, true) { // logged once per client
				c.log.Warn("malformed reply: the next request could not be sealed; treating the server as unreachable",
					"endpoint", endpoint, "reason", c.redact.Text(lastPart(err), verdict.MaxExcerpt))
			}
		}
		if err == nil {
			reply = r
		}
		return err
	})
	return reply, out.Err // reply is set only on a success
}

// The checks that a reply's values fit the request they lead to.
func registerNext(r *wire.RegisterReply) error {
	return fitsNext(wire.Register, "guid", r.GUID, func() any { return wire.BeginRequest{InstanceGUID: r.GUID} })
}

func beginNext(r *wire.BeginReply) error {
	return fitsNext(wire.Begin, "token", r.Token, func() any { return wire.ExtendRequest{Token: r.Token} })
}

func extendNext(r *wire.ExtendReply) error {
	return fitsNext(wire.Extend, "token", r.Token, func() any { return wire.ExtendRequest{Token: r.Token} })
}

// fitsNext returns a *wire.ProtocolError when the request a reply leads to
// (next(), whose only large part is value) could not be sealed: a huge
// token or instance GUID would otherwise fail every later call.
func fitsNext(endpoint, field, value string, next func() any) error {
	// JSON writes a byte as at most 6 ("\u00XX", "\ufffd"), and the rest
	// of the request is a few hundred bytes.
	if len(value) <= (maxPlaintext-1<<10)/6 {
		return nil
	}
	b, err := json.Marshal(next())
	if err == nil && len(b) <= maxPlaintext {
		return nil
	}
	return &wire.ProtocolError{Endpoint: endpoint,
		Reason: field + " too large: the next request could not be sealed"}
}

func (c *Client) extendLocked(ctx context.Context) error {
	sent := time.Now()
	reply, err := exchange(c, ctx, wire.Extend, transport.RetryIdempotent, c.extendRequest(), wire.DecodeExtend, extendNext)
	if err != nil {
		return err
	}
	if reply.Token != "" {
		c.redact.AddLive(reply.Token)
		c.st.Token = reply.Token // the server may rotate it
	}
	c.adoptLocked(sent, reply.Time, reply.ControlOptions)
	return nil
}

// endLocked ends the current session. The spec's bare 422 means the session
// is already over, and so does a refusal: the server no longer knows the
// token. Neither changes the licence's state.
func (c *Client) endLocked(ctx context.Context) error {
	_, err := exchange(c, ctx, wire.End, transport.RetryIdempotent, wire.EndRequest{Token: c.st.Token}, wire.DecodeEnd, nil)
	if err != nil && !refused(err) {
		return err
	}
	c.st.Token = ""
	c.saveLocked(context.WithoutCancel(ctx))
	return nil
}

// endOrphanLocked ends, within 5 s, a session a previous run left live, so
// that crashed runs do not leak seats. On failure the token is kept.
func (c *Client) endOrphanLocked(ctx context.Context) error {
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := c.endLocked(octx)
	if err != nil {
		c.log.Warn("could not end orphaned session", "error", err)
	} else {
		c.log.Info("ended session orphaned by a previous run")
	}
	return err
}

// connectLocked ends a session a previous run left live, then begins a
// new one. At Start (atStart) the end is reported as an OrphanEnded event
// either way; in the loop, only once it succeeded. A failed end that is
// not a refusal stops here: the server is not answering.
func (c *Client) connectLocked(ctx context.Context, atStart bool) error {
	if c.orphan && c.st.Token != "" {
		err := c.endOrphanLocked(ctx)
		if err == nil || atStart {
			c.emit(Event{Type: EventOrphanEnded, Reason: err})
		}
		if err != nil {
			return err
		}
	}
	c.orphan = false
	return c.beginLocked(ctx)
}

// registerLocked sends register_instance for c.machine (just filled by the
// caller) and stores the instance.
func (c *Client) registerLocked(ctx context.Context) error {
	reply, err := exchange(c, ctx, wire.Register, transport.RetryIdempotent, c.registerRequest(c.machine), wire.DecodeRegister, registerNext)
	if err == nil {
		c.adoptRegister(reply)
	}
	return err
}

// adoptRegister stores the instance a register_instance reply names for
// c.machine, online or carried.
func (c *Client) adoptRegister(r *wire.RegisterReply) {
	c.st.InstanceGUID = r.GUID
	c.st.FirstRegisteredAt = r.FirstRegisteredAt.Raw
	if d := machineDigest(c.machine); d != c.st.FingerprintDigest || c.st.Components == nil {
		c.st.FingerprintDigest, c.st.Components = d, componentDigests(c.machine)
	}
	if c.st.Sent.IsZero() {
		c.st.SessionSeconds = r.ControlOptions.SessionDuration
		c.st.GraceSeconds = r.ControlOptions.ValidationGracePeriod
	}
}

// The requests this client sends, online or carried (offline.go).
func (c *Client) registerRequest(m wire.Machine) wire.RegisterRequest {
	return wire.RegisterRequest{ProductGUID: c.cfg.ProductGUID, LicenseKey: c.cfg.LicenseKey, Machine: m,
		Name: c.cfg.UserName, Email: c.cfg.UserEmail, UserHash: c.cfg.UserAttributes}
}

func (c *Client) beginRequest() wire.BeginRequest {
	return wire.BeginRequest{ProductGUID: c.cfg.ProductGUID, LicenseKey: c.cfg.LicenseKey, InstanceGUID: c.st.InstanceGUID,
		Machine: c.machine, UserHash: c.cfg.UserAttributes, Duration: int64(c.cfg.SessionDuration / time.Second)}
}

func (c *Client) extendRequest() wire.ExtendRequest {
	return wire.ExtendRequest{Token: c.st.Token, Duration: int64(c.cfg.SessionDuration / time.Second)}
}

// machineLocked fills c.machine from the fingerprint, with a persisted
// install ID for weak hardware (machineOf).
func (c *Client) machineLocked(ctx context.Context) error {
	fp, err := c.fingerprintLocked(ctx)
	if err != nil {
		return err
	}
	if fp.StrongCount() < 2 && c.st.InstallID == "" {
		c.st.InstallID = uuid.New()
	}
	c.machine = machineOf(fp, c.st.InstallID)
	return nil
}

// fingerprintLocked is this machine's fingerprint, or a client fault when
// the source gives none.
func (c *Client) fingerprintLocked(ctx context.Context) (*fingerprint.Fingerprint, error) {
	fp, err := c.fp(ctx)
	if fp == nil {
		return nil, localFault("fingerprint", cmp.Or(err, errors.New("no fingerprint")))
	}
	return fp, nil
}

// machineOf is the wire machine registered for fp. With fewer than two
// strong components (containers, cloned VMs) installID replaces mb_serial,
// so that the instance stays stable and distinct from its clones.
func machineOf(fp *fingerprint.Fingerprint, installID string) wire.Machine {
	m := wire.Machine{
		IPAddress:    fp.IPAddress.Value,
		CPUID:        fp.CPUID.Value,
		MBSerial:     fp.MBSerial.Value,
		MACAddresses: fp.MACAddresses.Values,
		VolumeHash:   fp.VolumeHash.Value,
		HostName:     fp.HostName.Value,
	}
	if fp.StrongCount() < 2 {
		m.MBSerial = "install-" + installID
	}
	return m
}

// componentOrder lists the components componentDigests records, in wire
// order.
var componentOrder = []string{
	fingerprint.NameCPUID, fingerprint.NameMBSerial, fingerprint.NameMACAddresses,
	fingerprint.NameVolumeHash, fingerprint.NameHostName,
}

// componentDigests records each registered wire component as a short
// labelled SHA-256 (in the sealed state only), so that a diagnosis can say
// which one changed.
func componentDigests(m wire.Machine) map[string]string {
	vals := [...]string{m.CPUID, m.MBSerial, strings.Join(m.MACAddresses, ","), m.VolumeHash, m.HostName} // componentOrder
	out := make(map[string]string, len(vals))
	for i, name := range componentOrder {
		sum := sha256.Sum256([]byte("licensekit component v1\x00" + name + "\x00" + vals[i]))
		out[name] = hex.EncodeToString(sum[:16])
	}
	return out
}

// machineDigest identifies the registered hardware. The IP address is left
// out: it changes with the network, not the machine.
func machineDigest(m wire.Machine) string {
	m.IPAddress = ""
	b, _ := json.Marshal(m)
	sum := sha256.Sum256(append([]byte("licensekit machine v1\x00"), b...))
	return hex.EncodeToString(sum[:])
}

// credentialsDigest names the credentials (API key, public key, shared
// secret) without holding them: a truncated, domain-separated SHA-256.
func credentialsDigest(cfg *Config) string {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte("licensekit credentials v1"), []byte(cfg.APIKey), []byte(cfg.ServerPublicKey), cfg.SharedSecret} {
		h.Write(binary.BigEndian.AppendUint64(n[:0], uint64(len(part))))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// adoptLocked records a successful begin or extend sent at sent.
func (c *Client) adoptLocked(sent time.Time, serverTime wire.Timestamp, co wire.ControlOptions) {
	now, wall := time.Now(), c.wallNow()
	changed := !c.st.Sent.IsZero() &&
		(co.SessionDuration != c.st.SessionSeconds || co.ValidationGracePeriod != c.st.GraceSeconds)
	// The send on the wall clock, anchored at the send with nothing used.
	c.adoptSessionLocked(sent, 0, wall.Add(-now.Sub(sent)), wall, co)
	c.st.Creds = credentialsDigest(&c.cfg)
	c.st.HighWater = wall // the server vouched for the time: forget a rollback
	if serverTime.Valid() {
		c.skew = serverTime.Time.Sub(c.st.Sent.Add(now.Sub(sent) / 2))
	}
	c.saveLocked(context.Background())
	if changed {
		c.emit(Event{Type: EventControlOptionsChanged, SessionDuration: c.session(), GracePeriod: c.grace()})
	}
}

// adoptSessionLocked records a session the server began or extended at
// sent (wall clock), measured from mono with base already used, online or
// carried.
func (c *Client) adoptSessionLocked(mono time.Time, base time.Duration, sent, contact time.Time, co wire.ControlOptions) {
	if c.sealed { // an unsealed success serves this run only
		c.st.Refusal = nil
	}
	c.anchor, c.base = mono, base
	c.st.Sent, c.st.LastContact = sent, contact
	c.st.SessionSeconds = co.SessionDuration
	c.st.GraceSeconds = co.ValidationGracePeriod
	c.failures, c.retryAfter, c.lastErr = 0, 0, nil
	c.rolledBack = false
	c.store.vouched(&c.st) // the server answered: a restored or unanchored state is current again
}

// call seals payload, posts it and hands the outcome to the one classifier,
// resending a request whose reply was lost and retrying once after a stale
// timestamp. decode checks and decodes a success plaintext.
func (c *Client) call(ctx context.Context, endpoint string, retry transport.Retry, payload any,
	decode func([]byte) error) verdict.Outcome {
	plain, err := json.Marshal(payload)
	if err != nil {
		return clientFault(endpoint, "cannot encode the request", err)
	}
	c.redact.AddLive(c.st.Token) // a token restored from the state file
	defer clear(plain)           // best effort only: see docs/security.md
	offset := c.integ.offset     // the kept offset; a stale rejection may propose another for one retry
	digest := sha256.Sum256(plain)
	for attempt := 0; ; attempt++ {
		req := c.resendLocked(endpoint, digest)
		if req == nil || attempt > 0 {
			if req, err = c.sealLocked(endpoint, plain, digest, &offset); err != nil {
				return clientFault(endpoint, c.redact.Text(lastPart(err), verdict.MaxExcerpt, verdict.PayloadValues(plain)...), err)
			}
		} else {
			offset = req.offset
			c.log.Debug("resending the request whose reply was lost", "endpoint", endpoint)
		}
		resp, err := c.tr.Do(ctx, transport.Request{Endpoint: endpoint, Body: req.body, Retry: retry, MaxAttempts: c.attemptCap})
		out := verdict.Classify(verdict.Input{
			Endpoint: endpoint,
			Resp:     resp,
			Err:      err,
			Opener:   req.sealed.Reply,
			Sealed:   c.sealed,
			Decode:   decode,
			Kinds:    c.opts.kinds,
			Redactor: c.redact,
			Payload:  plain, // its values are extracted only if a text is kept
		})
		c.answeredLocked(resp, out, offset)
		c.noteLostLocked(endpoint, req, out)
		next, again := c.afterStaleLocked(endpoint, out, attempt, &offset)
		if !again {
			c.noteConfigFaultLocked(next)
			return next
		}
	}
}

// sealLocked seals plain for endpoint with *offset, ready to send.
func (c *Client) sealLocked(endpoint string, plain []byte, digest [sha256.Size]byte, offset *time.Duration) (*lostRequest, error) {
	at := time.Now()
	sd, err := c.sealer.Seal(envelope.Request{APIKey: c.cfg.APIKey, Endpoint: endpoint, Time: c.stamp(offset)}, plain)
	if err != nil && *offset != 0 {
		// A sealing failure caused by an offset resets it.
		c.integ.offset, *offset = 0, 0
		sd, err = c.sealer.Seal(envelope.Request{APIKey: c.cfg.APIKey, Endpoint: endpoint, Time: c.wallNow()}, plain)
	}
	if err != nil {
		return nil, err
	}
	body, err := requestBody(sd.Key, sd.Data)
	if err != nil {
		return nil, err
	}
	return &lostRequest{digest: digest, sealed: sd, body: body, offset: *offset, at: at}, nil
}

// noteConfigFaultLocked records whether the server authenticates this
// client (Status.ConfigFault): announced once per fault, cleared by any
// reply that opened.
func (c *Client) noteConfigFaultLocked(out verdict.Outcome) {
	switch {
	case out.Category == verdict.Success || out.Category == verdict.Refused:
		if c.configFault != nil {
			c.configFault = nil
			c.log.Info("the server authenticates this client again")
			c.publishLocked()
		}
	case errors.Is(out.Err, ErrCredentialsRejected):
		first := c.configFault == nil
		c.configFault = out.Err
		c.publishLocked()
		if first {
			c.log.Error("configuration fault: the licence server does not authenticate this client; "+
				"offline grace still applies", "error", out.Err)
			c.emit(Event{Type: EventConfigFault, Reason: out.Err, Detail: verdict.CredentialsCauses})
		}
	}
}

// clientFault is the outcome of a call that failed before it was sent.
func clientFault(endpoint, reason string, cause error) verdict.Outcome {
	return verdict.Outcome{Category: verdict.ClientFault, Err: &Error{Endpoint: endpoint,
		Category: verdict.ClientFault, Detail: verdict.DetailUnsealable, Reason: reason, Cause: cause}}
}

// requestBody is the JSON of wire.Request{Key: key, Data: data}, byte for
// byte as json.Marshal writes it; base64 (the built-in envelopes) needs no
// escaping, so such a body is written directly, without reflection.
func requestBody(key, data string) ([]byte, error) {
	if !jsonPlain(key) || !jsonPlain(data) {
		return json.Marshal(wire.Request{Key: key, Data: data})
	}
	b := make([]byte, 0, len(`{"key":"","data":""}`)+len(key)+len(data))
	b = append(b, `{"key":"`...)
	b = append(b, key...)
	b = append(b, `","data":"`...)
	b = append(b, data...)
	return append(b, `"}`...), nil
}

// jsonPlain reports whether json.Marshal writes s unchanged between its
// quotes.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

var plainByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("+/=-_.", byte(c)) >= 0
	}
	return t
}()

// answeredLocked notes what a reply that is the licence server's word
// says beside its outcome: the offset its request was sealed with is kept,
// and a Deprecation or Sunset header is recorded, once; only the fact,
// never the unauthenticated text (Status.Deprecated).
func (c *Client) answeredLocked(resp *transport.Response, out verdict.Outcome, offset time.Duration) {
	switch out.Category {
	case verdict.Success, verdict.Refused, verdict.AlreadyEnded:
	default:
		return
	}
	if offset != c.integ.offset {
		c.integ.offset = offset
		c.log.Info("clock offset confirmed by the server", "offset", offset.Round(time.Second).String())
	}
	if resp != nil && !c.deprec && (resp.Deprecation != "" || resp.Sunset != "") {
		c.deprec = true
		c.emit(Event{Type: EventDeprecated,
			Detail: "the licence server announced that the API this client speaks is deprecated; update the product"})
	}
}

// Request freshness (docs/security.md).

// releaseFloor is the earliest request timestamp a clock offset may give:
// the start of this build's release year. Requests are never stamped more
// than offsetSpan after it.
func releaseFloor() time.Time { return time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC) }

const offsetSpan = 50 * 365 * 24 * time.Hour

// integrity is the client's request-freshness state, guarded by sem.
type integrity struct {
	// offset is added to the wall clock for request timestamps, kept only
	// once the server's word accepted a request sealed with it
	// (answeredLocked): a stale-timestamp rejection, which anyone on the
	// path can forge, only proposes one for one retry. It never moves a
	// deadline.
	offset time.Duration
	lost   map[string]*lostRequest // per endpoint (resendLocked); made in New
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
// again: well inside the servers' freshness window (FORMAT.md).
const resendWithin = envelope.DefaultWindow / 2

// resendLocked returns the request to send again for endpoint and the
// plaintext with digest, if the last one's reply was lost: the server's
// replay cache answers the same bytes, so a retry takes no second seat.
func (c *Client) resendLocked(endpoint string, digest [sha256.Size]byte) *lostRequest {
	r := c.integ.lost[endpoint]
	if r == nil || r.digest != digest || time.Since(r.at) >= resendWithin {
		return nil
	}
	return r
}

// noteLostLocked remembers a request for resendLocked when the server may
// have processed it unanswered (unreachable, but not an envelope rejection,
// which says nothing was processed), and forgets it otherwise. Requests
// without a request id (a custom scheme) are never resent.
func (c *Client) noteLostLocked(endpoint string, r *lostRequest, out verdict.Outcome) {
	var rej *EnvelopeError
	if out.Category != verdict.Unreachable || errors.As(out.Err, &rej) || r.sealed.ID == ([envelope.RequestIDSize]byte{}) {
		delete(c.integ.lost, endpoint)
		return
	}
	c.integ.lost[endpoint] = r
}

// plausible reports whether t may stamp a request (releaseFloor).
func (c *Client) plausible(t time.Time) bool {
	floor := cmp.Or(c.opts.timeFloor, releaseFloor())
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
// server's time: the first proposes an offset from that time (nothing, if
// implausible) for one more attempt with a fresh envelope; the second
// becomes a *ClockSkewError. Every other outcome passes through.
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
