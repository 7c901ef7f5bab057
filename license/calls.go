package license

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/licensekit/licensekit-go/envelope"
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
// no instance yet) and makes the new session current. It does not start
// background renewal; Start does.
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
// the reply's token and control options.
func (c *Client) ExtendSession(ctx context.Context) error {
	return c.manual(ctx, func(ctx context.Context) error {
		if c.st.Token == "" {
			return ErrNotStarted
		}
		return c.afterManualLocked(c.extendLocked(ctx))
	})
}

// EndSession sends end_session for the current session and returns the
// client to Idle. An unknown token counts as already ended. Background
// renewal, if running, begins a new session at its next attempt; to stop
// for good, use Close.
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

// manual runs an explicit call: under the client's lock, cancelled by
// Close, after loading the state.
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
	return toCaller(c.locked(ctx, func(ctx context.Context) error {
		if err := c.loadLocked(ctx); err != nil {
			return err
		}
		return f(ctx)
	}))
}

func (c *Client) afterManualLocked(err error) error {
	switch {
	case err == nil:
		c.enterLocked(Active, nil)
	case refused(err):
		c.lastErr = err
		c.enterLocked(Refused, err)
	default:
		c.lastErr = err
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
	req := wire.BeginRequest{
		ProductGUID:  c.cfg.ProductGUID,
		LicenseKey:   c.cfg.LicenseKey,
		InstanceGUID: c.st.InstanceGUID,
		Machine:      c.machine,
		UserHash:     c.cfg.UserAttributes,
		Duration:     int64(c.cfg.SessionDuration / time.Second),
	}
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
	c.noteLive(reply.Token, reply.SessionKey)
	c.st.Token = reply.Token
	c.st.Features = reply.Features
	c.adoptLocked(sent, reply.Time, reply.ControlOptions)
	return nil
}

// exchange sends one v2 call and returns its decoded reply. next checks
// that the request the reply leads to can still be sealed. Every failure is
// an *Error or an *APIError from the one classifier; an end_session that
// finds the session already ended returns nil, nil.
func exchange[R any](c *Client, ctx context.Context, endpoint string, retry transport.Retry, payload any,
	decode func([]byte) (*R, error), next func(*R) error) (*R, error) {
	var reply *R
	out := c.call(ctx, endpoint, retry, payload, func(plain []byte) error {
		r, err := decode(plain)
		if err != nil {
			return err
		}
		if next != nil {
			if err := next(r); err != nil {
				c.noteUnsealable(endpoint, err)
				return err
			}
		}
		reply = r
		return nil
	})
	if out.Err != nil {
		return nil, out.Err
	}
	return reply, nil
}

// The checks that a reply's values fit the request they lead to.
func registerNext(r *wire.RegisterReply) error {
	return fitsNext(wire.Register, "guid", wire.BeginRequest{InstanceGUID: r.GUID})
}

func beginNext(r *wire.BeginReply) error {
	return fitsNext(wire.Begin, "token", wire.ExtendRequest{Token: r.Token})
}

func extendNext(r *wire.ExtendReply) error {
	return fitsNext(wire.Extend, "token", wire.ExtendRequest{Token: r.Token})
}

// extendLocked extends the current session and adopts the reply.
func (c *Client) extendLocked(ctx context.Context) error {
	req := wire.ExtendRequest{Token: c.st.Token, Duration: int64(c.cfg.SessionDuration / time.Second)}
	sent := time.Now()
	reply, err := exchange(c, ctx, wire.Extend, transport.RetryIdempotent, req, wire.DecodeExtend, extendNext)
	if err != nil {
		return err
	}
	if reply.Token != "" {
		c.noteLive(reply.Token)
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

// endOrphanLocked ends a session a previous run left live, best effort and
// bounded, so that crashed runs do not leak seats.
func (c *Client) endOrphanLocked(ctx context.Context) {
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := c.endLocked(octx)
	if err != nil {
		// Keep the token: the next start tries again.
		c.log.Warn("could not end orphaned session", "error", err)
	} else {
		c.log.Info("ended session orphaned by a previous run")
	}
	c.emit(Event{Type: EventOrphanEnded, Reason: err})
}

// registerLocked sends register_instance for c.machine, which the caller
// has just filled, and stores the instance.
func (c *Client) registerLocked(ctx context.Context) error {
	req := wire.RegisterRequest{
		ProductGUID: c.cfg.ProductGUID,
		LicenseKey:  c.cfg.LicenseKey,
		Machine:     c.machine,
		Name:        c.cfg.UserName,
		Email:       c.cfg.UserEmail,
		UserHash:    c.cfg.UserAttributes,
	}
	reply, err := exchange(c, ctx, wire.Register, transport.RetryIdempotent, req, wire.DecodeRegister, registerNext)
	if err != nil {
		return err
	}
	c.st.InstanceGUID = reply.GUID
	c.st.FirstRegisteredAt = reply.FirstRegisteredAt.Raw
	c.st.FingerprintDigest = machineDigest(c.machine)
	c.st.Components = componentDigests(c.machine)
	if c.st.Sent.IsZero() {
		c.st.SessionSeconds = reply.ControlOptions.SessionDuration
		c.st.GraceSeconds = reply.ControlOptions.ValidationGracePeriod
	}
	return nil
}

// machineLocked fills c.machine from the fingerprint. With fewer than two
// strong components (containers, cloned VMs) the persisted install ID
// replaces mb_serial, so that the instance stays stable and distinct.
func (c *Client) machineLocked(ctx context.Context) error {
	fp, err := c.fp(ctx)
	if fp == nil {
		if err == nil {
			err = errors.New("no fingerprint")
		}
		return localFault("fingerprint", err)
	}
	if fp.StrongCount() < 2 && c.st.InstallID == "" {
		c.st.InstallID = uuid.New()
	}
	c.machine = machineOf(fp, c.st.InstallID)
	return nil
}

// machineDigest identifies the registered hardware. The IP address is left
// out: it changes with the network, not the machine.
func machineDigest(m wire.Machine) string {
	m.IPAddress = ""
	b, _ := json.Marshal(m)
	sum := sha256.Sum256(append([]byte("licensekit machine v1\x00"), b...))
	return hex.EncodeToString(sum[:])
}

// credentialsDigest names the credentials a request is made with (the API
// key, the server's public key, the shared secret) without holding them: a
// truncated, domain-separated SHA-256, kept in the sealed state.
func credentialsDigest(cfg *Config) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte("licensekit credentials v1"), []byte(cfg.APIKey), []byte(cfg.ServerPublicKey), cfg.SharedSecret} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// credentialsChangedLocked reports whether the persisted session was last
// answered under other credentials than this client's: resuming it without
// a network call would hide a wrong API key, key or secret.
func (c *Client) credentialsChangedLocked() bool {
	return c.st.Creds != "" && c.st.Creds != credentialsDigest(&c.cfg)
}

// adoptLocked records a successful begin or extend sent at sent.
func (c *Client) adoptLocked(sent time.Time, serverTime wire.Timestamp, co wire.ControlOptions) {
	c.clearRefusalLocked()
	now := time.Now()
	changed := !c.st.Sent.IsZero() &&
		(co.SessionDuration != c.st.SessionSeconds || co.ValidationGracePeriod != c.st.GraceSeconds)
	c.anchor = sent
	c.st.Sent = c.wallNow().Add(-now.Sub(sent)) // the same instant on the wall clock
	c.st.SessionSeconds = co.SessionDuration
	c.st.GraceSeconds = co.ValidationGracePeriod
	c.st.LastContact = c.wallNow()
	c.failures, c.retryAfter, c.lastErr = 0, 0, nil
	c.rolledBack = false
	c.base = 0
	c.st.Creds = credentialsDigest(&c.cfg)
	c.store.vouched(&c.st)       // the server answered: a restored or unanchored state is current again
	c.st.HighWater = c.wallNow() // the server vouched for the time: forget a rollback
	if serverTime.Valid() {
		c.skew = serverTime.Time.Sub(c.st.Sent.Add(now.Sub(sent) / 2))
	}
	c.saveLocked(context.Background())
	if changed {
		c.emit(Event{Type: EventControlOptionsChanged, SessionDuration: c.session(), GracePeriod: c.grace()})
	}
}

// call seals payload, posts it and hands the outcome to the one classifier.
// decode checks and decodes a success plaintext.
func (c *Client) call(ctx context.Context, endpoint string, retry transport.Retry, payload any,
	decode func([]byte) error) verdict.Outcome {
	plain, err := json.Marshal(payload)
	if err != nil {
		return clientFault(endpoint, "cannot encode the request", err)
	}
	c.noteLive(c.st.Token)   // a token restored from the state file
	defer clear(plain)       // best effort only: see docs/security.md
	offset := c.integ.offset // the kept offset; a stale rejection may propose another for one retry
	digest := sha256.Sum256(plain)
	for attempt := 0; ; attempt++ {
		req := c.resendLocked(endpoint, digest)
		if req == nil || attempt > 0 {
			var err error
			if req, err = c.sealLocked(endpoint, plain, digest, &offset); err != nil {
				return clientFault(endpoint, c.redact.Text(lastPart(err), verdict.MaxExcerpt, verdict.PayloadValues(plain)...), err)
			}
		} else {
			offset = req.offset
			c.log.Debug("resending the request whose reply was lost", "endpoint", endpoint)
		}
		sd := req.sealed
		resp, err := c.tr.Do(ctx, transport.Request{Endpoint: endpoint, Body: req.body, Retry: retry, MaxAttempts: c.attemptCap})
		out := verdict.Classify(verdict.Input{
			Endpoint: endpoint,
			Resp:     resp,
			Err:      err,
			Opener:   sd.Reply,
			Sealed:   c.sealed,
			Decode:   decode,
			Kinds:    c.kinds,
			Redactor: c.redact,
			Payload:  plain, // its values are extracted only if a text is kept
		})
		c.acceptedLocked(out, offset)
		c.noteDeprecation(resp, out)
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

// noteConfigFaultLocked records, from the outcome of one call, whether the
// server authenticates this client. The first rejection is logged at error
// level and announced with EventConfigFault; any reply that opened (a
// success or a refusal) clears it.
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

// noteLive tells the redactor about values the server issued.
func (c *Client) noteLive(values ...string) { c.redact.AddLive(values...) }

// clientFault is the outcome of a call that failed before it was sent.
func clientFault(endpoint, reason string, cause error) verdict.Outcome {
	return verdict.Outcome{Category: verdict.ClientFault, Err: &Error{Endpoint: endpoint,
		Category: verdict.ClientFault, Detail: verdict.DetailUnsealable, Reason: reason, Cause: cause}}
}

// requestBody is the JSON of wire.Request{Key: key, Data: data}, byte for
// byte as json.Marshal writes it. Built-in envelopes put base64 in both,
// which needs no escaping: such a body is written directly, sparing
// encoding/json's reflection on every call.
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
// quotes: only letters, digits and base64's "+/=-_.".
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

// plainByte marks the bytes jsonPlain accepts. It is never written after
// initialisation.
var plainByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("+/=-_.", byte(c)) >= 0
	}
	return t
}()

// deprecationNote is EventDeprecated's Detail.
const deprecationNote = "the licence server announced that the API this client speaks is deprecated; update the product"

// noteDeprecation records, once, that a reply of the licence server (an
// outcome that is its word) carried a Deprecation or Sunset header. The
// header is not authenticated, so only the fact is kept, never its text:
// anyone on the path could have written it (docs/security.md).
func (c *Client) noteDeprecation(resp *transport.Response, out verdict.Outcome) {
	if resp == nil || c.deprec || (resp.Deprecation == "" && resp.Sunset == "") {
		return
	}
	switch out.Category {
	case verdict.Success, verdict.Refused, verdict.AlreadyEnded:
	default:
		return
	}
	c.deprec = true
	c.emit(Event{Type: EventDeprecated, Detail: deprecationNote})
}
